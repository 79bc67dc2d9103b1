"""Thumbnails seeded ahead of the file manager, from the API's small renditions.

A file manager opening a folder of photos on a FUSE mount (which GLib counts
as local) reads every image in full to draw its thumbnails. When a program
that draws thumbnails (one built on GTK, GIO or Qt: file managers, file
dialogs, image viewers; see `consumer.py`) opens a folder, this writes the
freedesktop thumbnails of its images first, each from one rendition
(`small_256` for the normal and large buckets; `medium_750`/`large_1024` when
bigger buckets are asked for), fetched through the presigned URL the folder's
listing carried (`thumbnail_url`, `medium_url`: no API request at all) while
it is fresh, else through one variant request. The opening waits for that, a few seconds at
most (`wait`), at interactive priority: the user is looking at the window,
and an answer before the thumbnails exist would send the file manager to read
the originals. What is not done by then goes on at background priority.
Command-line walkers (`find`, `rsync`, `du`, scripts) and desktop indexers
list folders without seeding anything. A thumbnail already current for
the file (its Thumb::URI and Thumb::MTime match) is not fetched again, also
after a remount; the variant's bytes are kept beside the content cache, so
the same image shown in another folder (`tags/`, `by-date/`) costs nothing.
Changed files are seeded again, deleted and renamed ones lose their old
thumbnails. Documents, links and images without variants are left to the
desktop's own thumbnailers.
"""

from __future__ import annotations

import io
import logging
import math
import os
import stat
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from hashlib import sha1
from pathlib import Path
from typing import Any

import trio
from PIL import Image

from ..api import AionClient, Priority
from ..api.client import LISTED_URL_FRESH
from ..api.errors import ApiError, TransientError
from ..api.retry import Backoff
from ..fs.view import LibraryView
from ..store import Event, Store
from ..store.content_index import validator_of
from .consumer import Consumers
from .standard import (
    BUCKETS,
    file_uri,
    is_current,
    make_thumbnail,
    thumbnail_path,
    thumbnail_root,
    with_uri,
    write_atomically,
)

log = logging.getLogger(__name__)

#: the variant that covers a bucket without scaling up
VARIANT_FOR = {"normal": "small_256", "large": "small_256", "x-large": "medium_750",
               "xx-large": "large_1024"}
PARALLEL = 16  # variant fetches at once for a folder being opened
#: the variants list items carry a presigned URL of (the column of `file_urls`)
LISTED_URL = {"small_256": "thumbnail_url", "medium_750": "medium_url"}

#: (name in the folder, inode, mtime in seconds, size)
Item = tuple[str, int, int, int]


@dataclass
class ThumbStats:
    seeded: int = 0  # thumbnails written
    current: int = 0  # images whose thumbnails were current already
    variant_requests: int = 0  # API requests (the variant endpoint)
    listed_urls: int = 0  # renditions fetched through a listing's URL (no API request)
    failed: int = 0
    skipped: int = 0  # not images, or no variants
    #: folders opened by a process that draws no thumbnails (find, ls, rsync, backups):
    #: decided at its opendir, nothing seeded for it then or later
    walkers: int = 0


@dataclass
class Thumbnails:
    store: Store
    client: AionClient
    view: LibraryView
    mountpoint: Path
    cache_dir: Path  # beside the content cache: the variants' bytes
    buckets: Sequence[str] = ("normal", "large")
    wait: float = 5.0  # the longest an opening waits for its folder's thumbnails
    root: Path = field(default_factory=thumbnail_root)
    stats: ThumbStats = field(default_factory=ThumbStats)
    consumers: Consumers = field(default_factory=Consumers)

    def __post_init__(self) -> None:
        unknown = set(self.buckets) - set(BUCKETS)
        if unknown:
            raise ValueError(f"unknown thumbnail size {sorted(unknown)[0]!r} (one of "
                             f"{', '.join(BUCKETS)})")
        self.variant = max((VARIANT_FOR[b] for b in self.buckets),
                           key=list(VARIANT_FOR.values()).index)
        self._send, self._receive = trio.open_memory_channel[tuple[str, list[Item]]](math.inf)
        self._where: dict[int, set[tuple[str, str]]] = {}  # inode → (dir, name) seeded
        self._failed: set[str] = set()  # file ids without a usable variant
        self._fetching: dict[str, trio.Event] = {}  # file id → done: one request per image
        #: thumbnail URI → done: one writer per thumbnail (a folder seeded for a file
        #: manager's opening and by the background pass at once)
        self._writing: dict[str, trio.Event] = {}
        #: folders whose thumbnails were all current at the last look, until a change
        self._current: set[str] = set()
        self.cache_dir.mkdir(parents=True, exist_ok=True, mode=0o700)

    # -- what the filesystem tells it (cheap, on the FUSE request path) --------------------

    async def opened_by(self, pid: int, rel_dir: str | None, listing: Sequence[Any]) -> None:
        """A folder opened by process `pid`: seeded first if it draws thumbnails; a
        walker's opening (find, ls, rsync, backups) is only counted."""
        if self.consumers.wants(pid):
            await self.opened(rel_dir, listing)
        else:
            self.stats.walkers += 1

    async def opened(self, rel_dir: str | None, listing: Sequence[Any]) -> None:
        """A thumbnail consumer opened a folder: seed what it shows before it looks,
        waiting at most `wait` seconds; the rest goes on in the background."""
        if rel_dir is None or rel_dir in self._current:
            return  # all current at the last look, and nothing changed since
        items = [(os.fsdecode(name), a.inode, a.mtime_ns // 1_000_000_000, a.size)
                 for name, a in listing if stat.S_ISREG(a.mode)]
        with trio.move_on_after(self.wait) as scope:
            try:
                await self._seed_folder(rel_dir, items, Priority.INTERACTIVE)
            except TransientError as exc:
                log.info("thumbnails for /%s wait for the API (%s)", rel_dir, exc)
                scope.cancel()
        if scope.cancelled_caught:
            self._send.send_nowait((rel_dir, items))  # the rest, in the background
        else:
            self._current.add(rel_dir)

    def on_events(self, events: list[Event]) -> None:
        """Deleted files lose their thumbnails; renamed ones take theirs along (a file
        manager shown the new name at once must find it current, or it reads the
        original); changed ones get new ones (where they were seeded) at once.

        Runs before the mount replays the change for inotify (it subscribed first),
        so the thumbnail is at the new name before a file manager hears of it."""
        if events:
            self._current.clear()  # a name or a file changed somewhere: look again
        added = {e.inode: e for e in events if e.kind == "entry_added" and not e.is_dir
                 and e.parent is not None and e.name is not None}
        for e in events:
            if e.kind == "entry_removed" and not e.is_dir and e.parent is not None \
                    and e.name is not None:
                rel = self.store.dir_path(e.parent)
                if rel is not None:
                    to = added.get(e.inode)
                    new_rel = self.store.dir_path(to.parent) if to and to.parent else None
                    if to is not None and to.name is not None and new_rel is not None:
                        self._carry(rel, e.name, new_rel, to.name, e.inode)
                    self._remove(rel, e.name)
                    self._where.get(e.inode, set()).discard((rel, e.name))
            elif e.kind in ("attr", "content") and e.inode in self._where:
                for rel, name in list(self._where[e.inode]):
                    self._send.send_nowait((rel, [(name, e.inode, -1, -1)]))

    def _carry(self, rel_dir: str, name: str, new_dir: str, new_name: str,
               inode: int) -> None:
        """Thumbnails of a renamed file written for its new name (a few small files)."""
        uri = file_uri(self.mountpoint / rel_dir / name)
        new_uri = file_uri(self.mountpoint / new_dir / new_name)
        carried = False
        for bucket in BUCKETS:
            try:
                renamed = with_uri(thumbnail_path(self.root, bucket, uri).read_bytes(),
                                   uri, new_uri)
                if renamed is not None:
                    write_atomically(thumbnail_path(self.root, bucket, new_uri), renamed)
                    carried = True
            except FileNotFoundError:
                pass
            except OSError as exc:
                log.debug("carrying the thumbnail of %s to %s: %s", name, new_name, exc)
        if carried:
            self._where.setdefault(inode, set()).add((new_dir, new_name))

    def _remove(self, rel_dir: str, name: str) -> None:
        uri = file_uri(self.mountpoint / rel_dir / name)
        for bucket in BUCKETS:
            try:
                thumbnail_path(self.root, bucket, uri).unlink()
            except FileNotFoundError:
                pass
            except OSError as exc:
                log.debug("removing the thumbnail of %s: %s", name, exc)

    # -- the task ------------------------------------------------------------------------------

    async def run(self) -> None:
        backoff = Backoff(2.0, 60.0)
        async for rel_dir, items in self._receive:
            try:
                await self._seed_folder(rel_dir, items)
                backoff.reset()
            except TransientError as exc:
                pause = backoff.next()
                log.info("thumbnails for /%s wait for the API (%s; again in %.0fs)",
                         rel_dir, exc, pause)
                await trio.sleep(pause)
                self._send.send_nowait((rel_dir, items))
            except Exception:  # thumbnails are a nicety: never the mount's end
                log.exception("seeding the thumbnails of /%s failed", rel_dir)

    def _rows(self, inodes: list[int]) -> dict[int, Any]:
        return self.store.files_by_inode(inodes)

    async def _seed_folder(self, rel_dir: str, items: list[Item],
                           priority: Priority = Priority.BACKGROUND) -> None:
        """Check the thumbnails in one go, then fetch what is missing (in parallel
        when someone waits)."""
        rows = self._rows([i[1] for i in items])
        todo: list[tuple[str, Any, str, int, int, list[Path]]] = []
        for name, inode, mtime, size in items:
            row = rows.get(inode)
            if row is None or row["media_type"] != "image" or \
                    row["variant_status"] != "completed" or row["id"] in self._failed:
                self.stats.skipped += 1
                continue
            if mtime < 0:  # changed: what the mount shows now
                attr = self.view.file_attr(row)
                mtime, size = attr.mtime_ns // 1_000_000_000, attr.size
            uri = file_uri(self.mountpoint / rel_dir / name)
            self._where.setdefault(inode, set()).add((rel_dir, name))
            todo.append((name, row, uri, mtime, size,
                         [thumbnail_path(self.root, b, uri) for b in self.buckets]))
        stale = await trio.to_thread.run_sync(
            lambda: [t for t in todo if not all(is_current(p, t[2], t[3]) for p in t[5])])
        self.stats.current += len(todo) - len(stale)
        limiter = trio.CapacityLimiter(PARALLEL if priority == Priority.INTERACTIVE else 1)
        failures: list[TransientError] = []

        async def one(name: str, row: Any, uri: str, mtime: int, size: int,
                      paths: list[Path]) -> None:
            async with limiter:
                try:
                    await self._seed_one(name, row, uri, mtime, size, paths, priority)
                except TransientError as exc:
                    failures.append(exc)

        async with trio.open_nursery() as nursery:
            for job in stale:
                nursery.start_soon(one, *job)
        if failures:
            raise failures[0]

    async def _seed_one(self, name: str, row: Any, uri: str, mtime: int, size: int,
                        paths: list[Path], priority: Priority) -> None:
        while (busy := self._writing.get(uri)) is not None:
            await busy.wait()  # another task writes this very thumbnail: its result
            if await trio.to_thread.run_sync(
                    lambda: all(is_current(p, uri, mtime) for p in paths)):
                self.stats.current += 1
                return
        self._writing[uri] = done = trio.Event()
        try:
            await self._write_one(name, row, uri, mtime, size, paths, priority)
        finally:
            del self._writing[uri]
            done.set()

    async def _write_one(self, name: str, row: Any, uri: str, mtime: int, size: int,
                         paths: list[Path], priority: Priority) -> None:
        source = await self._variant(row, priority)
        if source is None:
            return
        try:
            await trio.to_thread.run_sync(self._write, source, uri, mtime, size,
                                          row["content_type"], paths)
        except (OSError, ValueError, Image.DecompressionBombError) as exc:
            # a rendition Pillow cannot read, or the thumbnail cache is not writable
            log.warning("no thumbnail for %s: %s", name, exc)
            self._failed.add(row["id"])
            self.stats.failed += 1
            return
        self.stats.seeded += len(paths)

    def _write(self, source: bytes, uri: str, mtime: int, size: int, mime: str | None,
               paths: list[Path]) -> None:
        with Image.open(io.BytesIO(source)) as img:
            img.load()
            for bucket, path in zip(self.buckets, paths, strict=True):
                write_atomically(path, make_thumbnail(img, bucket, uri=uri, mtime=mtime,
                                                      size=size, mime=mime))

    async def _from_listing(self, row: Any) -> bytes | None:
        """The rendition through the presigned URL the folder's listing carried, while
        fresh: no API request at all (a request of the plan's budget per image was a
        200-image folder's 20 minutes on FREE). Expired or failing: None (the variant
        endpoint then)."""
        kind = LISTED_URL.get(self.variant)
        url = kind and self.store.listed_url(row["id"], kind, time.time() - LISTED_URL_FRESH)
        if not url:
            return None
        try:
            data = await self.client.blob_bytes(url, what=f"{row['id']} ({kind})")
        except ApiError as exc:
            log.debug("the listed %s of %s failed (%s): the variant instead", kind, row["id"],
                      exc)
            return None
        self.stats.listed_urls += 1
        return data

    async def _variant(self, row: Any, priority: Priority) -> bytes | None:
        """The rendition's bytes: kept from before, or one variant request (shared by
        whoever else wants the same image meanwhile)."""
        key = sha1(validator_of(row).encode()).hexdigest()[:12]
        kept = self.cache_dir / f"{row['id']}.{self.variant}.{key}"
        while (busy := self._fetching.get(row["id"])) is not None:
            await busy.wait()
        try:
            return await trio.Path(kept).read_bytes()
        except FileNotFoundError:
            pass
        if row["id"] in self._failed:
            return None
        self._fetching[row["id"]] = done = trio.Event()
        try:
            return await self._fetch(row, kept, priority)
        finally:
            del self._fetching[row["id"]]
            done.set()

    async def _fetch(self, row: Any, kept: Path, priority: Priority) -> bytes | None:
        data = await self._from_listing(row)
        if data is None:
            self.stats.variant_requests += 1
            try:
                data = await self.client.download_bytes(row["id"], variant=self.variant,
                                                        priority=priority)
            except TransientError:
                raise
            except ApiError as exc:
                log.debug("no %s variant for %s: %s", self.variant, row["id"], exc)
                self._failed.add(row["id"])
                self.stats.failed += 1
                return None
        for old in await trio.to_thread.run_sync(
                lambda: list(self.cache_dir.glob(f"{row['id']}.*"))):
            old.unlink(missing_ok=True)  # an earlier version's
        await trio.to_thread.run_sync(write_atomically, kept, data)
        return data
