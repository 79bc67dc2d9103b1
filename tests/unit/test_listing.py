"""Packed listings, their byte budget, and the kernel's lookup counts: what the
daemon keeps per inode and per entry stays small and bounded on huge libraries."""

from __future__ import annotations

import stat

from aionfs.fs.listing import Listing, ListingCache
from aionfs.fs.lookups import DENSE, LookupCounts
from aionfs.fs.view import Attr


def _attrs(n: int, start: int = 2) -> list[tuple[bytes, Attr]]:
    out = []
    for i in range(n):
        is_dir = i % 7 == 0
        mode = (stat.S_IFDIR | 0o755) if is_dir else (stat.S_IFREG | 0o644)
        out.append((f"näme {i}.jpg".encode(), Attr(start + i, is_dir, 1000 * i, mode,
                                                     1_700_000_000_000_000_000 + i, 1000, 1001,
                                                     1 + i % 3, 1_700_000_000_000_000_007 * (i % 2))))
    return out


def test_a_packed_listing_gives_back_every_name_and_attribute() -> None:
    entries = _attrs(50)
    listing = Listing(entries, 300.0, 60.0)
    assert len(listing) == 50 and listing.entry_timeout == 300.0 and listing.attr_timeout == 60.0
    for (name, a), (got_name, got) in zip(entries, listing, strict=True):
        assert got_name == name
        assert (got.inode, got.is_dir, got.size, got.mode, got.mtime_ns, got.uid, got.gid,
                got.ctime) == (a.inode, a.is_dir, a.size, a.mode, a.mtime_ns, a.uid, a.gid,
                               a.ctime)
        assert got.nlink == (2 if a.is_dir else a.nlink)  # what the kernel is told
    assert listing.row(3)[:2] == (entries[3][0], entries[3][1].inode)


def test_a_listing_costs_tens_of_bytes_an_entry_not_hundreds() -> None:
    listing = Listing(_attrs(10_000), 300.0, 300.0)
    names = sum(len(n) for n, _ in _attrs(10_000))
    assert (listing.nbytes - names) / 10_000 < 60


def test_the_cache_evicts_the_least_recently_used_past_its_budget() -> None:
    one = Listing(_attrs(100), 1.0, 1.0)
    cache = ListingCache(budget=3 * one.nbytes)
    for inode in (10, 11, 12):
        cache.put(inode, Listing(_attrs(100), 1.0, 1.0))
    assert cache.get(10) is not None  # 10 used: 11 is now the oldest
    cache.put(13, Listing(_attrs(100), 1.0, 1.0))
    assert cache.get(11) is None and cache.get(10) is not None and cache.get(13) is not None
    assert cache.bytes <= cache.budget and len(cache) == 3
    cache.put(14, Listing(_attrs(1000), 1.0, 1.0))  # bigger than the budget: not kept
    assert cache.get(14) is None and cache.bytes <= cache.budget
    cache.pop(10)
    cache.pop(10)  # twice: no harm
    assert cache.get(10) is None and len(cache) == 2
    cache.clear()
    assert cache.bytes == 0 and len(cache) == 0


def test_lookup_counts_follow_the_kernel_for_store_and_virtual_inodes() -> None:
    counts = LookupCounts()
    virtual = 1 << 48
    for inode in (1, 5, 5, 1_000_000, virtual, virtual, DENSE + 3):
        counts.add(inode)
    assert len(counts) == 5 and counts[5] == 2 and counts[virtual] == 2 and counts[7] == 0
    assert 1_000_000 in counts and 7 not in counts and 10**12 not in counts
    assert not counts.forget(5, 1) and counts[5] == 1
    assert counts.forget(5, 1) and 5 not in counts and len(counts) == 4
    assert counts.forget(virtual, 2) and virtual not in counts
    assert counts.forget(42, 1)  # never given: nothing held
    counts.add(5, 3)
    assert counts[5] == 3 and len(counts) == 4
