"""Copying a library file into `tags/<t>/`: the copy's bytes must be one of our files.

`cp FILE ~/Aion/tags/t/` (or a file manager's copy) creates a new file and
writes the bytes. Uploading them would duplicate the file, so instead the
name must belong to a library file and the bytes written must be that
file's bytes; then the file gets the tag, and nothing is uploaded. Anything
else is refused: at create when no library file has the name, at close
(flush) when the bytes match none of them. The copy lives in memory, under
a scratch inode of its own, so that a refused copy never touches the page
cache of a real file.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field


class CopyRefused(Exception):
    """Not a copy of a library file (EPERM on the mount)."""


@dataclass
class TagCopy:
    inode: int  # scratch inode while the copy is open
    parent: int  # the tags/ directory's inode
    name: str
    #: (inode, size) of library files shown under this name
    candidates: list[tuple[int, int]]
    data: bytearray = field(default_factory=bytearray)
    matched: int | None = None  # the library file's inode, once verified
    refused: str | None = None

    @property
    def limit(self) -> int:
        return max(size for _, size in self.candidates)

    def write(self, offset: int, buf: bytes) -> int:
        end = offset + len(buf)
        if end > self.limit:
            raise CopyRefused(f"{self.name}: more bytes than any library file of that name")
        if end > len(self.data):
            self.data.extend(bytes(end - len(self.data)))
        self.data[offset:end] = buf
        return len(buf)

    def truncate(self, size: int) -> None:
        del self.data[size:]
        if size > len(self.data):
            self.data.extend(bytes(size - len(self.data)))

    async def verify(self, read: Callable[[int, int], Awaitable[bytes]]) -> int:
        """The library file the bytes are a copy of; `read(inode, size)` gives its bytes."""
        if self.matched is not None:
            return self.matched
        if self.refused is not None:
            raise CopyRefused(self.refused)
        for inode, size in self.candidates:
            if size == len(self.data) and await read(inode, size) == self.data:
                self.matched = inode
                return inode
        self.refused = (f"{self.name}: these bytes are not a file of the library (only "
                        "library files can be copied into a tag folder)")
        raise CopyRefused(self.refused)
