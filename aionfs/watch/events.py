"""watchdog's observer thread, its events handed to trio through a memory channel.

watchdog runs inotify in a thread of its own; the handler there only
forwards paths (`trio.from_thread.run_sync` with the run's token), so every
decision is made on the trio thread. Events are hints: the watched folder
also rescans now and then, so an event lost to an inotify queue overflow
delays a file, never loses it.
"""

from __future__ import annotations

import contextlib
import logging
import math
from pathlib import Path
from types import TracebackType

import trio
from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

log = logging.getLogger(__name__)

#: (is_dir, path): something changed at path (created, written, closed, moved there)
Change = tuple[bool, str]


class _Forward(FileSystemEventHandler):
    def __init__(self, send: trio.MemorySendChannel[Change], token: trio.lowlevel.TrioToken
                 ) -> None:
        self.send = send
        self.token = token

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in ("deleted", "opened", "closed_no_write"):
            return
        path = event.dest_path if event.event_type == "moved" else event.src_path
        path = path.decode() if isinstance(path, bytes) else path
        # once the watch is over (the observer being stopped) events have nowhere to go
        with contextlib.suppress(trio.RunFinishedError, trio.ClosedResourceError,
                                 trio.BrokenResourceError):
            trio.from_thread.run_sync(self.send.send_nowait, (event.is_directory, path),
                                      trio_token=self.token)


class FolderEvents:
    """`async with FolderEvents(dir) as changes: async for is_dir, path in changes: ...`"""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._send, self._receive = trio.open_memory_channel[Change](math.inf)
        self._observer: Observer | None = None  # type: ignore[valid-type]

    async def __aenter__(self) -> trio.MemoryReceiveChannel[Change]:
        observer = Observer()
        observer.schedule(_Forward(self._send, trio.lowlevel.current_trio_token()),
                          str(self.root), recursive=True)
        observer.daemon = True
        await trio.to_thread.run_sync(observer.start)
        self._observer = observer
        return self._receive

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        observer, self._observer = self._observer, None
        self._send.close()
        if observer is not None:
            observer.stop()
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(observer.join, 5)
