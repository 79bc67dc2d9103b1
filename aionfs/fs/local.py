"""Files written on the mount and not yet in the workspace, as the filesystem shows them.

They are journal rows (upload/journal.py) with staging files. This index
keeps them by (directory inode, name) and by inode in memory, so lookups
and listings need no query; a local file shadows a remote one of the same
name until it is uploaded. Writers get the staging file directly, except
that a rewrite of a closed file goes to a side file that replaces the
staging file only at the last close: a crash mid-rewrite keeps the version
whose close returned.

A file unlinked while open stays readable, writable and statable through
its open descriptors (an orphan, nlink 0) until the last close, and nothing
of it is uploaded. A file whose writes failed (EFBIG, ENOSPC) is kept as
failed at its close, never uploaded in part.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..store import ROOT_INODE, ROOT_KEY, Store
from ..upload.journal import MAX_SIZE, Journal, LocalFile
from .view import FsError


@dataclass
class _Open:
    writers: int = 0
    readers: int = 0
    fd: int = -1  # the file being written (staging, or the rewrite side file)
    rewrite: bool = False
    size: int = 0
    dirty: bool = False
    fds: set[int] = field(default_factory=set)
    incomplete: str | None = None  # why what is written may be cut off (a write failed)
    #: fsync'd with nothing written since: its close makes it durable before returning
    synced: bool = False


class LocalFiles:
    def __init__(self, journal: Journal, store: Store) -> None:
        self.journal = journal
        self.store = store
        self._by_dir: dict[int, dict[str, LocalFile]] = {}  # parent inode → name → file
        self._by_inode: dict[int, LocalFile] = {}
        self._open: dict[int, _Open] = {}  # inode → open state
        self._orphans: dict[int, LocalFile] = {}  # unlinked while open, until the last close

    def load(self) -> int:
        cut = self.journal.recover()
        for f in self.journal.all():
            if not f.discard:  # (dropped while in flight: only its copy is left to delete)
                self._index(f)
        return cut

    def parent_of(self, f: LocalFile) -> int:
        """The directory inode a local file is shown in."""
        return ROOT_INODE if f.folder_key == ROOT_KEY else self.store.dir_inode(f.folder_key)

    def _index(self, f: LocalFile) -> None:
        self._by_dir.setdefault(self.parent_of(f), {})[f.name] = f
        self._by_inode[f.inode] = f

    def _unindex(self, f: LocalFile) -> None:
        parent = self.parent_of(f)
        names = self._by_dir.get(parent)
        if names is None or names.get(f.name) is not f:
            # its folder changed under it (deleted remotely): find it by identity
            parent = next((p for p, n in self._by_dir.items() if n.get(f.name) is f), -1)
            names = self._by_dir.get(parent)
        if names is not None:
            del names[f.name]
            if not names:
                del self._by_dir[parent]
        self._by_inode.pop(f.inode, None)

    # -- reading ---------------------------------------------------------------------

    def lookup(self, parent: int, name: str) -> LocalFile | None:
        names = self._by_dir.get(parent) if self._by_dir else None
        return names.get(name) if names else None

    def by_inode(self, inode: int) -> LocalFile | None:
        """A local file by inode, also one unlinked while open (see `linked`)."""
        if self._by_inode:
            f = self._by_inode.get(inode)
            if f is not None:
                return f
        return self._orphans.get(inode) if self._orphans else None

    def linked(self, f: LocalFile) -> bool:
        """Has a name (not unlinked while open)."""
        return f.inode not in self._orphans

    def in_dir(self, parent: int) -> list[LocalFile]:
        return list(self._by_dir.get(parent, {}).values())

    def size(self, f: LocalFile) -> int:
        state = self._open.get(f.inode)
        return state.size if state is not None and state.writers else f.size

    def busy(self, f: LocalFile) -> bool:
        """Open for writing: not to be uploaded yet."""
        state = self._open.get(f.inode)
        return state is not None and state.writers > 0

    def shared(self, f: LocalFile) -> LocalFile:
        """The instance this index shows for a journal row (so state changes show)."""
        return self._by_inode.get(f.inode, f)

    # -- writing ---------------------------------------------------------------------

    def create(self, parent: int, folder_key: str, name: str,
               also: Callable[[], None] | None = None) -> tuple[LocalFile, int]:
        f = self.journal.create(folder_key, name, also=also)
        self._index(f)
        return f, self._first_writer(f)

    def adopt(self, f: LocalFile) -> None:
        """A file queued by someone else (a watched folder): shown until uploaded."""
        self._index(f)

    def begin_edit(self, folder_key: str, name: str, row: Any, times: tuple[int, int]
                   ) -> LocalFile:
        """An uploaded file opened for writing: a new version, under the same inode
        and, until written, with the same times. Not shown until `finish_edit` (its
        staging file is filled first); a crash before that leaves the library file as
        it was (Journal.recover drops an edit never closed)."""
        return self.journal.create(folder_key, name, edit=row, times=times)

    def finish_edit(self, f: LocalFile, size: int) -> None:
        f.size = size
        self._index(f)

    def abandon_edit(self, f: LocalFile) -> None:
        self.journal.remove(f)

    def _first_writer(self, f: LocalFile) -> int:
        main = os.open(f.staging, os.O_RDWR)
        fd = os.dup(main)  # the handle's own; `main` closes with the last writer
        self._open[f.inode] = _Open(writers=1, fd=main, fds={fd})
        return fd

    def needs_copy(self, f: LocalFile, write: bool, truncate: bool) -> bool:
        """Would this open copy the file aside first (a closed file rewritten, not
        truncated)? The caller then runs `copy_aside` in a worker thread first."""
        state = self._open.get(f.inode)
        return (write and not truncate and f.state != "local"
                and (state is None or not state.writers))

    def copy_aside(self, f: LocalFile) -> Path:
        """The staging file's bytes into a private copy (blocking: a worker thread's),
        which `open(prepared=…)` makes the rewrite side file: no other writer ever
        opens a file being copied into."""
        fd, tmp = tempfile.mkstemp(prefix=f"{f.staging.name}.c", dir=f.staging.parent)
        os.close(fd)
        try:
            shutil.copyfile(f.staging, tmp)
        except BaseException:
            os.unlink(tmp)
            raise
        return Path(tmp)

    def open(self, f: LocalFile, write: bool, truncate: bool,
             prepared: Path | None = None) -> int:
        """A descriptor for a new handle on a local file (`prepared`: `copy_aside`'s
        copy, to become the side file of a rewrite that starts now)."""
        state = self._open.setdefault(f.inode, _Open(size=f.size))
        if not write:  # readers see what writers wrote so far (positional I/O only)
            fd = os.dup(state.fd) if state.writers else os.open(f.staging, os.O_RDONLY)
            state.readers += 1
            state.fds.add(fd)
            return fd
        if not state.writers:
            if f.state == "local":  # never closed, or scratch: write in place
                state.fd = os.open(f.staging, os.O_RDWR)
            else:  # a closed file: rewrite on the side, swap at the last close
                side = self.journal.rewrite_path(f)
                if prepared is not None:
                    os.replace(prepared, side)
                elif not truncate:
                    shutil.copyfile(f.staging, side)
                state.fd = os.open(side, os.O_RDWR | os.O_CREAT | (os.O_TRUNC if truncate else 0),
                                   0o600)
                state.rewrite = True
            state.size = os.fstat(state.fd).st_size
        if truncate:
            os.ftruncate(state.fd, 0)
            state.size, state.dirty, state.incomplete = 0, True, None
            f.touch()
        state.writers += 1
        fd = os.dup(state.fd)
        state.fds.add(fd)
        return fd

    def write(self, f: LocalFile, fd: int, offset: int, data: bytes) -> int:
        """A write; one that fails (too big, staging disk full) marks what is written
        as possibly cut off, so that its close keeps it as failed, not uploaded."""
        state = self._open[f.inode]
        end = offset + len(data)
        try:
            if end > MAX_SIZE:
                raise FsError(errno.EFBIG, f"{f.name}: the workspace takes files up to 100 MB")
            n = os.pwrite(fd, data, offset)
        except (FsError, OSError) as exc:
            state.incomplete = f"incomplete: a write failed ({exc})"
            raise
        state.size = max(state.size, offset + n)
        state.dirty, state.synced = True, False
        f.touch()
        return n

    def truncate(self, f: LocalFile, size: int) -> None:
        if size > MAX_SIZE:
            raise FsError(errno.EFBIG, f"{f.name}: the workspace takes files up to 100 MB")
        state = self._open.get(f.inode)
        if state is not None and state.writers:
            os.ftruncate(state.fd, size)
            state.size, state.dirty, state.synced = size, True, False
            if size == 0:
                state.incomplete = None
            f.touch()
        else:  # truncate(2) on a closed file: a rewrite of its own
            fd = self.open(f, write=True, truncate=size == 0)
            try:
                os.ftruncate(fd, size)
                self._open[f.inode].size = size
                self._open[f.inode].dirty = True
                f.touch()
            finally:
                self.release(f, fd, write=True)

    def set_times(self, f: LocalFile, mtime_ns: int | None) -> None:
        """utimens (or chmod/chown: ctime only): kept, across upload and remount."""
        if mtime_ns is not None:
            f.mtime_ns = mtime_ns
        f.touch(ctime_only=True)
        if self.linked(f):
            self.journal.set_times(f)

    def flush(self, f: LocalFile) -> bool:
        """close(2) of a writer: what was written is kept before close returns (the
        kernel sends the release only afterwards): committed, durable against a crash
        of the daemon, on disk by the next group commit. True when a version was kept."""
        state = self._open.get(f.inode)
        if state is None or not state.writers:
            return False
        # (an unlinked file has no name: nothing to keep)
        if not self.linked(f) or not (state.dirty or f.state == "local"):
            return False
        if state.rewrite:  # the side file becomes the file; later writes go to it
            os.replace(self.journal.rewrite_path(f), f.staging)
            state.rewrite = False
        self.journal.commit(f, state.size, incomplete=state.incomplete)
        state.dirty = False
        return True

    def fsynced(self, f: LocalFile) -> None:
        """fsync(2) of a writer returned: the bytes written so far are on disk."""
        state = self._open.get(f.inode)
        if state is not None:
            state.synced = True

    def wants_disk(self, f: LocalFile) -> bool:
        """Was it fsync'd, with nothing written since? Then its close waits for disk."""
        state = self._open.get(f.inode)
        return state is not None and state.synced

    def release(self, f: LocalFile, fd: int, write: bool) -> bool:
        """Close one handle; True when this was the last writer and a version was kept."""
        state = self._open[f.inode]
        state.fds.discard(fd)
        os.close(fd)
        if not write:
            state.readers -= 1
        committed = False
        if write:
            if state.writers == 1:  # written after the last flush (rare): keep that too
                committed = self.flush(f)
            state.writers -= 1
            if state.writers == 0:
                os.close(state.fd)
                if state.rewrite:  # never flushed: the rewrite is dropped
                    self.journal.rewrite_path(f).unlink(missing_ok=True)
                state.fd, state.rewrite = -1, False
        if not state.writers and not state.readers:
            del self._open[f.inode]
            # unlinked while open (and its row gone: else the uploader deletes its copy)
            if self._orphans.pop(f.inode, None) is not None and self.journal.get(f.id) is None:
                f.staging.unlink(missing_ok=True)
                self.journal.rewrite_path(f).unlink(missing_ok=True)
        return committed

    def rename(self, f: LocalFile, parent: int, folder_key: str, name: str) -> None:
        self._unindex(f)
        self.journal.move(f, folder_key, name, closed=not self.busy(f))
        self._index(f)

    def orphaned(self, dir_inode: int) -> list[LocalFile]:
        """Its folder was deleted remotely: the files written into it move to the root
        (where the service would leave them), rather than vanishing from view."""
        moved = list(self._by_dir.get(dir_inode, {}).values())
        for f in moved:
            name = f.name
            while self.lookup(ROOT_INODE, name) is not None:
                stem, ext = os.path.splitext(name)
                name = f"{stem} (from a deleted folder){ext}"
            self.rename(f, ROOT_INODE, ROOT_KEY, name)
        return moved

    def rekey(self, old: str, new: str) -> None:
        """A folder made offline was created remotely: its files follow its new id."""
        for f in self._by_inode.values():
            if f.folder_key == old:
                f.folder_key = new

    def forget(self, f: LocalFile) -> None:
        """Unlinked, or replaced by a file renamed over it: no longer shown, never
        uploaded (a copy in flight is deleted once it lands). Still open: its bytes
        stay for the open descriptors until the last close."""
        self._unindex(f)
        is_open = f.inode in self._open
        if is_open:
            self._orphans[f.inode] = f
        self.journal.drop(f, keep_bytes=is_open)

    def settled(self, f: LocalFile) -> None:
        """Uploaded and shown from the store now: drop it from the overlay."""
        self._unindex(f)
