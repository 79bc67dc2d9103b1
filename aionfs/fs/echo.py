"""Replaying remote changes through the mount, so that inotify watchers see them.

The kernel's FUSE notifications (`invalidate_entry`, `notify_delete`) drop
cached names, but raise no inotify event in the directory: a file manager
watching a folder never learns that a file was deleted, renamed or added on
the server. The kernel does raise those events for operations made *through*
the mount, so the daemon makes them itself: after sync commits a change, a
worker thread unlinks, renames or creates the affected name under the
mountpoint, one operation at a time. The FUSE handlers recognise the echo
(a request from one of this process's threads, for exactly the name being
echoed), acknowledge it without touching the API, and answer the worker's
lookups from the world as it was before the change.

The kernel's own caches are invalidated separately and at once (see
`ops.on_events`); an echo that cannot be made (a read-only mount, a name
the kernel already dropped, a race with another process) only means no
inotify event, which is logged at debug level.

A file deleted remotely needs one step more. With the virtual folders on, a
file counts several links (tree, by-date/, tags/), so the echoed unlink only
drops the kernel's link count to one more than zero, and watchers of the file
itself would never get IN_DELETE_SELF. So before unlinking a file that is
gone, the worker has the kernel forget the name with a delete notification
(`forget`, given by the FUSE adapter), which clears the link count, raises
IN_DELETE_SELF and drops the watch; the unlink that follows then finds the
name afresh and raises IN_DELETE for the directory's watchers. The two steps
run one after the other in the worker thread, so no race decides the events.
"""

from __future__ import annotations

import errno
import logging
import math
import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import trio

from ..store import Event

log = logging.getLogger(__name__)

Name = tuple[int, str]  # (parent inode, name)


@dataclass(frozen=True)
class Echo:
    """One operation to replay: `src` is the name that went, `dst` the one that came."""

    kind: str  # unlink | rmdir | rename | mknod | mkdir
    inode: int
    is_dir: bool
    src: Name | None = None
    dst: Name | None = None
    gone: bool = False  # the inode left the library (not only this name)


def plan_echoes(events: Iterable[Event]) -> list[Echo]:
    """The operations that replay a batch of sync events, in a safe order.

    A name removed and another added for the same inode is a rename (or a
    move); directories are renamed and created before the files inside them
    are touched, and removed last, deepest first being the store's order.
    """
    removed: dict[int, tuple[Name, bool]] = {}
    added: dict[int, tuple[Name, bool]] = {}
    gone: set[int] = set()
    for e in events:
        if e.kind == "gone":
            gone.add(e.inode)
        if e.parent is None or e.name is None:
            continue
        if e.kind == "entry_removed":
            removed.setdefault(e.inode, ((e.parent, e.name), e.is_dir))
        elif e.kind == "entry_added":
            added.setdefault(e.inode, ((e.parent, e.name), e.is_dir))
    echoes: list[Echo] = []
    for inode, (src, is_dir) in removed.items():
        if inode in added:
            echoes.append(Echo("rename", inode, is_dir, src, added[inode][0]))
        else:
            echoes.append(Echo("rmdir" if is_dir else "unlink", inode, is_dir, src=src,
                               gone=inode in gone))
    for inode, (dst, is_dir) in added.items():
        if inode not in removed:
            echoes.append(Echo("mkdir" if is_dir else "mknod", inode, is_dir, dst=dst))
    order = {("rename", True): 0, ("mkdir", True): 1, ("rmdir", True): 3}
    return sorted(echoes, key=lambda x: order.get((x.kind, x.is_dir), 2))


class Echoes:
    """The queue of echoes and what the FUSE handlers need to recognise them."""

    def __init__(self, mountpoint: Path, dir_path: Callable[[int], str | None],
                 forget: Callable[[int, str, int], None], *, enabled: bool) -> None:
        self.mountpoint = mountpoint
        self.dir_path = dir_path  # a directory inode's path below the mountpoint, now
        self.enabled = enabled
        #: (parent, name, inode) → the kernel forgets the name of a deleted inode
        #: (blocking; called from the worker thread): fs/notify.py's forget_deleted
        self.forget = forget
        self.current: Echo | None = None
        self._tids: set[int] = set()
        self._send, self._receive = trio.open_memory_channel[list[Echo]](math.inf)

    def submit(self, events: list[Event]) -> None:
        if self.enabled:
            echoes = plan_echoes(events)
            if echoes:
                self._send.send_nowait(echoes)

    # -- what the handlers ask -----------------------------------------------------------

    def mine(self, pid: int) -> bool:
        """Is this request the echo worker's own?"""
        return self.current is not None and (pid in self._tids or pid == os.getpid())

    def before(self, parent: int, name: str, pid: int) -> int | None:
        """For the worker's lookups: the inode (>0) the name had before the change,
        -1 if it did not exist yet, None if this name is not being echoed."""
        echo = self.current
        if echo is None or not self.mine(pid):
            return None
        if echo.src == (parent, name):
            return echo.inode
        if echo.dst == (parent, name):
            return -1
        return None

    def acknowledge(self, kind: str, pid: int, src: Name | None = None,
                    dst: Name | None = None) -> Echo | None:
        """The echo being made, if this request is it."""
        echo = self.current
        if (echo is not None and echo.kind == kind and echo.src == src and echo.dst == dst
                and self.mine(pid)):
            return echo
        return None

    # -- the worker ------------------------------------------------------------------------

    async def run(self) -> None:
        async for batch in self._receive:
            for echo in batch:
                try:
                    call = self._syscall(echo)
                except LookupError:
                    log.debug("no echo for %s: its directory is not shown", echo)
                    continue
                self.current = echo
                try:
                    await trio.to_thread.run_sync(call, abandon_on_cancel=True)
                except OSError as exc:
                    log.debug("echo %s failed: %s", echo, exc)
                    if exc.errno == errno.EROFS:
                        self.enabled = False
                finally:
                    self.current = None

    def _path(self, name: Name) -> str:
        parent = self.dir_path(name[0])
        if parent is None:
            raise LookupError(name)
        return os.path.join(self.mountpoint, parent, name[1])

    def _syscall(self, echo: Echo) -> Callable[[], None]:
        """The call the worker thread makes (paths resolved now, on the trio thread)."""
        tids = self._tids
        forget = self.forget
        if echo.kind == "unlink" and echo.gone and forget is not None and echo.src is not None:
            parent, leaf = echo.src
            path = self._path(echo.src)

            def forget_then_unlink() -> None:
                forget(parent, leaf, echo.inode)
                os.unlink(path)

            act: Callable[[], None] = forget_then_unlink
        elif echo.src is not None and echo.dst is not None:
            src, dst = self._path(echo.src), self._path(echo.dst)
            act = lambda: os.rename(src, dst)  # noqa: E731
        else:
            name = echo.src or echo.dst
            assert name is not None
            path = self._path(name)
            act = {"unlink": lambda: os.unlink(path), "rmdir": lambda: os.rmdir(path),
                   "mkdir": lambda: os.mkdir(path, 0o755),
                   "mknod": lambda: os.mknod(path, 0o644)}[echo.kind]

        def call() -> None:
            tids.add(threading.get_native_id())
            act()

        return call
