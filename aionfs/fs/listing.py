"""Directory listings kept packed, in a cache with a byte budget.

A listing is kept between `opendir`s because rebuilding it from the store
(a join, then every time parsed) costs about ten times serving it. Kept as
Python objects (a tuple, a bytes name and an EntryAttributes per entry) it
cost some 300 bytes an entry: after a `find` over a million-file library
the daemon held 300 MB of listings. Packed into a few arrays it costs about
50 bytes plus the name, and the cache evicts the least recently used
listings past its budget (`LISTING_BUDGET`), so memory stays bounded
whatever the size of the library. An open directory handle holds its own
listing (a snapshot: readdir offsets stay valid) whether or not it is still
cached.
"""

from __future__ import annotations

import stat
from array import array
from collections import OrderedDict
from collections.abc import Iterable, Iterator

from .view import Attr

#: bytes of packed listings kept: about 1.3 million entries with names of 20 characters
#: (a million-file library's whole tree, so a second `find` is served from memory)
LISTING_BUDGET = 96 << 20

_WIDE = 4  # per entry in `_wide`: inode, size, mtime_ns, ctime_ns
_NARROW = 4  # per entry in `_narrow`: mode, nlink, uid, gid


class Listing:
    """A directory's entries in order: name, attributes, and the kernel timeouts."""

    __slots__ = ("_names", "_ends", "_wide", "_narrow", "entry_timeout", "attr_timeout")

    def __init__(self, entries: Iterable[tuple[bytes, Attr]], entry_timeout: float,
                 attr_timeout: float) -> None:
        self.entry_timeout, self.attr_timeout = entry_timeout, attr_timeout
        names: list[bytes] = []
        self._ends = array("I")
        self._wide = array("q")
        self._narrow = array("I")
        end = 0
        for name, a in entries:
            names.append(name)
            end += len(name)
            self._ends.append(end)
            self._wide.extend((a.inode, a.size, a.mtime_ns, a.ctime))
            self._narrow.extend((a.mode, 2 if a.is_dir else a.nlink, a.uid, a.gid))
        self._names = b"".join(names)

    def __len__(self) -> int:
        return len(self._ends)

    def row(self, i: int) -> tuple[bytes, int, int, int, int, int, int, int, int]:
        """(name, inode, size, mtime_ns, ctime_ns, mode, nlink, uid, gid) of entry `i`."""
        start = self._ends[i - 1] if i else 0
        w, n = i * _WIDE, i * _NARROW
        wide, narrow = self._wide, self._narrow
        return (self._names[start:self._ends[i]], wide[w], wide[w + 1], wide[w + 2],
                wide[w + 3], narrow[n], narrow[n + 1], narrow[n + 2], narrow[n + 3])

    def __iter__(self) -> Iterator[tuple[bytes, Attr]]:
        """(name, Attr) per entry, for the few readers that want objects."""
        for i in range(len(self)):
            name, inode, size, mtime, ctime, mode, nlink, uid, gid = self.row(i)
            yield name, Attr(inode, stat.S_ISDIR(mode), size, mode, mtime, uid, gid,
                             nlink, ctime)

    @property
    def nbytes(self) -> int:
        return (len(self._names) + self._ends.itemsize * len(self._ends)
                + self._wide.itemsize * len(self._wide)
                + self._narrow.itemsize * len(self._narrow) + 200)


EMPTY_LISTING = Listing((), 0.0, 0.0)


class ListingCache:
    """Listings of directories by inode, least recently used evicted past `budget`
    bytes. Dropped entries cost a rebuild from the store, never a request."""

    def __init__(self, budget: int = LISTING_BUDGET) -> None:
        self.budget = budget
        self._kept: OrderedDict[int, Listing] = OrderedDict()
        self._bytes = 0

    def get(self, inode: int) -> Listing | None:
        listing = self._kept.get(inode)
        if listing is not None:
            self._kept.move_to_end(inode)
        return listing

    def put(self, inode: int, listing: Listing) -> None:
        self.pop(inode)
        size = listing.nbytes
        if size > self.budget:
            return  # a folder bigger than the whole budget is served from its handle only
        self._kept[inode] = listing
        self._bytes += size
        while self._bytes > self.budget:
            _, old = self._kept.popitem(last=False)
            self._bytes -= old.nbytes

    def pop(self, inode: int) -> None:
        listing = self._kept.pop(inode, None)
        if listing is not None:
            self._bytes -= listing.nbytes

    def clear(self) -> None:
        self._kept.clear()
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._kept)

    @property
    def bytes(self) -> int:
        return self._bytes
