"""Empty staging files made ahead of need, so a create on the mount never waits for the disk.

Each file created on the mount gets a staging file. Making a file costs the
disk's metadata path (ext4's journal): 60 µs on a quiet disk, up to 800 µs
on a busy one — measured on the benchmark machines, it was most of what a
small file's create cost, on the thread that answers FUSE. The pool keeps a
few dozen empty files made by a worker thread and hands one out per create,
with no system call; it is refilled in the background when half gone. A
burst faster than the refill falls back to making the file on the spot.

A taken file becomes the journal row's staging file (the row stores its
path; names are `n<random hex>`, distinct from the older `<row id>` names).
Nothing is written to a file before its row is committed, so a pool file
that no row names holds no data and is removed at the next start
(`Journal.recover`) or at unmount (`discard`).
"""

from __future__ import annotations

import collections
import errno
import logging
import os
import secrets
from pathlib import Path

import trio

log = logging.getLogger(__name__)

#: files kept ready: a `cp -r` of small files takes one per create
SIZE = 64
PREFIX = "n"


def is_pool_name(name: str) -> bool:
    return name.startswith(PREFIX) and len(name) == len(PREFIX) + 16


def make_empty(path: Path) -> None:
    """A new empty staging file (never an existing one: O_EXCL)."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


class StagingPool:
    def __init__(self, directory: Path, size: int = SIZE) -> None:
        self.dir = directory
        self.size = size
        self._ready: collections.deque[Path] = collections.deque()
        self._low = trio.Event()
        self._low.set()  # fill at start
        self.taken = 0
        self.missed = 0  # creates that found the pool empty (made the file themselves)

    def take(self) -> Path | None:
        """An empty staging file of our own, or None when none is ready (the caller
        makes one). Never blocks."""
        if len(self._ready) <= self.size // 2:
            self._low.set()
        if not self._ready:
            self.missed += 1
            return None
        self.taken += 1
        return self._ready.popleft()

    def give_back(self, path: Path) -> None:
        """A file taken and not used (its create was rolled back): still empty."""
        self._ready.appendleft(path)

    def _make(self, count: int) -> list[Path]:
        """In a worker thread: up to `count` new files; stops at the first refusal
        (ENOSPC, EDQUOT: creates then make their files themselves and report it)."""
        made = []
        for _ in range(count):
            path = self.dir / f"{PREFIX}{secrets.token_hex(8)}"
            try:
                make_empty(path)
            except FileExistsError:
                continue
            except OSError as exc:
                if not made:
                    raise
                log.debug("staging pool: stopped after %d files: %s", len(made), exc)
                break
            made.append(path)
        return made

    async def run(self) -> None:
        """Refill whenever half the pool is gone. A disk that refuses is retried after
        a pause (the mount goes on; creates make their own files and get the error)."""
        while True:
            await self._low.wait()
            self._low = trio.Event()
            want = self.size - len(self._ready)
            if want <= 0:
                continue
            try:
                # shielded: cancelled (at unmount) while the thread makes files, their
                # names would be lost and the files left for the next start to remove
                with trio.CancelScope(shield=True):
                    made = await trio.to_thread.run_sync(self._make, want)
            except OSError as exc:
                level = logging.DEBUG if exc.errno in (errno.ENOSPC, errno.EDQUOT) else logging.WARNING
                log.log(level, "staging pool: cannot make files ahead (%s); creates make their own", exc)
                await trio.sleep(5)
                self._low.set()
                continue
            self._ready.extend(made)

    def discard(self) -> None:
        """At unmount: the files never taken go (a crash leaves them to `recover`)."""
        while self._ready:
            self._ready.pop().unlink(missing_ok=True)
