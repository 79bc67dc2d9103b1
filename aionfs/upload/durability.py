"""The group commit: closed files reach stable storage within a second, as on ext4.

A close() returns once the bytes are in the staging file and the journal row
is committed: durable against a crash of the daemon (the kernel holds the
written pages, SQLite's WAL the row), not yet against a power loss, and
without waiting for a disk. `GroupCommit` makes every such file durable in
one pass a moment later: each staging file fsync'd, then the staging
directory (new names, replaced rewrites), then the rows marked `on_disk` and
the WAL fsync'd, in that order, so a row never says "on disk" before its
bytes are. One pass serves every file closed in the interval (a `cp -r` of
500 files costs a few fsyncs a second, not two per file). An fsync() of a
file runs the same pass for that file at once (`sync`).

Every fsync runs in a worker thread: the trio thread answers FUSE.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Iterable
from pathlib import Path

import trio

from .journal import Journal, LocalFile

log = logging.getLogger(__name__)

#: the most a closed file waits for stable storage (ext4's commit interval is 5 s)
COMMIT_INTERVAL = 1.0


def _fsync(path: Path, directory: bool = False) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    except FileNotFoundError:  # uploaded and removed meanwhile (or no WAL: checkpointed)
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_files(paths: Iterable[Path], directory: Path) -> set[Path]:
    """fsync each file, then the directory; returns the files the disk refused (an
    error is reported once: a retry may succeed without the bytes, so those are
    never marked on disk by this pass)."""
    failed = set()
    for path in paths:
        try:
            _fsync(path)
        except OSError as exc:
            log.error("fsync of %s failed (it stays not on disk): %s", path, exc)
            failed.add(path)
    _fsync(directory, directory=True)
    return failed


class GroupCommit:
    def __init__(self, journal: Journal, interval: float = COMMIT_INTERVAL) -> None:
        self.journal = journal
        self.interval = interval
        self._closed = trio.Event()  # a file was closed since the last pass began
        self._closed.set()  # (a first pass at start: closes a crash left not on disk)
        self._lock = trio.Lock()  # one pass at a time (their order is the WAL's)
        self.passes = 0
        journal.closed.subscribe(self.closed)

    def closed(self) -> None:
        """A file was closed or renamed: the next pass makes it durable."""
        self._closed.set()

    async def run(self) -> None:
        """A disk that refuses a pass (EIO, ENOSPC, a store error) is logged and tried
        again at the next close: the mount goes on, the files stay not on disk."""
        while True:
            await self._closed.wait()
            await trio.sleep(self.interval)  # every close of the interval in one pass
            self._closed = trio.Event()
            try:
                await self.sync()
            except (OSError, sqlite3.Error) as exc:
                log.error("the group commit failed (closed files stay durable against a "
                          "crash of the daemon, not yet against a power loss): %s", exc)

    async def sync(self, files: list[LocalFile] | None = None) -> None:
        """Make these closed files (default: all not on disk) durable before returning."""
        async with self._lock:
            todo = self.journal.not_on_disk() if files is None else files
            if not todo:
                return
            failed = await trio.to_thread.run_sync(
                _fsync_files, [f.staging for f in todo], self.journal.dir)
            self.journal.mark_on_disk([f for f in todo if f.staging not in failed])
            await trio.to_thread.run_sync(_fsync, self.journal.wal)
            self.passes += 1

    async def sync_entry(self) -> None:
        """A file still being written was fsync'd: its name (the staging directory) and
        its journal row (the WAL) reach the disk too, so a power loss keeps the file
        (as cut off, never uploaded, until rewritten) rather than stray bytes."""
        async with self._lock:
            await trio.to_thread.run_sync(_fsync, self.journal.dir, True)
            await trio.to_thread.run_sync(_fsync, self.journal.wal)

    def sync_now(self) -> None:
        """At unmount, on the way out (no trio left to wait in): the same pass, here."""
        todo = self.journal.not_on_disk()
        if todo:
            failed = _fsync_files([f.staging for f in todo], self.journal.dir)
            self.journal.mark_on_disk([f for f in todo if f.staging not in failed])
            _fsync(self.journal.wal)
