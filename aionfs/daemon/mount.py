"""The mount daemon: one trio nursery owns the FUSE loop, sync, uploads and control.

Start-up checks the key with one request (a refused key stops the mount; an
unreachable API does not: the cached library is served offline and sync
catches up later), mounts, and reports readiness (to the parent process and
to systemd) once the filesystem answers a stat. SIGTERM/SIGINT unmount
cleanly: in-flight uploads stay in the journal and resume at the next mount.
SIGHUP reloads the profile's settings that can change while mounted. The
daemon's pidfile and control socket are named after the mountpoint (see
control.py), so `aionfs unmount` and `aionfs status` find it.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import sqlite3
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import trio

from ..api import AionClient, ApiSettings, Priority
from ..api.errors import ApiError, AuthError
from ..api.trace import Trace
from ..cache.content import ContentCache
from ..fs import ops
from ..fs.core import Filesystem
from ..fs.echo import Echoes
from ..fs.local import LocalFiles
from ..fs.notify import KernelNotifier
from ..fs.view import LibraryView
from ..fs.writer import Writer
from ..store import Store
from ..sync import Syncer
from ..thumbs import Thumbnails
from ..upload.durability import GroupCommit
from ..upload.journal import Journal
from ..upload.lock import JournalBusy, JournalLock
from ..upload.worker import Uploader
from ..views import QueryCache, VirtualTree
from ..watch import WatchedFolder, Watches
from . import control
from .control import daemon_alive, pidfile_for, serve_control, socket_for
from .handlers import Controls
from .notify import Notifier
from .options import MountOptions
from .plan import settle_plan
from .status import Sources

log = logging.getLogger(__name__)


class MountError(Exception):
    """The mount cannot start; the message says why and what to do."""


@dataclass(frozen=True)
class MountEntry:
    """One line of /proc/self/mountinfo: what is mounted at a path."""

    path: str
    dev: str  # "major:minor"
    fstype: str  # "fuse.aionfs", "fuse.sshfs", "ext4", ...
    source: str  # "aionfs:api.aionvision.tech", ...

    @property
    def fuse(self) -> bool:
        return self.fstype == "fuse" or self.fstype.startswith(("fuse.", "fuseblk"))

    @property
    def aionfs(self) -> bool:
        return self.fstype == "fuse.aionfs" or self.source.startswith("aionfs:")


def _unescape(field: str) -> str:
    """mountinfo writes space, tab, newline and backslash as octal escapes."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), field)


def mount_at(mountpoint: Path) -> MountEntry | None:
    """What is mounted at `mountpoint` (the topmost mount), from /proc/self/mountinfo;
    the mountpoint itself is never touched (a dead or hung mount would answer with
    ENOTCONN, a stale cached stat, or not at all)."""
    paths = {control.canonical(mountpoint)}
    try:
        text = os.fsdecode(Path("/proc/self/mountinfo").read_bytes())
    except OSError:
        return None
    with contextlib.suppress(OSError):
        if os.path.islink(mountpoint):  # a symlink is never a mountpoint: safe to follow
            paths.add(os.path.realpath(mountpoint))
    found = None
    for line in text.splitlines():
        head, _, tail = line.partition(" - ")
        fields, rest = head.split(), tail.split()
        if len(fields) < 5 or len(rest) < 2:
            continue
        if _unescape(fields[4]) in paths:  # the last line is the topmost mount
            found = MountEntry(_unescape(fields[4]), fields[2], rest[0], _unescape(rest[1]))
    return found


def _mountinfo_readable() -> bool:
    return os.access("/proc/self/mountinfo", os.R_OK)


def is_mounted(mountpoint: Path) -> bool:
    """Whether something is mounted there, from the mount table: never a stat of the
    mountpoint, which a dead daemon's mount answers with ENOTCONN (or, from the
    kernel's attribute cache, as if alive) and a hung one not at all."""
    if _mountinfo_readable():
        return mount_at(mountpoint) is not None
    return os.path.ismount(mountpoint)


def _live_daemon(mountpoint: Path) -> int | None:
    """The pid of the aionfs daemon serving `mountpoint` (from its pidfile), if it is
    running; a pid reused by another program is not it."""
    pid, _ = mounted_store(mountpoint)
    if pid is None or not daemon_alive(pid):
        return None
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return pid
    return pid if b"aionfs" in cmdline else None


#: what a FUSE mount answers once its connection is gone (ECONNABORTED: a request
#: that was waiting when the daemon died)
DEAD = (errno.ENOTCONN, errno.ECONNABORTED)


def statfs_probe(mountpoint: Path, timeout: float) -> int | None:
    """Ask the filesystem for its statfs, which FUSE never answers from a cache: 0 if
    it answers, the errno if it fails (ENOTCONN: its daemon is gone), None if it does
    not answer within `timeout` (a live but busy or stopped daemon: we never wait on it).

    The call runs in a daemon thread left behind if it hangs; it finishes whenever
    the filesystem answers, or with the process."""
    result: list[int] = []

    def probe() -> None:
        try:
            os.statvfs(mountpoint)
            result.append(0)
        except OSError as exc:
            result.append(exc.errno or errno.EIO)

    thread = threading.Thread(target=probe, name="aionfs-statfs-probe", daemon=True)
    thread.start()
    thread.join(timeout)
    return result[0] if result else None


def _clear_stale_mount(mountpoint: Path, entry: MountEntry, probe_timeout: float) -> bool:
    """A daemon that died (kill -9, a crash, a watchdog abort) leaves its mount behind:
    every request fails with ENOTCONN, except that stat may still answer from the
    kernel's attribute cache. systemd's restart (and the user's next `aionfs mount`)
    must be able to mount again, so such a mount is detached (`fusermount3 -u -z`:
    files still open there keep working until closed, with errors).

    Only an aionfs mount whose statfs fails as dead (DEAD) and whose daemon (named
    in the pidfile) is not running is detached; a mount that answers, or does not
    answer in time, is left alone. Returns whether it was detached."""
    if not entry.aionfs or _live_daemon(mountpoint) is not None:
        return False
    pid, _ = mounted_store(mountpoint)
    if statfs_probe(mountpoint, probe_timeout) not in DEAD:
        return False
    log.warning("%s was left mounted by an aionfs daemon that is gone%s: detaching it",
                mountpoint, f" (pid {pid})" if pid is not None else "")
    res = subprocess.run(["fusermount3", "-u", "-z", str(mountpoint)], check=False,
                         capture_output=True, text=True)
    if res.returncode != 0:
        raise MountError(f"{mountpoint} was left mounted by an aionfs daemon that is gone, "
                         f"and detaching it failed: {res.stderr.strip()} (try "
                         f"'fusermount3 -u -z {mountpoint}')")
    with contextlib.suppress(OSError):
        control.pidfile_for(mountpoint).unlink(missing_ok=True)
    return True


def _busy(mountpoint: Path, entry: MountEntry, probe_timeout: float) -> str:
    """Why a mountpoint that is still mounted cannot be mounted again."""
    where = f"{mountpoint} is already a mountpoint (busy)"
    pid = _live_daemon(mountpoint) if entry.aionfs else None
    if pid is not None:
        return (f"{mountpoint} is already a mountpoint: aionfs (daemon pid {pid}) serves "
                f"it; 'aionfs unmount {mountpoint}' first")
    answer = statfs_probe(mountpoint, probe_timeout) if entry.fuse else 0
    if answer is None:
        # fusectl (if mounted) can end a connection whose daemon is stuck or gone.
        abort = Path(f"/sys/fs/fuse/connections/{entry.dev.rpartition(':')[2]}/abort")
        hint = f", or end it with 'echo 1 > {abort}'" if abort.exists() else ""
        return (f"{where}: its {entry.fstype} filesystem does not answer; if its daemon is "
                f"gone, detach it with 'fusermount3 -u -z {mountpoint}'{hint}")
    if answer in DEAD:
        return (f"{where}: its {entry.fstype} filesystem's daemon is gone; detach it with "
                f"'fusermount3 -u -z {mountpoint}'")
    return f"{where}: {entry.fstype} from {entry.source} is mounted there"


def check_mountpoint(mountpoint: Path, *, probe_timeout: float = 2.0) -> None:
    if _mountinfo_readable():
        entry = mount_at(mountpoint)
        for _ in range(5):  # a dead mount may cover another dead one
            if entry is None or not _clear_stale_mount(mountpoint, entry, probe_timeout):
                break
            entry = mount_at(mountpoint)
        if entry is not None:
            raise MountError(_busy(mountpoint, entry, probe_timeout))
    if not mountpoint.exists():
        raise MountError(f"the mountpoint {mountpoint} does not exist (create it with mkdir)")
    if not mountpoint.is_dir():
        raise MountError(f"the mountpoint {mountpoint} is not a directory")
    if os.path.ismount(mountpoint):
        raise MountError(f"{mountpoint} is already a mountpoint (busy)")
    if any(mountpoint.iterdir()):
        raise MountError(f"the mountpoint {mountpoint} is not empty")
    if not os.path.exists("/dev/fuse"):
        raise MountError("FUSE is not available: /dev/fuse is missing (install fuse3, or "
                         "load the module with 'modprobe fuse')")


def _raise_read_ahead(dev: int) -> None:
    """Bigger kernel read-ahead for the mount: 1 MiB reads instead of 128 KiB.

    `dev` comes from a stat made off the trio thread: a stat of our own mount
    from the thread that serves it would deadlock.
    """
    path = Path(f"/sys/class/bdi/{os.major(dev)}:{os.minor(dev)}/read_ahead_kb")
    try:
        path.write_text("1024")
    except OSError as exc:
        log.debug("could not raise read-ahead (%s): %s", path, exc)


async def serve(settings: ApiSettings, opts: MountOptions,
                ready: Callable[[str | None], None]) -> None:
    """Mount and serve until unmounted or signalled; `ready(None)` once it answers."""
    notifier = Notifier()
    check_mountpoint(opts.mountpoint)
    lock = JournalLock(opts.store_path.parent)
    try:
        lock.acquire()
    except JournalBusy as exc:
        raise MountError(str(exc)) from None
    store = Store(opts.store_path)
    trace = Trace(opts.profile.trace) if opts.profile.trace is not None else None
    async with AionClient(settings, unlimited=opts.unlimited,
                          event_hooks=trace.hooks() if trace is not None else None) as client:
        syncer = Syncer(client, store)
        notifier.status("checking the API key")
        try:
            with trio.fail_after(15):  # (one wait for both when the API is out of reach)
                await settle_plan(client, store, opts.profile)  # the budget, before a crawl
                await syncer.refresh_tree(Priority.INTERACTIVE)
        except AuthError as exc:
            raise MountError("the API key was refused: check AIONVISION_API_KEY or run "
                             f"'aionfs login' ({exc.code or exc.status})") from None
        except (ApiError, trio.TooSlowError) as exc:
            log.warning("the API is unreachable (%s); serving the cached library", exc)
        cache = ContentCache(opts.store_path.parent, store, client,
                             capacity=opts.cache_size, read_timeout=opts.profile.read_timeout)
        view = LibraryView(store, uid=os.getuid(), gid=os.getgid(), read_only=opts.profile.read_only,
                           views=True)
        journal = Journal(store, opts.store_path.parent / "staging")
        local = LocalFiles(journal, store)
        cut = local.load()
        if cut:
            log.warning("%d files whose writing never finished (no close) may be cut off: kept "
                        "as failed, never uploaded until rewritten (aionfs status)", cut)
        uploader = Uploader(journal, store, client, syncer, delay=opts.profile.write_back_delay,
                            busy=local.busy, settled=local.settled, shared=local.shared,
                            rekeyed=local.rekey)
        writer = Writer(view, store, client, syncer, local, uploader.wake)
        durability = GroupCommit(journal, opts.profile.commit_interval)
        # back online: catch up now
        client.on_reachable += [syncer.wake, uploader.wake, cache.pins_changed]
        kernel = KernelNotifier(ops.KERNEL)
        echoes = Echoes(opts.mountpoint.resolve(), store.dir_path, kernel.forget_deleted,
                        enabled=not opts.profile.read_only)
        queries = QueryCache(store, client, syncer, ttl=opts.profile.query_ttl)
        views = VirtualTree(store, queries, view, rank_names=opts.profile.rank_names,
                            hidden=opts.profile.hide_views)
        thumbs = None
        if opts.profile.thumbnails:
            thumbs = Thumbnails(store, client, view, opts.mountpoint,
                                opts.store_path.parent / "thumbs",
                                buckets=opts.profile.thumbnail_sizes, wait=opts.profile.thumbnail_wait)
            syncer.subscribe(thumbs.on_events)
        fs = Filesystem(store=store, client=client, syncer=syncer, view=view, cache=cache,
                        echoes=echoes, views=views, local=local, writer=writer,
                        durability=durability, thumbs=thumbs, notify=kernel,
                        make_entry=ops.make_entry)
        syncer.subscribe(fs.on_events)
        watches = Watches(lambda spec: WatchedFolder(
            spec, store, journal, local, writer, publish=syncer.publish,
            on_queued=fs.local_added))
        sources = Sources(opts.mountpoint, opts.profile.name, opts.profile.read_only, client, syncer,
                          journal, cache, watches=watches.describe, thumbs=thumbs,
                          inodes=fs.inode_counts, requests=lambda: dict(ops.REQUESTS))
        daemon = Controls(opts, sources, uploader, queries, notifier, watches)
        fuse_options = set(ops.DEFAULT_OPTIONS)
        fuse_options |= {"fsname=aionfs:" + settings.base_url.split("//", 1)[1].split("/")[0],
                         "subtype=aionfs", "noatime"}
        if opts.profile.read_only:
            fuse_options.add("ro")
        # Nothing may touch the mountpoint between init and the FUSE loop's start:
        # the kernel would wait for an answer from this very thread.
        pidfile = pidfile_for(opts.mountpoint)
        control = socket_for(opts.mountpoint)
        try:
            ops.start(fs, str(opts.mountpoint), fuse_options)
        except RuntimeError as exc:
            raise MountError(f"mounting {opts.mountpoint} failed: {exc}") from None
        fs.mounted = True
        pidfile.write_text(f"{os.getpid()}\n{opts.store_path}\n{opts.mountpoint}\n")
        unmounted_cleanly = False
        try:
            async with trio.open_nursery() as nursery:
                cache.start(nursery)

                async def fuse_loop() -> None:
                    await ops.serve()
                    nursery.cancel_scope.cancel()  # unmounted: stop everything else

                nursery.start_soon(fuse_loop)
                nursery.start_soon(daemon.on_signals)
                nursery.start_soon(cache.keep_pinned)
                nursery.start_soon(echoes.run)
                nursery.start_soon(queries.keep_saved_fresh)
                nursery.start_soon(uploader.run)
                nursery.start_soon(durability.run)
                if thumbs is not None:
                    nursery.start_soon(thumbs.run)
                await nursery.start(lambda task_status: syncer.run(
                    poll_interval=opts.profile.poll_interval,
                    revalidate_interval=opts.profile.revalidate_interval, task_status=task_status))
                await nursery.start(serve_control, control, daemon.handlers())
                if not opts.profile.read_only:
                    nursery.start_soon(journal.pool.run)
                    await nursery.start(watches.run, opts.profile.watch)
                st = await trio.to_thread.run_sync(os.stat, opts.mountpoint)
                _raise_read_ahead(st.st_dev)
                log.info("mounted %s (%d folders, %d files cached)", opts.mountpoint,
                         store.counts()["folders"], store.counts()["files"])
                ready(None)
                notifier.ready(daemon.summary())
                nursery.start_soon(notifier.keep_alive, opts.mountpoint, daemon.summary)
            unmounted_cleanly = True
        finally:
            fs.mounted = False
            kernel.close()
            notifier.stopping()
            ops.close(unmount=not unmounted_cleanly)
            pidfile.unlink(missing_ok=True)
            try:
                cache.close()
            except (sqlite3.Error, OSError) as exc:  # the rest must still be let go
                log.error("writing the cache index at unmount failed (what was fetched "
                          "since its last write is fetched again): %s", exc)
            try:
                journal.pool.discard()
            except OSError as exc:  # (left for the next start's recovery to remove)
                log.error("removing the unused staging files at unmount failed: %s", exc)
            try:
                durability.sync_now()
            except (sqlite3.Error, OSError) as exc:  # the rest must still be let go
                log.error("making the last closed files durable at unmount failed (they "
                          "are kept, durable against anything but a power loss): %s", exc)
            store.close()
            notifier.close()
            lock.release()
            if trace is not None:
                trace.close()


def mounted_store(mountpoint: Path) -> tuple[int | None, Path | None]:
    """The daemon's pid and metadata store for a mountpoint, from its pidfile."""
    pidfile = pidfile_for(mountpoint)
    try:
        lines = pidfile.read_text().splitlines()
    except FileNotFoundError:
        return None, None
    return int(lines[0]), (Path(lines[1]) if len(lines) > 1 else None)


def wait_for_uploads(store_path: Path, timeout: float,
                     progress: Callable[[int], None] = lambda n: None) -> int:
    """Wait until no upload is pending or in flight; returns how many still are."""
    import time

    store = Store(store_path)
    try:
        journal = Journal(store, store_path.parent / "staging")
        deadline = time.monotonic() + timeout
        last = -1
        while True:
            left = journal.queued()
            if left != last:
                progress(left)
                last = left
            if not left or time.monotonic() >= deadline:
                return left
            time.sleep(0.2)
    finally:
        store.close()


def unmount(mountpoint: Path, timeout: float = 30.0, *, drain: float = 0.0,
            progress: Callable[[int], None] = lambda n: None) -> int:
    """Wait up to `drain` seconds for uploads, `fusermount3 -u`, then wait for the
    daemon to exit. Returns the uploads left for the next mount."""
    import subprocess
    import time

    pid, store_path = mounted_store(mountpoint)
    if not is_mounted(mountpoint):  # a dead daemon's mount too
        raise MountError(f"{mountpoint} is not mounted")
    left = 0
    if drain and store_path is not None and store_path.exists():
        try:
            left = wait_for_uploads(store_path, drain, progress)
        except KeyboardInterrupt:  # the user would rather not wait: they stay queued
            left = wait_for_uploads(store_path, 0)
    # Busy for a moment is normal: the daemon's own replay of a remote change (for
    # inotify watchers) or a file manager's thumbnailer may be inside the mount.
    busy_until = time.monotonic() + 3.0
    while True:
        res = subprocess.run(["fusermount3", "-u", str(mountpoint)], capture_output=True,
                             text=True)
        if res.returncode == 0:
            break
        if "busy" not in res.stderr or time.monotonic() >= busy_until:
            raise MountError(f"unmounting {mountpoint} failed: {res.stderr.strip()} "
                             "(is a file still open there? 'fuser -m' tells)")
        time.sleep(0.2)
    deadline = time.monotonic() + timeout
    exited = None  # when it was first seen a zombie: its parent may be slow to reap it
    while pid is not None and time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return left
        except PermissionError:
            pass
        if not daemon_alive(pid):
            exited = exited or time.monotonic()
            if time.monotonic() - exited > 3.0:  # exited; a parent that never reaps
                return left
        time.sleep(0.05)
    if pid is not None:
        raise MountError(f"the daemon (pid {pid}) did not exit within {timeout:g}s")
    return left
