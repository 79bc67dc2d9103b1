"""A pyfuse3 filesystem that keeps nothing but names and sizes: the floor of any
FUSE filesystem written with the binding aionfs uses, on this machine.

    python -m tests.bench.nullfs MOUNTPOINT [--writeback-cache]   (serves until unmounted)

Files can be created, written (the bytes are dropped), stat'ed and listed in
one flat-or-nested tree held in dicts; every answer is immediate. What a copy
into it costs is what the kernel's round trips and pyfuse3's loop cost, with
no work behind them (tests/bench/floor.py compares it with aionfs).
`--writeback-cache` lets the kernel gather writes in its page cache first,
to show what that option would change for any filesystem.
"""

from __future__ import annotations

import errno
import os
import stat
import sys
import time
from typing import Any

import pyfuse3
import trio


class NullFs(pyfuse3.Operations):
    def __init__(self) -> None:
        super().__init__()
        now = time.time_ns()
        self.now = now
        self.kids: dict[int, dict[bytes, int]] = {pyfuse3.ROOT_INODE: {}}
        self.size: dict[int, int] = {}
        self.next = pyfuse3.ROOT_INODE + 1

    def _attr(self, inode: int) -> pyfuse3.EntryAttributes:
        a = pyfuse3.EntryAttributes()
        a.st_ino = inode
        is_dir = inode in self.kids
        a.st_mode = (stat.S_IFDIR | 0o755) if is_dir else (stat.S_IFREG | 0o644)
        a.st_nlink = 2 if is_dir else 1
        a.st_size = self.size.get(inode, 0)
        a.st_uid, a.st_gid = os.getuid(), os.getgid()
        a.st_atime_ns = a.st_mtime_ns = a.st_ctime_ns = self.now
        a.attr_timeout = a.entry_timeout = 60
        return a

    def _new(self, parent: int, name: bytes, is_dir: bool) -> int:
        inode, self.next = self.next, self.next + 1
        self.kids[parent][name] = inode
        if is_dir:
            self.kids[inode] = {}
        else:
            self.size[inode] = 0
        return inode

    async def getattr(self, inode: int, ctx: Any = None) -> pyfuse3.EntryAttributes:
        return self._attr(inode)

    async def lookup(self, parent: int, name: bytes, ctx: Any = None) -> pyfuse3.EntryAttributes:
        inode = self.kids.get(parent, {}).get(name)
        if inode is None:
            raise pyfuse3.FUSEError(errno.ENOENT)
        return self._attr(inode)

    async def setattr(self, inode: int, attr: Any, fields: Any, fh: Any, ctx: Any
                      ) -> pyfuse3.EntryAttributes:
        if fields.update_size:
            self.size[inode] = attr.st_size
        return self._attr(inode)

    async def mkdir(self, parent: int, name: bytes, mode: int, ctx: Any
                    ) -> pyfuse3.EntryAttributes:
        return self._attr(self._new(parent, name, True))

    async def create(self, parent: int, name: bytes, mode: int, flags: int, ctx: Any
                     ) -> tuple[pyfuse3.FileInfo, pyfuse3.EntryAttributes]:
        inode = self._new(parent, name, False)
        return pyfuse3.FileInfo(fh=inode), self._attr(inode)

    async def open(self, inode: int, flags: int, ctx: Any) -> pyfuse3.FileInfo:
        return pyfuse3.FileInfo(fh=inode)

    async def write(self, fh: int, off: int, buf: bytes) -> int:
        self.size[fh] = max(self.size[fh], off + len(buf))
        return len(buf)

    async def read(self, fh: int, off: int, size: int) -> bytes:
        return b"\0" * max(0, min(size, self.size[fh] - off))

    async def getxattr(self, inode: int, name: bytes, ctx: Any) -> bytes:
        raise pyfuse3.FUSEError(errno.ENODATA)

    async def flush(self, fh: int) -> None:
        return None

    async def release(self, fh: int) -> None:
        return None

    async def opendir(self, inode: int, ctx: Any) -> int:
        return inode

    async def readdir(self, fh: int, start_id: int, token: Any) -> None:
        for i, (name, inode) in enumerate(list(self.kids[fh].items())[start_id:], start_id):
            if not pyfuse3.readdir_reply(token, name, self._attr(inode), i + 1):
                break

    async def releasedir(self, fh: int) -> None:
        return None


def main(mountpoint: str, writeback_cache: bool = False) -> None:
    NullFs.enable_writeback_cache = writeback_cache
    options = set(pyfuse3.default_options) - {"default_permissions"}
    options.add("fsname=nullfs")
    pyfuse3.init(NullFs(), mountpoint, options)
    print("ready", flush=True)
    try:
        trio.run(pyfuse3.main)
    finally:
        pyfuse3.close(unmount=False)


if __name__ == "__main__":
    main(sys.argv[1], "--writeback-cache" in sys.argv[2:])
