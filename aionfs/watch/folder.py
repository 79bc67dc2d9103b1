"""A watched folder: every complete file that appears below it is uploaded, once.

A file is taken when it is complete: no event for it for `settle` seconds,
its size and modification time unchanged since the last look, and no process
holding it open for writing (from /proc). Scratch and partial files (`.part`,
`.crdownload`, `*.tmp`, dot-files, `~` backups) are never taken; renaming one
to its final name is what makes it a file to upload. Types the API refuses
and files over 100 MB are skipped with one log line each.

Taking a file copies it into the upload journal's staging (hashing it on the
way) and writes, in the journal's own transaction, a `watched_files` row of
what was taken (path, size, mtime, hash). So after any crash either both
exist (the upload resumes) or neither (the file is taken again): never zero
uploads, never two. A file seen again with the same size and mtime is not
read again; with the same bytes under a new name (renamed after upload) it
is not uploaded again; with new bytes it is a new upload. Subfolders below
the watched folder become subfolders of the library folder.

With `delete_after_upload`, the local file is removed once the workspace has
it, and only if it is still what was uploaded.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import trio

from ..config import WatchSpec
from ..fs.local import LocalFiles
from ..fs.view import FsError
from ..fs.writer import Writer
from ..store import ROOT_INODE, ROOT_KEY, Event, Store
from ..store.watched import WatchedFiles
from ..upload.journal import MAX_SIZE, Journal, LocalFile, content_type, is_scratch
from .events import FolderEvents

log = logging.getLogger(__name__)

RESCAN_INTERVAL = 30.0
CHUNK = 1 << 20


@dataclass
class _Candidate:
    seen: float  # last event or change
    size: int = -1
    mtime_ns: int = -1


def open_for_writing(path: str) -> bool:
    """Does any process (that we may look at) hold `path` open for writing?"""
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        fd_dir = f"/proc/{pid}/fd"
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"{fd_dir}/{fd}") != path:
                    continue
                with open(f"/proc/{pid}/fdinfo/{fd}") as info:
                    flags = next(int(line.split()[1], 8) for line in info
                                 if line.startswith("flags:"))
            except (OSError, StopIteration, ValueError):
                continue
            if flags & os.O_ACCMODE in (os.O_WRONLY, os.O_RDWR):
                return True
    return False


def _walk(top: str, root: str) -> list[tuple[str, int, int]]:
    """(path below root, size, mtime_ns) of the files below `top`, but scratch ones
    and those in hidden folders (run in a worker thread: no shared state)."""
    out = []
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            if is_scratch(name):
                continue
            path = os.path.join(dirpath, name)
            try:
                st = os.stat(path)
            except OSError:
                continue
            out.append((os.path.relpath(path, root), st.st_size, st.st_mtime_ns))
    return out


def _copy_and_hash(src: str, dst: Path) -> tuple[int, str, int]:
    """Copy, fsync, hash; returns (size, sha256, mtime_ns of the source after)."""
    digest = hashlib.sha256()
    size = 0
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        while chunk := fin.read(CHUNK):
            digest.update(chunk)
            fout.write(chunk)
            size += len(chunk)
        fout.flush()
        os.fsync(fout.fileno())
        after = os.fstat(fin.fileno())
    dir_fd = os.open(dst.parent, os.O_RDONLY | os.O_DIRECTORY)  # (its name too: on_disk)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return size, digest.hexdigest(), after.st_mtime_ns


@dataclass
class WatchedFolder:
    spec: WatchSpec
    store: Store
    journal: Journal
    local: LocalFiles
    writer: Writer
    publish: Callable[[list[Event]], None] = lambda events: None
    #: a file was queued: the mount shows it at once (its folder's listing changed)
    on_queued: Callable[[LocalFile], None] = lambda f: None
    settle: float = 2.0
    _candidates: dict[str, _Candidate] = field(default_factory=dict)
    _told: set[str] = field(default_factory=set)
    _wake: trio.Event = field(default_factory=trio.Event)  # a file event came in

    @property
    def root(self) -> str:
        return os.path.abspath(self.spec.dir)

    @cached_property
    def records(self) -> WatchedFiles:
        """What this folder took or skipped (store/watched.py)."""
        return WatchedFiles(self.store, self.root)

    # -- what status shows ---------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        counts = self.records.counts()
        return {"dir": self.root, "to": self.spec.to, "tags": list(self.spec.tags),
                "delete_after_upload": self.spec.delete_after_upload,
                "uploaded": counts.get("uploaded", 0), "queued": counts.get("queued", 0),
                "skipped": counts.get("skipped", 0), "waiting": len(self._candidates)}

    # -- the loop --------------------------------------------------------------------------

    async def run(self) -> None:
        if not await trio.Path(self.root).is_dir():
            log.error("watched folder %s does not exist: not watching it", self.root)
            return
        log.info("watching %s → /%s", self.root, self.spec.to)
        async with FolderEvents(Path(self.root)) as changes, trio.open_nursery() as nursery:
            nursery.start_soon(self._take_events, changes)
            last_scan = 0.0
            while True:
                self._wake = trio.Event()  # (before looking: no event is missed)
                if time.monotonic() - last_scan >= RESCAN_INTERVAL:
                    await self._scan()
                    last_scan = time.monotonic()
                await self._process()
                uploading = self._remove_uploaded()
                with trio.move_on_after(self._next_look(last_scan, uploading)):
                    await self._wake.wait()

    def _next_look(self, last_scan: float, uploading: bool) -> float:
        """Seconds until something may be due: the first candidate settled, the
        next rescan, or (files to remove once uploaded) a second; a new event
        wakes the loop sooner."""
        now = time.monotonic()
        wait = last_scan + RESCAN_INTERVAL - now
        for c in self._candidates.values():
            wait = min(wait, c.seen + self.settle - now)
        if uploading:
            wait = min(wait, 1.0)
        return max(wait, 0.05)

    async def _take_events(self, changes: trio.MemoryReceiveChannel[tuple[bool, str]]) -> None:
        async for is_dir, path in changes:
            if is_dir:  # a folder moved in, full of files
                await self._scan(path)
            else:
                self._note(path)

    def _note(self, path: str) -> None:
        rel = os.path.relpath(path, self.root)
        if rel.startswith(".."):
            return
        c = self._candidates.get(rel)
        if c is None:
            self._candidates[rel] = _Candidate(time.monotonic())
        else:
            c.seen = time.monotonic()
        self._wake.set()

    async def _scan(self, below: str | None = None) -> None:
        """Every file not taken yet (or changed since) becomes a candidate."""
        known = self.records.seen()
        found = await trio.to_thread.run_sync(_walk, below or self.root, self.root)
        for rel, size, mtime_ns in found:
            if rel not in self._candidates and known.get(rel) != (size, mtime_ns):
                self._candidates[rel] = _Candidate(time.monotonic() - self.settle)

    async def _process(self) -> None:
        now = time.monotonic()
        for rel, c in list(self._candidates.items()):
            if now - c.seen < self.settle:
                continue
            try:
                done = await self._consider(rel, c)
            except OSError as exc:
                log.warning("watched file %s: %s (tried again later)", rel, exc)
                c.seen = time.monotonic()
                continue
            if done:
                self._candidates.pop(rel, None)

    def _skip(self, rel: str, st: os.stat_result, reason: str) -> None:
        if rel not in self._told:
            log.info("watched file %s skipped: %s", rel, reason)
            self._told.add(rel)
        self.records.skipped(rel, st.st_size, st.st_mtime_ns, reason)

    async def _consider(self, rel: str, c: _Candidate) -> bool:
        """Take the file if it is complete; True when nothing more is to be done."""
        path = os.path.join(self.root, rel)
        name = os.path.basename(rel)
        if is_scratch(name) or any(part.startswith(".") for part in rel.split(os.sep)[:-1]):
            return True  # partial or scratch: its final name will come as its own event
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return True  # gone (renamed to its final name, or deleted)
        if not stat.S_ISREG(st.st_mode):
            return True
        if (st.st_size, st.st_mtime_ns) != (c.size, c.mtime_ns):
            c.size, c.mtime_ns, c.seen = st.st_size, st.st_mtime_ns, time.monotonic()
            return False  # changed since the last look: wait until it stays the same
        if await trio.to_thread.run_sync(open_for_writing, path):
            c.seen = time.monotonic()
            return False
        row = self.records.get(rel)
        if row is not None and (row[0], row[1]) == (st.st_size, st.st_mtime_ns):
            return True  # taken before (or skipped before) as it is now
        if content_type(name) is None:
            self._skip(rel, st, "the workspace does not take this type")
            return True
        if st.st_size > MAX_SIZE:
            self._skip(rel, st, "over 100 MB")
            return True
        if st.st_size == 0:
            self._skip(rel, st, "empty")
            return True
        folder_key = await self._folder_for(os.path.dirname(rel))
        if folder_key is None:
            c.seen = time.monotonic()
            return False
        f = self.journal.create(folder_key, name)
        try:
            size, sha, mtime_after = await trio.to_thread.run_sync(_copy_and_hash, path,
                                                                   f.staging)
        except BaseException:
            self.journal.remove(f)
            raise
        if (size, mtime_after) != (st.st_size, st.st_mtime_ns):
            self.journal.remove(f)  # written to while copied: once more, when it settles
            c.size, c.mtime_ns, c.seen = size, mtime_after, time.monotonic()
            return False
        if row is not None and row[2] == sha:
            self.journal.remove(f)  # touched, same bytes
            self._record(rel, st, sha)
            return True
        for old in self.records.with_bytes(sha, size):
            if not await trio.Path(self.root, old).exists():
                self.journal.remove(f)  # the same bytes under a new name: moved, not new
                self.records.renamed(old, rel, st.st_mtime_ns)
                log.info("watched file %s was %s: not uploaded again", rel, old)
                return True
        if self.spec.tags:
            self.journal.update(f, tags=json.dumps(list(self.spec.tags)))

        self.journal.commit(f, size, also=lambda db: self.records.queued(
            rel, size, st.st_mtime_ns, sha, f.id), on_disk=True)  # (the copy was fsync'd)
        queued = self.journal.get(f.id) or f
        self.local.adopt(queued)
        self.on_queued(queued)  # (the uploader heard of it from the journal's close)
        log.info("watched file %s queued for upload to /%s", rel,
                 "/".join(p for p in (self.spec.to, os.path.dirname(rel)) if p))
        return True

    def _record(self, rel: str, st: os.stat_result, sha: str) -> None:
        self.records.touched(rel, st.st_size, st.st_mtime_ns, sha)

    async def _folder_for(self, rel_dir: str) -> str | None:
        """The library folder a file of this subfolder goes to, made if missing."""
        parts = [p for p in self.spec.to.split("/") if p]
        parts += [p for p in rel_dir.split(os.sep) if p and p != "."]
        inode, key = ROOT_INODE, ROOT_KEY
        for part in parts:
            entry = self.store.lookup(inode, part)
            if entry is not None and not entry.is_dir:
                log.error("watched folder %s: /%s is a file, not a folder", self.root, part)
                return None
            if entry is None:
                try:
                    inode, events = await self.writer.mkdir(inode, part)
                except FsError as exc:
                    if exc.errno != errno.EEXIST:
                        log.warning("watched folder %s: cannot create /%s: %s", self.root,
                                    "/".join(parts), exc)
                        return None
                    found = self.store.lookup(inode, part)
                    if found is None:
                        return None
                    inode = found.inode
                else:
                    self.publish(events)
            else:
                inode = entry.inode
            folder = self.store.folder_by_inode(inode)
            if folder is None:
                return None
            key = folder["id"]
        return key

    def _remove_uploaded(self) -> bool:
        """delete_after_upload: the local file goes once the workspace has it.
        Returns whether files of this folder are still on their way up."""
        if not self.spec.delete_after_upload:
            return False
        rows = self.records.in_flight_or_done()
        uploading = any(r[3] == "queued" for r in rows)
        for rel, size, mtime_ns, state in rows:
            if state != "uploaded":
                continue
            path = os.path.join(self.root, rel)
            try:
                st = os.stat(path)
                if (st.st_size, st.st_mtime_ns) == (size, mtime_ns):
                    os.unlink(path)
                    log.info("watched file %s uploaded: removed locally", rel)
                else:
                    log.info("watched file %s changed after its upload: kept", rel)
            except FileNotFoundError:
                pass
            except OSError as exc:
                log.warning("watched file %s: could not remove it: %s", rel, exc)
                continue
            self.records.removed(rel)
        return uploading
