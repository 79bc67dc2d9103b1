"""Empty files made ahead of need, so neither a create on the mount nor a cold
read waits for the disk to make a file.

Making a file costs the disk's metadata path (ext4's inode allocation and
journal): 60 µs on a quiet disk, up to 900 µs on a busy one, measured on the
benchmark machines, where it ran on the thread that answers FUSE. Two places
need one file per file of the library: each file created on the mount gets
a staging file (upload/journal.py), and each file read cold gets a content
cache file (cache/content.py). A pool keeps a few dozen empty files made by
a worker thread and hands one out with no system call (the caller renames it
where it wants it, ~15 µs, or keeps its name); it is refilled in the
background when half gone. A burst faster than the refill falls back to
making the file on the spot.

Pool files are named `n<random hex>` and hold no data until taken, so a file
of this name that nobody took is removed at the next start or at unmount
(`discard`): the journal tells its untaken files by the names its rows
store, the content cache keeps its pool in a directory of its own.
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


def make_empty(path: Path) -> None:
    """A new empty file (never an existing one: O_EXCL)."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


class FilePool:
    def __init__(self, directory: Path, size: int = SIZE, *, own_directory: bool = False
                 ) -> None:
        """`own_directory`: the directory holds nothing but this pool's files, so what
        is in it before the first fill (left by a crash) is removed then."""
        self.dir = directory
        self.size = size
        self._strays = own_directory
        self._ready: collections.deque[Path] = collections.deque()
        self._low = trio.Event()
        self._low.set()  # fill at start
        self.taken = 0
        self.missed = 0  # creates that found the pool empty (made the file themselves)

    @property
    def ready(self) -> int:
        """Files ready to be taken."""
        return len(self._ready)

    def statistics(self) -> dict[str, int]:
        """For `aionfs status`: files ready, taken, and made on the spot because none was."""
        return {"ready": len(self._ready), "taken": self.taken, "made_on_the_spot": self.missed}

    def take(self) -> Path | None:
        """An empty file of our own, or None when none is ready (the caller makes
        one). Never blocks."""
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
        if self._strays:
            self._strays = False
            for stray in self.dir.iterdir():
                try:
                    stray.unlink(missing_ok=True)
                except OSError as exc:  # (not ours to remove: a directory, another owner)
                    log.warning("file pool %s: cannot remove %s: %s", self.dir, stray.name, exc)
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
                log.debug("file pool %s: stopped after %d files: %s", self.dir, len(made), exc)
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
                log.log(level, "file pool %s: cannot make files ahead (%s); files are made on the spot",
                        self.dir, exc)
                await trio.sleep(5)
                self._low.set()
                continue
            self._ready.extend(made)

    def discard(self) -> None:
        """At unmount: the files never taken go (a crash leaves them to `recover`)."""
        while self._ready:
            self._ready.pop().unlink(missing_ok=True)
