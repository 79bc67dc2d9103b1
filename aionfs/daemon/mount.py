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

import errno
import logging
import os
import signal
import subprocess
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import pyfuse3
import trio

from ..api import AionClient, ApiSettings, Priority
from ..api.errors import ApiError, AuthError
from ..cache.content import ContentCache
from ..config import ConfigError, Profile, WatchSpec, load_profile
from ..fs.echo import Echoes
from ..fs.local import LocalFiles
from ..fs.ops import AionOperations
from ..fs.view import LibraryView
from ..fs.writer import Writer
from ..store import Store
from ..sync import Syncer
from ..thumbs import Thumbnails
from ..upload.journal import Journal
from ..upload.lock import JournalBusy, JournalLock
from ..upload.worker import Uploader
from ..views import QueryCache, VirtualTree
from ..watch import WatchedFolder, Watches
from .control import Handler, pidfile_for, serve_control, socket_for
from .notify import Notifier
from .status import Sources, live_status, summary_line

log = logging.getLogger(__name__)


class MountError(Exception):
    """The mount cannot start; the message says why and what to do."""


@dataclass
class MountOptions:
    mountpoint: Path
    store_path: Path
    cache_size: int
    poll_interval: float = 60.0
    revalidate_interval: float = 900.0
    read_timeout: float = 5.0
    #: the kernel's `ro` flag; without it writes are still refused (EROFS) by the
    #: handlers, but remote changes can be replayed for inotify watchers
    read_only: bool = False
    unlimited: bool = False
    rank_names: bool = False
    hide_views: bool = False
    query_ttl: float = 600.0
    write_back_delay: float = 3.0
    thumbnails: bool = True
    thumbnail_sizes: tuple[str, ...] = ("normal", "large")
    profile: str = "default"  # reloaded on SIGHUP
    watch: tuple[WatchSpec, ...] = field(default_factory=tuple)
    #: settings given as flags: a reload leaves them alone (flags beat the file)
    from_flags: frozenset[str] = frozenset()


def options_from_profile(profile: Profile, mountpoint: Path, store_path: Path) -> MountOptions:
    assert profile.cache_size is not None
    return MountOptions(
        mountpoint=mountpoint, store_path=store_path, cache_size=profile.cache_size,
        poll_interval=profile.poll_interval, revalidate_interval=profile.revalidate_interval,
        read_timeout=profile.read_timeout, read_only=profile.read_only,
        unlimited=profile.rpm == 0, rank_names=profile.rank_names,
        hide_views=profile.hide_views, query_ttl=profile.query_ttl,
        write_back_delay=profile.write_back_delay, profile=profile.name, watch=profile.watch,
        thumbnails=profile.thumbnails, thumbnail_sizes=profile.thumbnail_sizes,
        from_flags=frozenset(k for k, v in profile.source.items() if v == "command line"))


def _clear_stale_mount(mountpoint: Path) -> None:
    """A daemon that died (kill -9, a crash) leaves its mount behind, answering
    ENOTCONN; systemd's restart must be able to mount again, so it is detached."""
    try:
        os.stat(mountpoint)
    except OSError as exc:
        if exc.errno != errno.ENOTCONN:
            return
        log.warning("%s was left mounted by a daemon that is gone: detaching it", mountpoint)
        subprocess.run(["fusermount3", "-u", "-z", str(mountpoint)], check=False,
                       capture_output=True)


def check_mountpoint(mountpoint: Path) -> None:
    _clear_stale_mount(mountpoint)
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
    async with AionClient(settings, unlimited=opts.unlimited) as client:
        syncer = Syncer(client, store)
        notifier.status("checking the API key")
        try:
            with trio.fail_after(15):
                await syncer.refresh_tree(Priority.INTERACTIVE)
        except AuthError as exc:
            raise MountError("the API key was refused: check AIONVISION_API_KEY or run "
                             f"'aionfs login' ({exc.code or exc.status})") from None
        except (ApiError, trio.TooSlowError) as exc:
            log.warning("the API is unreachable (%s); serving the cached library", exc)
        cache = ContentCache(opts.store_path.parent, store, client,
                             capacity=opts.cache_size, read_timeout=opts.read_timeout)
        view = LibraryView(store, uid=os.getuid(), gid=os.getgid(), read_only=opts.read_only,
                           views=True)
        journal = Journal(store, opts.store_path.parent / "staging")
        local = LocalFiles(journal, store)
        dropped = local.load()
        if dropped:
            log.warning("%d files whose writing never finished (no close) were dropped", dropped)
        uploader = Uploader(journal, syncer, delay=opts.write_back_delay, busy=local.busy,
                            settled=local.settled, shared=local.shared, rekeyed=local.rekey)
        writer = Writer(view, syncer, local, uploader.wake)
        client.on_reachable += [syncer.wake, uploader.wake]  # back online: catch up now
        echoes = Echoes(opts.mountpoint.resolve(), store.dir_path, enabled=not opts.read_only)
        queries = QueryCache(syncer, ttl=opts.query_ttl)
        views = VirtualTree(store, queries, view, rank_names=opts.rank_names,
                            hidden=opts.hide_views)
        ops = AionOperations(view, syncer, cache, echoes, views, local, writer)
        syncer.subscribe(ops.on_events)
        thumbs = None
        if opts.thumbnails:
            thumbs = Thumbnails(store, client, view, opts.mountpoint,
                                opts.store_path.parent / "thumbs",
                                buckets=opts.thumbnail_sizes)
            ops.thumbs = thumbs
            syncer.subscribe(thumbs.on_events)
        watches = Watches(lambda spec: WatchedFolder(
            spec, store, journal, local, writer, uploader.wake, publish=syncer.publish,
            on_queued=ops.local_added))
        sources = Sources(opts.mountpoint, opts.profile, opts.read_only, client, syncer,
                          journal, cache, watches=watches.describe, thumbs=thumbs)
        daemon = _Daemon(opts, sources, syncer, uploader, cache, queries, notifier, watches)
        fuse_options = set(pyfuse3.default_options)
        fuse_options |= {"fsname=aionfs:" + settings.base_url.split("//", 1)[1].split("/")[0],
                         "subtype=aionfs", "noatime"}
        if opts.read_only:
            fuse_options.add("ro")
        # Nothing may touch the mountpoint between init and the FUSE loop's start:
        # the kernel would wait for an answer from this very thread.
        pidfile = pidfile_for(opts.mountpoint)
        control = socket_for(opts.mountpoint)
        try:
            pyfuse3.init(ops, str(opts.mountpoint), fuse_options)
        except RuntimeError as exc:
            raise MountError(f"mounting {opts.mountpoint} failed: {exc}") from None
        ops.mounted = True
        pidfile.write_text(f"{os.getpid()}\n{opts.store_path}\n{opts.mountpoint}\n")
        unmounted_cleanly = False
        try:
            async with trio.open_nursery() as nursery:
                cache.start(nursery)

                async def fuse_loop() -> None:
                    await pyfuse3.main()
                    nursery.cancel_scope.cancel()  # unmounted: stop everything else

                nursery.start_soon(fuse_loop)
                nursery.start_soon(daemon.on_signals)
                nursery.start_soon(cache.keep_pinned)
                nursery.start_soon(echoes.run)
                nursery.start_soon(queries.keep_saved_fresh)
                nursery.start_soon(uploader.run)
                if thumbs is not None:
                    nursery.start_soon(thumbs.run)
                await nursery.start(lambda task_status: syncer.run(
                    poll_interval=opts.poll_interval,
                    revalidate_interval=opts.revalidate_interval, task_status=task_status))
                await nursery.start(serve_control, control, daemon.handlers())
                if not opts.read_only:
                    await nursery.start(watches.run, opts.watch)
                st = await trio.to_thread.run_sync(os.stat, opts.mountpoint)
                _raise_read_ahead(st.st_dev)
                log.info("mounted %s (%d folders, %d files cached)", opts.mountpoint,
                         store.counts()["folders"], store.counts()["files"])
                ready(None)
                notifier.ready(daemon.summary())
                nursery.start_soon(notifier.keep_alive, opts.mountpoint, daemon.summary)
            unmounted_cleanly = True
        finally:
            ops.mounted = False
            notifier.stopping()
            pyfuse3.close(unmount=not unmounted_cleanly)
            pidfile.unlink(missing_ok=True)
            store.close()
            notifier.close()
            lock.release()


#: settings a SIGHUP can change while mounted; the others need a remount
RELOADABLE = ("poll_interval", "revalidate_interval", "read_timeout", "write_back_delay",
              "query_ttl", "cache_size")


@dataclass
class _Daemon:
    """What the control socket and the signals act on."""

    opts: MountOptions
    sources: Sources
    syncer: Syncer
    uploader: Uploader
    cache: ContentCache
    queries: QueryCache
    notifier: Notifier
    watches: Watches

    def summary(self) -> str:
        return summary_line(live_status(self.sources))

    def handlers(self) -> dict[str, Handler]:
        return {"status": self._status, "sync": self._sync, "flush": self._flush,
                "reload": self._reload, "watch": self._watch}

    async def _watch(self, request: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """`aionfs watch` while this mount runs: the mount watches (until it stops)."""
        if self.opts.read_only:
            yield {"error": "the mount is read-only: it uploads nothing"}
            return
        try:
            spec = WatchSpec(dir=Path(request["dir"]), to=str(request.get("to", "")).strip("/"),
                             tags=tuple(str(t) for t in request.get("tags", [])),
                             delete_after_upload=bool(request.get("delete_after_upload")))
        except (KeyError, TypeError) as exc:
            yield {"error": f"bad watch request: {exc}"}
            return
        if not await trio.Path(spec.dir).is_dir():
            yield {"error": f"{spec.dir} is not a directory"}
            return
        added = self.watches.add(spec)
        yield {"result": (f"the mount at {self.opts.mountpoint} now watches {spec.dir} → "
                          f"/{spec.to} (until it stops; add it to the profile to keep it)")
               if added else f"{spec.dir} is already watched"}

    async def _status(self, request: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        yield {"result": live_status(self.sources)}

    async def _sync(self, request: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        yield {"progress": 0, "text": "checking for remote changes"}
        report = await self.syncer.request_round()
        if self.syncer.last_error:
            yield {"error": f"sync failed: {self.syncer.last_error}"}
            return
        yield {"result": f"synced: {report.added} added, {report.updated} updated, "
                         f"{report.moved} moved, {report.deleted} deleted, "
                         f"{report.folders_changed} folders changed"}

    async def _flush(self, request: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        timeout = request.get("timeout", 600.0)
        if not isinstance(timeout, int | float) or timeout < 0:
            yield {"error": "timeout must be a number of seconds"}
            return
        total = self.uploader.queued()
        left = total
        async for left in self.uploader.flush(float(timeout)):
            total = max(total, left)
            yield {"progress": total - left, "total": total, "text": f"{left} left"}
        if left:
            failed = self.uploader.journal.counts().get("failed", 0)
            yield {"error": f"{left} uploads still waiting after {timeout:g}s "
                            "('aionfs status' says why)"
                            + (f"; {failed} failed" if failed else "")}
            return
        failed = self.uploader.journal.counts().get("failed", 0)
        if failed:
            yield {"error": f"queue drained, but {failed} uploads failed ('aionfs status' "
                            "says why)"}
            return
        yield {"result": f"all uploads done ({total} sent)"}

    async def _reload(self, request: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        try:
            changes = self.reload()
        except ConfigError as exc:
            yield {"error": str(exc)}
            return
        yield {"result": "; ".join(changes) or "nothing changed"}

    def reload(self) -> list[str]:
        """Re-read the profile (config file and environment) and apply what can
        change while mounted; the rest is named as needing a remount."""
        profile = load_profile(self.opts.profile)
        if profile.cache_size is None:
            profile = profile.with_overrides("default", cache_size=self.opts.cache_size)
        fresh = options_from_profile(profile, self.opts.mountpoint, self.opts.store_path)
        changes = []
        for f in fields(MountOptions):
            if f.name in ("mountpoint", "store_path", "profile", "unlimited", "watch",
                          "from_flags") or f.name in self.opts.from_flags:
                continue
            old, new = getattr(self.opts, f.name), getattr(fresh, f.name)
            if old == new or profile.source.get(f.name) is None:
                continue  # unchanged, or set by a flag/default the file does not touch
            if f.name in RELOADABLE:
                setattr(self.opts, f.name, new)
                changes.append(f"{f.name} {old} → {new}")
            else:
                changes.append(f"{f.name} needs a remount")
        self.syncer.poll_interval = self.opts.poll_interval
        self.syncer.revalidate_interval = self.opts.revalidate_interval
        self.cache.read_timeout = self.opts.read_timeout
        self.cache.capacity = self.opts.cache_size
        self.uploader.delay = self.opts.write_back_delay
        self.uploader.wake()  # it sleeps for the old delay otherwise
        self.queries.ttl = self.opts.query_ttl
        if not self.opts.read_only:
            changes += self.watches.configure(profile.watch)
        log.info("configuration reloaded: %s", "; ".join(changes) or "nothing changed")
        return changes

    async def on_signals(self) -> None:
        """SIGTERM/SIGINT: unmount, which ends the FUSE loop and with it the daemon;
        SIGHUP: reload the configuration."""
        mountpoint = self.opts.mountpoint
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:
            async for signum in signals:
                if signum == signal.SIGHUP:
                    try:
                        self.reload()
                    except ConfigError as exc:
                        log.error("SIGHUP: the configuration was not reloaded: %s", exc)
                    continue
                log.info("signal %s: unmounting %s", signal.Signals(signum).name, mountpoint)
                self.notifier.stopping()
                await trio.run_process(["fusermount3", "-u", "-z", str(mountpoint)],
                                       check=False)
                return


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
        deadline = time.monotonic() + timeout
        last = -1
        while True:
            counts = dict(store.db.execute(
                "SELECT state, count(*) FROM upload_journal GROUP BY state").fetchall())
            left = counts.get("pending", 0) + counts.get("uploading", 0)
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
    if not os.path.ismount(mountpoint):
        raise MountError(f"{mountpoint} is not mounted")
    left = 0
    if drain and store_path is not None and store_path.exists():
        try:
            left = wait_for_uploads(store_path, drain, progress)
        except KeyboardInterrupt:  # the user would rather not wait: they stay queued
            left = wait_for_uploads(store_path, 0)
    res = subprocess.run(["fusermount3", "-u", str(mountpoint)], capture_output=True,
                         text=True)
    if res.returncode != 0:
        raise MountError(f"unmounting {mountpoint} failed: {res.stderr.strip()} "
                         "(is a file still open there? 'fuser -m' tells)")
    deadline = time.monotonic() + timeout
    while pid is not None and time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except OSError as exc:
            if exc.errno == errno.ESRCH:
                return left
        time.sleep(0.05)
    if pid is not None:
        raise MountError(f"the daemon (pid {pid}) did not exit within {timeout:g}s")
    return left
