"""The content cache: file bytes on local disk, fetched by range, shared by readers.

Each cached file is a sparse file `content/<file id>` of the file's full
size; which 1 MiB chunks of it are present is recorded in the store
(`content_cache`: ranges, bytes present, pin flag, last access) so the cache
survives restarts. The entry is valid only while the file's size and times
(its validator) are unchanged; otherwise its bytes are dropped.

Reads: a read waits only for the chunks it covers. Missing chunks are
fetched with one ranged request per contiguous run from the storage host,
through the cheapest URL that works (`_source`): a download URL kept from
before (store, until it expires), the original's URL the file's list item
carried (no API request; taken only once the answer proves it is the
original: its total size and type are the file's), else one
`GET /user-files/{id}/download`. A URL that fails (403/404, expired, not the
original) is dropped and the next one tried, so a read fails only when the
API itself cannot give the bytes. Concurrent readers of a chunk wait on the same
fetch; sequential readers get one long read-ahead transfer at a time, its
window doubling (`_ahead`); a read that cannot be satisfied within
`read_timeout` fails (EIO upstream) instead of hanging, except while its
fetch is queued for the plan's request budget: then it waits its turn. Fetches run in the
owner's nursery, not in the FUSE request, and their bodies are received by
worker threads straight into the cache file (`AionClient.fetch_into`), so
the trio thread that answers FUSE requests only completes chunk events.

Eviction: when the bytes present exceed the capacity, the least recently
used entries that are neither open nor pinned are removed.

The index (`content_cache`) is written in one transaction a second
(`INDEX_EVERY`), not per file: three upserts per cold file cost the thread
that answers FUSE about a fifth of its time while reading a folder of
photos. A daemon killed loses at most that second of index, which only
means fetching those bytes again: a row is written after the bytes it
claims, never before.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

from ..api import AionClient, Priority
from ..api.client import LISTED_URL_FRESH
from ..api.errors import ApiError, NotTheObject
from ..api.transfer import Expected
from ..filepool import FilePool
from ..store import Store
from ..store.content_index import ContentIndex, validator_of

log = logging.getLogger(__name__)

CHUNK = 1 << 20
#: the pool's directory inside the cache's (a name no file id has)
READY = ".ready"
#: at most this many chunks per ranged transfer
RUN_CHUNKS = 32
#: the first read-ahead of a file read from its start
INITIAL_WINDOW = 4
#: folder streaming (`tar -c`, `cp -r`, `cat *`): files fetched ahead of a reader
#: that read the previous ones of a folder whole, in order, and the largest size so
#: fetched (bigger files have their own read-ahead)
STREAM_AHEAD = 2
STREAM_MAX_SIZE = 16 << 20
#: seconds between writes of the cache index (batched: see the module's docstring)
INDEX_EVERY = 1.0
#: seconds between looks for pinned files missing bytes, when nothing says so sooner
PINS_EVERY = 60.0
#: a kept download URL is used only if it stays valid this much longer (seconds)
URL_MARGIN = 120.0
#: store meta, per media type (`listed_originals.image` for list items' `full_url`,
#: `.document` for `document_url`): whether their URLs proved to be the originals
#: ("original": one did; "rendition": one did not, and none ever did: not tried again)
LISTED_ORIGINALS = "listed_originals."
#: list URLs of one media type refused as not the original (and none ever taken)
#: before that type's list URLs are no longer tried
LISTED_REFUSALS = 3


@dataclass(frozen=True)
class _Source:
    """A URL to fetch a file's bytes from, and how it was got."""

    url: str
    kind: str  # "kept" (a download URL from before) | "listed" | "api" (asked just now)
    expect: Expected | None = None  # what the answer must be (listed URLs: proven)
    media_type: str = ""


def _refused(exc: ApiError) -> bool:
    """Storage would not give these bytes through this URL (another URL may)."""
    return isinstance(exc, NotTheObject) or (
        exc.status is not None and 400 <= exc.status < 500 and exc.status != 429)


class CacheMiss(Exception):
    """The bytes could not be fetched in time (offline, server failure)."""


@dataclass
class _Entry:
    file_id: str
    size: int
    validator: str
    fd: int
    chunks: set[int]
    open_count: int = 0
    next_seq: int = -1
    window: int = 0  # read-ahead chunks, grown by sequential reads
    inflight: set[int] = field(default_factory=set)  # chunks on their way
    # bytes [chunk start, filled[i]) of an in-flight chunk are in the file already:
    # a read of a photo's first 64 KiB need not wait for its whole first chunk
    filled: dict[int, int] = field(default_factory=dict)
    moved: trio.Event = field(default_factory=trio.Event)  # set (and replaced) on progress
    last_error: str | None = None
    recorded: int = 0  # the bytes present as the index (written or pending) says
    asking: int = 0  # fetches asking the API for a download URL (maybe queued for budget)
    whole: bool = False  # read in order from its first byte so far (folder streaming)

    @property
    def n_chunks(self) -> int:
        return (self.size + CHUNK - 1) // CHUNK

    def chunk_len(self, i: int) -> int:
        return min(CHUNK, self.size - i * CHUNK)

    def chunk_end(self, i: int) -> int:
        return min((i + 1) * CHUNK, self.size)

    @property
    def cached(self) -> int:
        return sum(self.chunk_len(i) for i in self.chunks)

    def covers(self, first: int, last: int, end: int) -> bool:
        """Whether bytes up to `end` of chunks first..last are all in the file."""
        return all(i in self.chunks or self.filled.get(i, -1) >= min(end, self.chunk_end(i))
                   for i in range(first, last + 1))

    def wake(self) -> None:
        """Readers waiting for bytes look again."""
        self.moved.set()
        self.moved = trio.Event()


def _to_ranges(chunks: set[int], size: int) -> list[list[int]]:
    out: list[list[int]] = []
    for i in sorted(chunks):
        start, end = i * CHUNK, min((i + 1) * CHUNK, size)
        if out and out[-1][1] == start:
            out[-1][1] = end
        else:
            out.append([start, end])
    return out


def _from_ranges(ranges: list[list[int]]) -> set[int]:
    chunks: set[int] = set()
    for start, end in ranges:
        chunks.update(range(start // CHUNK, (end + CHUNK - 1) // CHUNK))
    return chunks


class ContentCache:
    def __init__(self, root: Path, store: Store, client: AionClient, *, capacity: int,
                 read_timeout: float = 5.0, readahead_chunks: int = 32) -> None:
        self.dir = root / "content"
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        (self.dir / READY).mkdir(exist_ok=True, mode=0o700)
        #: empty cache files made ahead: a cold file's first read renames one into
        #: place instead of making a file on the thread that answers FUSE
        self.pool = FilePool(self.dir / READY, own_directory=True)
        self.store = store
        self.index = ContentIndex(store)
        self.client = client
        self.capacity = capacity
        self.read_timeout = read_timeout
        self.readahead = readahead_chunks
        self._entries: dict[str, _Entry] = {}
        self._nursery: trio.Nursery | None = None
        self._listed = {media: store.get_meta(LISTED_ORIGINALS + media)
                        for media in ("image", "document")}
        self._refusals: dict[str, int] = {}
        #: files expected to be read next by a reader going through a folder in order
        self._expected: set[str] = set()
        #: files fetched ahead of a reader and not opened yet: not evicted meanwhile
        #: (at most a few, STREAM_MAX_SIZE each: a cache smaller than that may overrun)
        self._fetched_ahead: set[str] = set()
        self.streamed = 0  # files fetched ahead of such a reader
        self._pins = trio.Event()  # set when pins may have changed (aionfs pin)
        self._dirty: dict[str, dict[str, Any]] = {}  # index rows not written yet
        self._used: int | None = None  # bytes present, kept current by _save/_remove
        self.bytes_fetched = 0
        self.hits = 0
        self.misses = 0
        #: where transfers got their URL: API requests, kept URLs, listed originals
        self.url_requests = 0
        self.kept_urls = 0
        self.listed_urls = 0

    def start(self, nursery: trio.Nursery) -> None:
        """Fetches and the index writer run in this nursery (the daemon's)."""
        self._nursery = nursery
        nursery.start_soon(self._write_index_every, INDEX_EVERY)
        nursery.start_soon(self.pool.run)

    def close(self) -> None:
        """At unmount: the index written, the open files closed."""
        try:
            self.flush()
        finally:  # (a full disk refuses the index: the files are closed all the same)
            for entry in self._entries.values():
                os.close(entry.fd)
            self._entries.clear()
            self.pool.discard()

    async def _write_index_every(self, interval: float) -> None:
        while True:
            await trio.sleep(interval)
            try:
                self.flush()
            except sqlite3.Error as exc:  # (disk full, store locked): kept, tried again
                log.warning("writing the cache index failed (tried again): %s", exc)

    def flush(self) -> None:
        """Write the pending index rows, in one transaction."""
        if not self._dirty:
            return
        self.index.write(self._dirty.values())
        self._dirty.clear()

    # -- bookkeeping ---------------------------------------------------------------

    def used(self) -> int:
        """Bytes present (only this process changes them: `aionfs pin` sets flags)."""
        if self._used is None:
            self.flush()
            self._used = self.index.present()
        return self._used

    def _entry(self, file_id: str) -> _Entry:
        entry = self._entries.get(file_id)
        row = self.store.file(file_id)
        if row is None:
            raise FileNotFoundError(file_id)
        validator = validator_of(row)
        if entry is not None and entry.validator == validator:
            return entry
        if entry is not None:  # the file changed while we had it: start over
            self._drop(entry)
        path = self.dir / file_id
        cached = self._dirty.get(file_id) or self.index.get(file_id)
        chunks: set[int] = set()
        if cached is not None and cached["validator"] == validator and path.exists():
            chunks = _from_ranges(json.loads(cached["ranges"]))
        elif cached is not None:
            path.unlink(missing_ok=True)
        if not chunks and (ready := self.pool.take()) is not None:
            try:
                os.rename(ready, path)  # (over a file a crash left unindexed: its bytes go)
            except OSError as exc:  # (.ready removed under us, a full directory): made here
                log.warning("cache file made ahead could not be used: %s", exc)
                ready.unlink(missing_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        if os.fstat(fd).st_size != row["size"]:
            os.ftruncate(fd, row["size"])
        entry = _Entry(file_id, row["size"], validator, fd, chunks,
                       recorded=cached["cached"] if cached is not None else 0)
        self._entries[file_id] = entry
        self._save(entry)
        if entry.recorded and not chunks:  # a row claimed bytes that are not there: it
            self.flush()  # must not survive a crash (the next start would serve zeros)
        return entry

    def _save(self, entry: _Entry) -> None:
        """Record the entry's chunks (written with the next flush)."""
        cached = entry.cached
        if self._used is not None:
            self._used += cached - entry.recorded
        entry.recorded = cached
        self._dirty[entry.file_id] = {
            "file_id": entry.file_id, "size": entry.size, "validator": entry.validator,
            "ranges": json.dumps(_to_ranges(entry.chunks, entry.size)), "cached": cached,
            "last_access": time.time()}

    def _drop(self, entry: _Entry) -> None:
        os.close(entry.fd)
        self._entries.pop(entry.file_id, None)
        self._remove(entry.file_id)

    def _remove(self, file_id: str) -> None:
        """Delete the bytes; a pinned file keeps its pin (and is fetched again)."""
        (self.dir / file_id).unlink(missing_ok=True)
        if file_id in self._dirty:
            self.flush()
        gone = self.index.remove(file_id)
        if self._used is not None:
            self._used -= gone

    def forget(self, file_id: str) -> None:
        """The file is gone or changed remotely: drop its bytes (unless open)."""
        entry = self._entries.get(file_id)
        if entry is not None and entry.open_count:
            return
        if entry is not None:
            self._drop(entry)
        else:
            self._remove(file_id)

    # -- open / close ------------------------------------------------------------------

    def open(self, file_id: str) -> None:
        self._entry(file_id).open_count += 1
        self._fetched_ahead.discard(file_id)

    def release(self, file_id: str) -> None:
        entry = self._entries.get(file_id)
        if entry is None:
            return
        entry.open_count = max(0, entry.open_count - 1)
        self._close_if_idle(entry)
        self._evict()  # what open files held beyond the cap can go now

    def _close_if_idle(self, entry: _Entry) -> bool:
        """No reader and no transfer: record what is present and let the fd go."""
        if entry.open_count or entry.inflight:
            return False
        self._save(entry)
        os.close(entry.fd)
        del self._entries[entry.file_id]
        return True

    # -- reads -----------------------------------------------------------------------------

    async def read(self, file_id: str, off: int, size: int) -> bytes:
        # Open files were validated at open: no store query on the read path.
        entry = self._entries.get(file_id) or self._entry(file_id)
        end = min(off + size, entry.size)
        if off >= end:
            return b""
        first, last = off // CHUNK, (end - 1) // CHUNK
        wanted = range(first, last + 1)
        # Sequential is judged when a read arrives, not when it is answered: the
        # kernel sends its read-ahead requests while earlier ones are pending.
        sequential = off == 0 or off == entry.next_seq
        entry.whole = off == 0 or (entry.whole and off == entry.next_seq)
        entry.next_seq = end
        if not sequential:
            entry.window = 0
        if entry.whole and end == entry.size and self._nursery is not None:
            # after the reply: the reader goes on while the next files are set up
            self._nursery.start_soon(self._read_whole, entry.file_id)
        missing = [i for i in wanted if i not in entry.chunks]
        ahead = (self._ahead(entry, last)
                 if sequential and self.readahead and len(entry.chunks) < entry.n_chunks
                 else [])  # (a file all present needs no look ahead on each read)
        if ahead or missing:
            self._fetch(entry, missing + ahead)  # one run where they touch
        if not missing:
            self.hits += 1
        else:
            self.misses += 1
            while True:
                with trio.move_on_after(self.read_timeout):
                    while (not entry.covers(first, last, end)
                           and any(i in entry.inflight for i in wanted)):
                        await entry.moved.wait()
                if entry.covers(first, last, end):
                    break
                # Queued for the plan's request budget is not "no answer": the read
                # waits for its turn (the limiter logs the wait once), it never fails.
                if not (entry.asking and self.client.limiter.waiting(Priority.INTERACTIVE)
                        and any(i in entry.inflight for i in wanted)):
                    raise CacheMiss(entry.last_error or
                                    f"no answer within {self.read_timeout:g}s")
        return os.pread(entry.fd, end - off, off)

    async def _read_whole(self, file_id: str) -> None:
        """A file was read whole, in order. If it was the one expected after the
        previous file of its folder, the reader is going through the folder: fetch
        the next files now, so their bytes are here when it opens them (the storage
        round trip of each file overlaps the reading of the one before). Otherwise
        just note which file would confirm it: one file read is not a pattern."""
        streaming = file_id in self._expected
        self._expected.discard(file_id)
        following = self.store.next_files(file_id, STREAM_AHEAD if streaming else 1)
        for fid, size in following:
            self._expected.add(fid)
            if streaming and 0 < size <= STREAM_MAX_SIZE and self._nursery is not None:
                try:
                    entry = self._entries.get(fid) or self._entry(fid)
                except FileNotFoundError:
                    continue
                if len(entry.chunks) < entry.n_chunks:
                    # kept from eviction until opened, also when already on its way
                    # (another reader's transfer, or one started before the set was
                    # cleared); counted and fetched only where something is left
                    self._fetched_ahead.add(fid)
                    if self._fetch(entry, list(range(entry.n_chunks))):
                        self.streamed += 1
        if len(self._expected) > 64:  # readers that stopped: forget their guesses
            self._expected.clear()
        if len(self._fetched_ahead) > 4 * STREAM_AHEAD:
            self._fetched_ahead.clear()

    def _ahead(self, entry: _Entry, last: int) -> list[int]:
        """Chunks to fetch ahead of a sequential reader: one long transfer at a time.

        A photo read from its start comes in one request (INITIAL_WINDOW chunks);
        after that the window doubles with each transfer up to `readahead`. The
        next transfer starts when the running one has a quarter of its window
        left, so the reader never waits for a request to start, and transfers do
        not split the bandwidth the reader needs for the next chunk in order.
        """
        pending = sum(1 for i in entry.inflight if i > last)
        if pending > entry.window // 4:
            return []
        window = min(max(2 * entry.window, INITIAL_WINDOW), self.readahead)
        ahead = [i for i in range(last + 1, min(last + 1 + window, entry.n_chunks))
                 if i not in entry.chunks and i not in entry.inflight]
        if ahead:
            entry.window = window
        return ahead

    def _fetch(self, entry: _Entry, chunks: list[int]) -> bool:
        """Start fetching chunks not already present or on their way (False: none)."""
        todo = sorted(i for i in chunks if i not in entry.chunks and i not in entry.inflight)
        if not todo:
            return False
        if self._nursery is None:
            raise RuntimeError("ContentCache.start() was not called")
        runs: list[list[int]] = []
        for i in todo:
            if runs and runs[-1][-1] == i - 1 and len(runs[-1]) < RUN_CHUNKS:
                runs[-1].append(i)
            else:
                runs.append([i])
        for run in runs:
            entry.inflight.update(run)
            self._nursery.start_soon(self._download, entry, run)
        return True

    async def _source(self, entry: _Entry, tried: list[str]) -> _Source:
        """The cheapest URL for the file's bytes not yet `tried` in this transfer.

        A list item's `full_url`/`document_url` is documented as the original in
        one schema and as a rendition in another, so it is never trusted: its
        answer must state the file's total size and content type (`Expected`,
        checked before a byte is kept). Once one did not and none ever did, the
        workspace's list URLs are renditions and are not tried again.
        """
        fid = entry.file_id
        now = time.time()
        if "kept" not in tried:
            url = self.store.download_url(fid, now + URL_MARGIN)
            if url:  # (its size checked too: the object behind it never changes)
                return _Source(url, "kept", Expected(entry.size))
        if "listed" not in tried:
            url = self.store.listed_url(fid, "original_url", now - LISTED_URL_FRESH)
            row = self.store.file(fid) if url else None
            if row is not None and self._listed.get(row["media_type"]) != "rendition":
                return _Source(url, "listed", Expected(entry.size, row["content_type"]),
                               row["media_type"])
        entry.asking += 1
        try:
            got = await self.client.presigned_url(fid, priority=Priority.INTERACTIVE)
        finally:
            entry.asking -= 1
        self.url_requests += 1
        self.store.keep_download_url(fid, got.url, got.expires_at)
        return _Source(got.url, "api")

    def _failed_source(self, entry: _Entry, source: _Source, exc: ApiError) -> None:
        """A URL that did not give the bytes is dropped, so the next read does not
        try it again."""
        if source.kind == "kept" or source.kind == "api":
            self.store.forget_download_url(entry.file_id, source.url)
        else:
            self.store.forget_listed_url(entry.file_id, "original_url")
        media = source.media_type
        if source.kind == "listed" and self._listed.get(media) != "original" and (
                isinstance(exc, NotTheObject) or exc.status == 416):  # (416: smaller)
            self._refusals[media] = self._refusals.get(media, 0) + 1
        if self._refusals.get(media, 0) >= LISTED_REFUSALS \
                and self._listed.get(media) is None:
            log.info("list items' URLs of %s originals are renditions here (%s): those "
                     "files are read through the download endpoint", source.media_type, exc)
            self._learn_listed(source.media_type, "rendition")
        else:
            log.debug("%s URL of %s failed (%s): trying the next", source.kind,
                      entry.file_id, exc)

    def _fetched_from(self, source: _Source) -> None:
        if source.kind == "listed":
            self.listed_urls += 1
            if self._listed.get(source.media_type) != "original":
                self._learn_listed(source.media_type, "original")
        elif source.kind == "kept":
            self.kept_urls += 1

    def _learn_listed(self, media_type: str, what: str) -> None:
        self._listed[media_type] = what
        self.store.set_meta(LISTED_ORIGINALS + media_type, what)

    async def _download(self, entry: _Entry, run: list[int]) -> None:
        start = run[0] * CHUNK
        end = min((run[-1] + 1) * CHUNK, entry.size) - 1
        pos = start
        next_chunk = run[0]

        def advance(to: int) -> None:
            """Bytes up to `to` are in the file: complete the chunks they fill."""
            nonlocal pos, next_chunk
            if to <= pos:
                return
            self.bytes_fetched += to - pos
            pos = to
            while next_chunk <= run[-1] and entry.chunk_end(next_chunk) <= pos:
                entry.filled.pop(next_chunk, None)
                self._complete(entry, next_chunk)
                next_chunk += 1
            if next_chunk <= run[-1] and pos > next_chunk * CHUNK:
                entry.filled[next_chunk] = pos
            entry.wake()

        tried: list[str] = []
        try:
            while True:
                source = await self._source(entry, tried)
                try:
                    # (`advance` has seen the last position when this returns)
                    await self.client.fetch_into(source.url, entry.fd, start=pos, end=end,
                                                 progress=advance, expect=source.expect)
                    self._fetched_from(source)
                    break
                except ApiError as exc:
                    # refused by storage (expired early, gone, a range beyond a smaller
                    # object: 403/404/416) or not the original: the next URL; a fresh
                    # one from the API is asked for at most twice. (Network errors and
                    # server failures are not the URL's fault: they end the transfer.)
                    if not _refused(exc):
                        raise
                    self._failed_source(entry, source, exc)
                    tried.append(source.kind)
                    if tried.count("api") == 2:
                        raise
        except (ApiError, OSError) as exc:
            if entry.last_error != str(exc):
                log.warning("fetching %s failed at byte %d: %s", entry.file_id, pos, exc)
            entry.last_error = str(exc)
        finally:
            entry.inflight.difference_update(run)
            for i in run:
                entry.filled.pop(i, None)
            entry.wake()
            if self._entries.get(entry.file_id) is entry:  # not dropped meanwhile
                if not self._close_if_idle(entry):
                    self._save(entry)
                self._evict()

    def _complete(self, entry: _Entry, chunk: int) -> None:
        entry.chunks.add(chunk)
        entry.last_error = None
        entry.inflight.discard(chunk)

    # -- pinning and eviction ------------------------------------------------------------------

    def pinned_missing(self) -> list[str]:
        self.flush()
        return self.index.pinned_missing()

    def pins_changed(self) -> None:
        """`aionfs pin` marked files (in the store, from its own process), or the API
        answers again: fetch what pinned files miss now."""
        self._pins.set()

    async def keep_pinned(self, interval: float = PINS_EVERY) -> None:
        """Fetch pinned files completely, in the background, as long as we run: when
        told (`pins_changed`), else every `interval` (a pinned file changed remotely,
        a fetch that failed offline)."""
        while True:
            self._pins = trio.Event()
            for fid in self.pinned_missing():
                try:
                    entry = self._entry(fid)
                except FileNotFoundError:
                    continue
                self._fetch(entry, list(range(entry.n_chunks)))
            with trio.move_on_after(interval):
                await self._pins.wait()

    def _evict(self) -> None:
        used = self.used()
        if used <= self.capacity:
            return
        self.flush()  # (last access and bytes present as they are now)
        for file_id, cached in self.index.least_recently_used():
            if used <= self.capacity:
                break
            entry = self._entries.get(file_id)
            if (entry is not None and (entry.open_count or entry.inflight)) \
                    or file_id in self._fetched_ahead:
                continue
            self.forget(file_id)
            used -= cached

    def sources(self) -> dict[str, int]:
        """Where transfers got their URLs: API requests, or none (kept, listed); and
        files fetched ahead of a reader going through a folder (`aionfs status`)."""
        return {"download_requests": self.url_requests, "kept_urls": self.kept_urls,
                "listed_urls": self.listed_urls, "streamed": self.streamed}

    def statistics(self) -> dict[str, int]:
        return {"capacity": self.capacity, "used": self.used(), "hits": self.hits,
                "misses": self.misses, "bytes_fetched": self.bytes_fetched,
                "open_files": len(self._entries), **self.sources()}
