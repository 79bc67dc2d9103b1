"""One process at a time sends a store's upload journal.

Two uploaders on one journal (a mount and `aionfs watch`, or two mounts of
one workspace) would each take the same pending file and upload it twice.
The process that runs the uploader holds an exclusive `flock` on
`journal.lock` beside the store for its whole life; the kernel drops it when
the process ends, however it ends, so a crash never leaves it stuck.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path


class JournalBusy(Exception):
    """Another process sends this journal; the message names it."""


class JournalLock:
    def __init__(self, store_dir: Path) -> None:
        self.path = store_dir / "journal.lock"
        self._fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise JournalBusy(f"another aionfs (pid {holder}) is already uploading for this "
                              "workspace; stop it first ('aionfs status' finds a mount)"
                              ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> JournalLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
