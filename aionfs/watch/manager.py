"""The watched folders a process runs: started, stopped and replaced as the profile says.

Each folder runs in its own cancel scope under one nursery (the daemon's, or
`aionfs watch`'s); a failure in one is logged and retried after a pause, and
never stops the others or the mount.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import trio

from ..api.retry import Backoff
from ..config import WatchSpec
from .folder import WatchedFolder

log = logging.getLogger(__name__)



class Watches:
    def __init__(self, make: Callable[[WatchSpec], WatchedFolder]) -> None:
        self.make = make
        self._running: dict[WatchSpec, tuple[WatchedFolder, trio.CancelScope]] = {}
        self._configured: set[WatchSpec] = set()
        self._nursery: trio.Nursery | None = None

    async def run(self, specs: tuple[WatchSpec, ...], *,
                  task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            self.configure(specs)
            task_status.started()
            await trio.sleep_forever()

    def configure(self, specs: tuple[WatchSpec, ...]) -> list[str]:
        """The profile's watches are now `specs`: stop the others it had, start new ones.
        Watches added at run time (`add`) are kept."""
        changes = []
        for spec in self._configured - set(specs):
            self._stop(spec)
            changes.append(f"stopped watching {spec.dir}")
        for spec in specs:
            if spec not in self._running:
                self.add(spec)
                changes.append(f"watching {spec.dir} → /{spec.to}")
        self._configured = set(specs)
        return changes

    def add(self, spec: WatchSpec) -> bool:
        if spec in self._running:
            return False
        assert self._nursery is not None, "run() first"
        scope = trio.CancelScope()
        folder = self.make(spec)
        self._running[spec] = (folder, scope)
        self._nursery.start_soon(self._one, spec, folder, scope)
        return True

    def _stop(self, spec: WatchSpec) -> None:
        entry = self._running.pop(spec, None)
        if entry is not None:
            entry[1].cancel()

    async def _one(self, spec: WatchSpec, folder: WatchedFolder, scope: trio.CancelScope
                   ) -> None:
        backoff = Backoff(5.0, 300.0)
        with scope:
            while True:
                started = trio.current_time()
                try:
                    await folder.run()
                    break  # the folder is missing: said so once
                except Exception:
                    if trio.current_time() - started > backoff.cap:
                        backoff.reset()  # it ran well for a while: a new failure
                    pause = backoff.next()
                    log.exception("watching %s failed; trying again in %.0fs", spec.dir,
                                  pause)
                await trio.sleep(pause)
        if self._running.get(spec, (None,))[0] is folder:
            del self._running[spec]

    def describe(self) -> list[dict[str, Any]]:
        return [folder.describe() for folder, _ in self._running.values()]
