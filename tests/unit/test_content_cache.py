"""The content cache on its own: reads, partial chunks, shared transfers, the
index across restarts, eviction. Storage is FakeStorage; the store is real."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import trio
import trio.testing

from aionfs.cache.content import CHUNK, ContentCache
from aionfs.store import Store
from tests.unit.fakes import FakeStorage, file_item, place


def _library(tmp_path: Path, sizes: dict[str, int]) -> tuple[Store, FakeStorage]:
    store = Store(tmp_path / "metadata.sqlite3")
    storage = FakeStorage()
    with store.transaction():
        store.upsert_files([file_item(fid, size) for fid, size in sizes.items()])
    for i, (fid, size) in enumerate(sizes.items()):
        storage.put(fid, bytes([i + 1]) * 7 + os.urandom(size - 7))
    return store, storage


@asynccontextmanager
async def running(tmp_path: Path, store: Store, storage: FakeStorage,
                  capacity: int = 1 << 30) -> AsyncIterator[ContentCache]:
    cache = ContentCache(tmp_path, store, storage, capacity=capacity,  # type: ignore[arg-type]
                         read_timeout=5)
    async with trio.open_nursery() as nursery:
        cache.start(nursery)
        yield cache
        nursery.cancel_scope.cancel()


async def test_a_cold_read_fetches_once_and_rereads_are_hits(tmp_path: Path) -> None:
    store, storage = _library(tmp_path, {"a": 3 * CHUNK + 5})
    async with running(tmp_path, store, storage) as cache:
        cache.open("a")
        assert await cache.read("a", 0, 3 * CHUNK + 5) == storage.objects["a"]
        assert await cache.read("a", CHUNK, 100) == storage.objects["a"][CHUNK:CHUNK + 100]
        cache.release("a")
    assert storage.url_requests == 1 and len(storage.transfers) == 1
    assert cache.hits >= 1


async def test_a_files_first_bytes_are_answered_before_its_first_chunk_is_complete(
        tmp_path: Path) -> None:
    store, storage = _library(tmp_path, {"a": 2 * CHUNK})
    storage.hold_at = 128 << 10
    async with running(tmp_path, store, storage) as cache:
        cache.open("a")
        assert await cache.read("a", 0, 65536) == storage.objects["a"][:65536]
        later: list[bytes] = []

        async def tail() -> None:
            later.append(await cache.read("a", CHUNK - 10, 20))

        async with trio.open_nursery() as n:
            n.start_soon(tail)
            await trio.testing.wait_all_tasks_blocked()
            assert later == []  # bytes past the held point are not there yet
            storage.release.set()
        assert later == [storage.objects["a"][CHUNK - 10:CHUNK + 10]]
        cache.release("a")


async def test_concurrent_readers_of_a_chunk_share_one_transfer(tmp_path: Path) -> None:
    store, storage = _library(tmp_path, {"a": CHUNK})
    got: list[bytes] = []
    async with running(tmp_path, store, storage) as cache:
        cache.open("a")

        async def reader(off: int) -> None:
            got.append(await cache.read("a", off, 4096))

        async with trio.open_nursery() as n:
            for off in (0, 8192, 500_000, CHUNK - 4096):
                n.start_soon(reader, off)
        cache.release("a")
    assert len(storage.transfers) == 1 and len(got) == 4


async def test_the_index_survives_a_restart_and_a_lost_index_only_costs_a_fetch(
        tmp_path: Path) -> None:
    store, storage = _library(tmp_path, {"a": CHUNK + 1, "b": 2 * CHUNK})
    async with running(tmp_path, store, storage) as cache:
        for fid in ("a", "b"):
            cache.open(fid)
            await cache.read(fid, 0, 3 * CHUNK)
            cache.release(fid)
        cache.flush()  # (the daemon's writer does this once a second, and at unmount)
    async with running(tmp_path, store, storage) as again:
        again.open("a")
        assert await again.read("a", 0, CHUNK + 1) == storage.objects["a"]
        again.release("a")
    assert len(storage.transfers) == 2, "an indexed file was fetched again"
    # a daemon killed before its index was written: the bytes are fetched again, right
    store.db.execute("DELETE FROM content_cache WHERE file_id='b'")
    async with running(tmp_path, store, storage) as third:
        third.open("b")
        assert await third.read("b", 0, 2 * CHUNK) == storage.objects["b"]
        third.release("b")
    assert len(storage.transfers) == 3


async def test_the_least_recently_used_files_go_when_the_cache_is_over_its_cap(
        tmp_path: Path) -> None:
    sizes = {f: CHUNK for f in ("a", "b", "c", "d")}
    store, storage = _library(tmp_path, sizes)
    async with running(tmp_path, store, storage, capacity=2 * CHUNK) as cache:
        for fid in sizes:
            cache.open(fid)
            await cache.read(fid, 0, CHUNK)
            cache.release(fid)
            await trio.sleep(0.01)  # distinct last-access times
        assert cache.used() <= 2 * CHUNK
        cache.flush()
        kept = {r[0] for r in store.db.execute(
            "SELECT file_id FROM content_cache WHERE cached > 0")}
        assert kept == {"c", "d"}
        assert not (tmp_path / "content" / "a").exists()


async def test_a_file_that_changed_remotely_is_not_served_from_its_old_bytes(
        tmp_path: Path) -> None:
    store, storage = _library(tmp_path, {"a": 1000})
    async with running(tmp_path, store, storage) as cache:
        cache.open("a")
        await cache.read("a", 0, 1000)
        cache.release("a")
        storage.put("a", b"new bytes, longer than before" * 100)
        with store.transaction():
            store.upsert_files([file_item("a", len(storage.objects["a"]),
                                          created_at="2026-02-02T00:00:00+00:00")])
        cache.open("a")
        assert await cache.read("a", 0, 1 << 20) == storage.objects["a"]
        cache.release("a")


async def test_cold_files_take_cache_files_made_ahead_and_none_outlives_a_stop(
        tmp_path: Path) -> None:
    """A cold file's cache file is one a worker thread made ahead (renamed into
    place), not made on the thread that answers FUSE; pool files a crash left
    are removed at the next start, and those never taken at the stop."""
    store, storage = _library(tmp_path, {"a": 100, "b": CHUNK + 1})
    ready = tmp_path / "content" / ".ready"
    ready.mkdir(parents=True)
    (ready / "left-by-a-crash").write_bytes(b"")
    async with running(tmp_path, store, storage) as cache:
        with trio.fail_after(10):
            while cache.pool.ready < cache.pool.size:  # noqa: ASYNC110 (a thread makes them)
                await trio.sleep(0.01)
        assert not (ready / "left-by-a-crash").exists()
        for fid in ("a", "b"):
            cache.open(fid)
            assert await cache.read(fid, 0, CHUNK + 1) == storage.objects[fid]
            cache.release(fid)
        assert cache.pool.taken == 2 and cache.pool.missed == 0
        assert (tmp_path / "content" / "b").read_bytes() == storage.objects["b"]
    cache.close()
    assert list(ready.iterdir()) == []


async def test_a_cold_read_works_when_the_files_made_ahead_are_gone(tmp_path: Path) -> None:
    """Someone cleared the cache directory under a running mount: the files made
    ahead are gone, and a cold read makes its cache file itself."""
    store, storage = _library(tmp_path, {"a": 100})
    ready = tmp_path / "content" / ".ready"
    async with running(tmp_path, store, storage) as cache:
        with trio.fail_after(10):
            while cache.pool.ready < cache.pool.size:  # noqa: ASYNC110 (a thread makes them)
                await trio.sleep(0.01)
        for made in ready.iterdir():
            made.unlink()
        ready.rmdir()
        cache.open("a")
        assert await cache.read("a", 0, 100) == storage.objects["a"]
        cache.release("a")
    cache.close()


async def test_a_file_already_on_its_way_ahead_of_a_reader_is_counted_once(
        tmp_path: Path) -> None:
    """`streamed` (in `aionfs status`) counts files fetched ahead of a reader going
    through a folder; the next file is named again by each file read whole, and
    one still on its way is not fetched, nor counted, a second time."""
    sizes = {"a": CHUNK, "b": CHUNK, "c": CHUNK, "d": 2 * CHUNK, "e": CHUNK}
    store = Store(tmp_path / "metadata.sqlite3")
    place(store, {"F": "Photos"}, {"F": [file_item(fid, size) for fid, size in sizes.items()]})
    storage = FakeStorage()
    for fid, size in sizes.items():
        storage.put(fid, os.urandom(size))
    storage.hold_at = CHUNK  # d's transfer pauses after its first chunk
    async with running(tmp_path, store, storage) as cache:
        for fid in ("a", "b", "c"):  # b read whole after a: c and d are fetched ahead
            cache.open(fid)
            assert await cache.read(fid, 0, CHUNK) == storage.objects[fid]
            cache.release(fid)
            await trio.testing.wait_all_tasks_blocked()
        assert storage.held.is_set()  # d is on its way as c is read whole
        assert cache.streamed == 3  # c, d, e: d once
        storage.release.set()
        cache.open("d")
        assert await cache.read("d", 0, 2 * CHUNK) == storage.objects["d"]
        cache.release("d")
    assert [t[0] for t in storage.transfers].count("d") == 1


async def test_files_fetched_ahead_are_not_evicted_before_they_are_opened(
        tmp_path: Path) -> None:
    """A cache smaller than the files fetched ahead of a folder reader: the bytes
    fetched for it stay until the reader opens them (else each is fetched twice)."""
    sizes = {"a": CHUNK, "b": CHUNK, "c": CHUNK, "d": CHUNK}
    store = Store(tmp_path / "metadata.sqlite3")
    place(store, {"F": "Photos"}, {"F": [file_item(fid, size) for fid, size in sizes.items()]})
    storage = FakeStorage()
    for fid, size in sizes.items():
        storage.put(fid, os.urandom(size))
    async with running(tmp_path, store, storage, capacity=1) as cache:
        for fid in ("a", "b"):  # b read whole after a: c and d are fetched ahead
            cache.open(fid)
            assert await cache.read(fid, 0, CHUNK) == storage.objects[fid]
            cache.release(fid)
            await trio.testing.wait_all_tasks_blocked()
        cache.open("a")  # a release evicts down to the cap: not c, not d
        cache.release("a")
        for fid in ("c", "d"):
            cache.open(fid)
            assert await cache.read(fid, 0, CHUNK) == storage.objects[fid]
            cache.release(fid)
            await trio.testing.wait_all_tasks_blocked()
    fetched = [t[0] for t in storage.transfers]
    assert fetched.count("c") == 1 and fetched.count("d") == 1, fetched
