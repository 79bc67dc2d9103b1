"""What a running mount does when asked: control-socket commands and signals.

`status`, `sync` (--now), `flush`, `reload` and `watch` over the control
socket (control.py); SIGTERM/SIGINT unmount, SIGHUP reloads the profile.
Reloading applies what can change while mounted and names what needs a
remount; settings given as flags are left as they are (flags beat the file).
"""

from __future__ import annotations

import logging
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio

from ..config import SETTINGS, ConfigError, WatchSpec, load_profile
from ..upload.worker import Uploader
from ..views import QueryCache
from ..watch import Watches
from .control import Handler
from .notify import Notifier
from .options import MountOptions
from .status import Sources, live_status, summary_line

log = logging.getLogger(__name__)


@dataclass
class Controls:
    """What the control socket and the signals act on."""

    opts: MountOptions
    sources: Sources  # the client, syncer, journal, cache and thumbnailer
    uploader: Uploader
    queries: QueryCache
    notifier: Notifier
    watches: Watches

    def summary(self) -> str:
        return summary_line(live_status(self.sources))

    def handlers(self) -> dict[str, Handler]:
        return {"status": self._status, "sync": self._sync, "flush": self._flush,
                "reload": self._reload, "watch": self._watch, "pinned": self._pinned}

    async def _pinned(self, request: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """`aionfs pin` marked files in the store: fetch them now."""
        self.sources.cache.pins_changed()
        yield {"result": "fetching pinned files"}

    async def _watch(self, request: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """`aionfs watch` while this mount runs: the mount watches (until it stops)."""
        if self.opts.profile.read_only:
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
        report = await self.sources.syncer.request_round()
        if self.sources.syncer.last_error:
            yield {"error": f"sync failed: {self.sources.syncer.last_error}"}
            return
        yield {"result": f"synced: {report.added} added, {report.updated} updated, "
                         f"{report.moved} moved, {report.deleted} deleted, "
                         f"{report.folders_changed} folders changed"}

    async def _flush(self, request: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        timeout = request.get("timeout", 600.0)
        if not isinstance(timeout, int | float) or timeout < 0:
            yield {"error": "timeout must be a number of seconds"}
            return
        total = self.uploader.journal.queued()
        left = total
        async for left in self.uploader.flush(float(timeout)):
            total = max(total, left)
            yield {"progress": total - left, "total": total, "text": f"{left} left"}
        failed = self.uploader.journal.counts().get("failed", 0)
        if left:
            yield {"error": f"{left} uploads still waiting after {timeout:g}s "
                            "('aionfs status' says why)"
                            + (f"; {failed} failed" if failed else "")}
        elif failed:
            yield {"error": f"queue drained, but {failed} uploads failed ('aionfs status' "
                            "says why)"}
        else:
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
        current = self.opts.profile
        fresh = load_profile(current.name)
        changes, apply = [], {}
        for name, setting in SETTINGS.items():
            if name == "watch" or fresh.source.get(name) is None \
                    or current.source.get(name) == "command line":
                continue  # (below), not set by the file, or a flag (flags win)
            old, new = getattr(current, name), getattr(fresh, name)
            if old == new:
                continue
            if setting.reload:
                apply[name] = new
                changes.append(f"{name} {old} → {new}")
            else:
                changes.append(f"{name} needs a remount")
        self.opts.profile = p = current.with_overrides("config (reloaded)", **apply)
        syncer, cache = self.sources.syncer, self.sources.cache
        syncer.poll_interval, syncer.revalidate_interval = p.poll_interval, p.revalidate_interval
        cache.read_timeout, cache.capacity = p.read_timeout, self.opts.cache_size
        self.uploader.delay = p.write_back_delay
        self.uploader.wake()  # it sleeps for the old delay otherwise
        self.queries.ttl = p.query_ttl
        if self.sources.thumbs is not None:
            self.sources.thumbs.wait = p.thumbnail_wait
        if not p.read_only:
            changes += self.watches.configure(fresh.watch)
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
