"""Telling the kernel what changed, never blocking the thread that answers FUSE.

`KernelNotifier` is what the filesystem core (fs/core.py) calls when a name or an
inode changed behind the kernel's back; the kernel calls themselves are
given by the adapter (fs/ops.py, the only module that imports pyfuse3), so
the core runs without FUSE in the unit tests.

Inode invalidations run off the trio thread: the kernel's
`invalidate_inode` blocks until the inode's cached pages can be dropped,
and a page stays locked while a read of it waits for our answer; called
from a request handler (or anything else on the trio thread) it can wait
for a read that only this thread can answer, and the mount hangs. pyfuse3
offers a queued variant only for entries (`invalidate_entry_async`); this
is the same for inodes: one queue, one worker thread (a thread the kernel
call forces, as the ground rules allow), requests served in order, and
failures logged there.
"""

from __future__ import annotations

import errno
import logging
import os
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

#: errnos of a notification about something the kernel never cached: nothing to do
_NOT_CACHED = (errno.ENOENT, errno.ENOTDIR)


@dataclass(frozen=True)
class KernelCalls:
    """The kernel's notification calls, as the FUSE binding offers them."""

    #: (inode, attr_only): blocking; drops the inode's attributes (and pages)
    invalidate_inode: Callable[[int, bool], None]
    #: (parent, name, deleted inode or 0): queued by the binding, never blocking
    invalidate_entry_async: Callable[[int, bytes, int], None]
    #: (parent, name, deleted inode): blocking; for the echo worker's own thread
    invalidate_entry: Callable[[int, bytes, int], None]


class KernelNotifier:
    def __init__(self, kernel: KernelCalls) -> None:
        self.kernel = kernel
        self._queue: queue.SimpleQueue[tuple[int, bool] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def entry(self, parent: int, name: str, deleted: int = 0) -> None:
        """The name `name` in `parent` changed (or went, with the inode it named)."""
        try:
            self.kernel.invalidate_entry_async(parent, os.fsencode(name), deleted)
        except OSError as exc:
            if exc.errno not in _NOT_CACHED:
                log.warning("invalidating %r in %d failed: %s", name, parent, exc)

    def forget_deleted(self, parent: int, name: str, inode: int) -> None:
        """Blocking delete notification, for the echo worker's thread (see fs/echo.py)."""
        try:
            self.kernel.invalidate_entry(parent, os.fsencode(name), inode)
        except OSError as exc:  # the kernel had no such name cached: nothing to forget
            if exc.errno not in _NOT_CACHED:
                raise

    def inode(self, inode: int, attr_only: bool) -> None:
        """Have the kernel drop what it cached of `inode` (its attributes; with
        attr_only False its pages too), soon, without waiting here."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="aionfs-invalidate",
                                            daemon=True)
            self._thread.start()
        self._queue.put((inode, attr_only))

    def close(self, timeout: float = 2.0) -> None:
        """Before the FUSE session closes: the queue is drained (within `timeout`)."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout)

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            inode, attr_only = item
            try:
                self.kernel.invalidate_inode(inode, attr_only)
            except OSError as exc:  # the kernel did not know the inode: nothing cached
                if exc.errno not in _NOT_CACHED:
                    log.warning("invalidating inode %d failed: %s", inode, exc)
