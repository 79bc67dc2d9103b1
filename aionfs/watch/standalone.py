"""`aionfs watch` without a mount: the watched folders, the journal and the uploader alone.

The same pieces as in the mount daemon (journal, uploader, writer for the
folders to create), in one nursery, until SIGINT/SIGTERM. No crawl: only the
folder tree is fetched, to find (or create) the destination folders. Uploads
interrupted by the stop resume at the next start of either this command or a
mount of the workspace.
"""

from __future__ import annotations

import logging
import os
import signal
from pathlib import Path

import trio

from ..api import AionClient, ApiSettings, Priority
from ..api.errors import ApiError, AuthError
from ..config import WatchSpec
from ..fs.local import LocalFiles
from ..fs.view import LibraryView
from ..fs.writer import Writer
from ..store import Store
from ..sync import Syncer
from ..upload.durability import GroupCommit
from ..upload.journal import Journal
from ..upload.lock import JournalBusy, JournalLock
from ..upload.worker import Uploader
from .folder import WatchedFolder
from .manager import Watches

log = logging.getLogger(__name__)


class WatchError(Exception):
    """The watch cannot start; the message says why."""


async def run_watch(settings: ApiSettings, store_path: Path, specs: tuple[WatchSpec, ...], *,
                    unlimited: bool = False, settle: float = 2.0,
                    write_back_delay: float = 1.0) -> None:
    lock = JournalLock(store_path.parent)
    try:
        lock.acquire()
    except JournalBusy as exc:
        raise WatchError(str(exc)) from None
    store = Store(store_path)
    durability: GroupCommit | None = None
    try:
        async with AionClient(settings, unlimited=unlimited) as client:
            syncer = Syncer(client, store)
            try:
                with trio.fail_after(15):
                    await syncer.refresh_tree(Priority.INTERACTIVE)
            except AuthError:
                raise WatchError("the API key was refused: check AIONVISION_API_KEY or run "
                                 "'aionfs login'") from None
            except (ApiError, trio.TooSlowError) as exc:
                log.warning("the API is unreachable (%s): files are queued and uploaded "
                            "when it is back", exc)
            journal = Journal(store, store_path.parent / "staging")
            local = LocalFiles(journal, store)
            local.load()
            uploader = Uploader(journal, store, client, syncer, delay=write_back_delay,
                                busy=local.busy, settled=local.settled, shared=local.shared,
                                rekeyed=local.rekey)
            view = LibraryView(store, uid=os.getuid(), gid=os.getgid(), read_only=False)
            writer = Writer(view, store, client, syncer, local, uploader.wake)
            watches = Watches(lambda spec: WatchedFolder(
                spec, store, journal, local, writer, settle=settle))
            durability = GroupCommit(journal)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(uploader.run)
                nursery.start_soon(durability.run)
                await nursery.start(watches.run, specs)
                with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                    async for signum in signals:
                        left = journal.queued()
                        log.info("signal %s: stopping (%d uploads stay queued for the next "
                                 "start)", signal.Signals(signum).name, left)
                        nursery.cancel_scope.cancel()
                        break
    finally:
        if durability is not None:
            durability.sync_now()
        store.close()
        lock.release()
