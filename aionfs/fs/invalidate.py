"""Inode invalidations off the thread that answers FUSE.

`pyfuse3.invalidate_inode` blocks in the kernel until the inode's cached
pages can be dropped, and a page stays locked while a read of it waits for
our answer: called from a request handler (or anything else on the trio
thread), it can wait for a read that only this thread can answer, and the
mount hangs. pyfuse3 offers a queued variant only for entries
(`invalidate_entry_async`); this is the same for inodes: one queue, one
worker thread (a thread the kernel call forces, as the ground rules allow),
requests served in order, and failures logged there.
"""

from __future__ import annotations

import errno
import logging
import queue
import threading

import pyfuse3

log = logging.getLogger(__name__)


class InodeInvalidator:
    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[tuple[int, bool] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def submit(self, inode: int, attr_only: bool) -> None:
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
                pyfuse3.invalidate_inode(inode, attr_only=attr_only)
            except OSError as exc:  # the kernel did not know the inode: nothing cached
                if exc.errno not in (errno.ENOENT, errno.ENOTDIR):
                    log.warning("invalidating inode %d failed: %s", inode, exc)
