"""The pyfuse3 adapter: the only module that speaks FUSE.

Each handler hands the request to the filesystem core (fs/core.py) and
translates back: `FsError` becomes `FUSEError` with its errno, `Opened` a
`FileInfo`, `Usage` a `StatvfsData`; entries are built here as pyfuse3's
`EntryAttributes` (the core is given `make_entry`), so the core never sees
a FUSE type. The session itself (init, main loop, close) and the kernel's
notification calls are here too, for the daemon and fs/notify.py.

An unexpected exception in a handler would end pyfuse3's main loop, and
with it the mount: it is logged with its traceback and the caller gets EIO.
"""

from __future__ import annotations

import errno
import functools
import inspect
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import pyfuse3
import trio

from .core import RENAME_NOREPLACE, Filesystem
from .notify import KernelCalls
from .view import Attr, FsError

log = logging.getLogger(__name__)

assert pyfuse3.RENAME_NOREPLACE == RENAME_NOREPLACE
assert pyfuse3.ENOATTR == errno.ENODATA

#: what the kernel should use as st_blksize: reads and writes in 1 MiB pieces
BLOCK_SIZE = 1 << 20
#: pyfuse3's defaults but `default_permissions`: the mount is its owner's alone (no
#: allow_other), every file and folder is the owner's, and what a mode would refuse
#: the core refuses itself (virtual folders, read-only mounts: `ro`). Left on, the
#: kernel asks for a folder's attributes again before each file created in it (a
#: create invalidates them): one round trip more per file copied in.
DEFAULT_OPTIONS = frozenset(pyfuse3.default_options) - {"default_permissions"}
KERNEL = KernelCalls(
    invalidate_inode=lambda inode, attr_only: pyfuse3.invalidate_inode(
        inode, attr_only=attr_only),
    invalidate_entry_async=lambda parent, name, deleted: pyfuse3.invalidate_entry_async(
        parent, name, deleted=deleted, ignore_enoent=True),
    invalidate_entry=lambda parent, name, deleted: pyfuse3.invalidate_entry(
        parent, name, deleted=deleted),
)


def make_entry(attr: Attr, entry_timeout: float, attr_timeout: float
               ) -> pyfuse3.EntryAttributes:
    e = pyfuse3.EntryAttributes()
    e.st_ino = attr.inode
    e.generation = 0
    e.entry_timeout = entry_timeout
    e.attr_timeout = attr_timeout
    e.st_mode = attr.mode
    e.st_nlink = 2 if attr.is_dir else attr.nlink
    e.st_uid, e.st_gid = attr.uid, attr.gid
    e.st_rdev = 0
    e.st_size = attr.size
    e.st_blksize = BLOCK_SIZE
    e.st_blocks = attr.blocks
    e.st_atime_ns = e.st_mtime_ns = attr.mtime_ns
    e.st_ctime_ns = attr.ctime
    return e


def _file_info(opened: Any) -> pyfuse3.FileInfo:
    return pyfuse3.FileInfo(fh=opened.fh, keep_cache=opened.keep_cache)


class AionOperations(pyfuse3.Operations):
    supports_dot_lookup = False
    enable_writeback_cache = False

    def __init__(self, fs: Filesystem) -> None:
        super().__init__()
        self.fs = fs

    async def lookup(self, parent_inode: int, name: bytes, ctx: Any = None
                     ) -> pyfuse3.EntryAttributes:
        return await self.fs.lookup(parent_inode, name, ctx)

    async def forget(self, inode_list: list[tuple[int, int]]) -> None:
        await self.fs.forget(inode_list)

    async def getattr(self, inode: int, ctx: Any = None) -> pyfuse3.EntryAttributes:
        return await self.fs.getattr(inode, ctx)

    async def setattr(self, inode: int, attr: Any, fields: Any, fh: int | None,
                      ctx: Any) -> pyfuse3.EntryAttributes:
        return await self.fs.setattr(inode, attr, fields, fh, ctx)

    async def statfs(self, ctx: Any) -> pyfuse3.StatvfsData:
        usage = self.fs.statfs()
        s = pyfuse3.StatvfsData()
        s.f_bsize = s.f_frsize = usage.block_size
        s.f_blocks = usage.blocks
        s.f_bfree = s.f_bavail = usage.free
        s.f_files = usage.files
        s.f_ffree = s.f_favail = 0
        s.f_namemax = usage.name_max
        return s

    async def opendir(self, inode: int, ctx: Any) -> int:
        return await self.fs.opendir(inode, ctx)

    async def readdir(self, fh: int, start_id: int, token: Any) -> None:
        listing = self.fs.listing_of(fh)
        held = self.fs.lookups.add
        reply = pyfuse3.readdir_reply
        # One EntryAttributes filled per entry (readdir_reply copies it at once):
        # listings are kept packed, not as an object per entry (fs/listing.py).
        e = pyfuse3.EntryAttributes()
        e.generation = e.st_rdev = 0
        e.entry_timeout, e.attr_timeout = listing.entry_timeout, listing.attr_timeout
        e.st_blksize = BLOCK_SIZE
        row = listing.row
        for index in range(start_id, len(listing)):
            name, inode, size, mtime, ctime, mode, nlink, uid, gid = row(index)
            e.st_ino, e.st_mode, e.st_nlink, e.st_uid, e.st_gid = inode, mode, nlink, uid, gid
            e.st_size, e.st_blocks = size, (size + 511) // 512
            e.st_atime_ns = e.st_mtime_ns = mtime
            e.st_ctime_ns = ctime
            if not reply(token, name, e, index + 1):
                break
            held(inode)

    async def releasedir(self, fh: int) -> None:
        await self.fs.releasedir(fh)

    async def open(self, inode: int, flags: int, ctx: Any) -> pyfuse3.FileInfo:
        return _file_info(await self.fs.open(inode, flags, ctx))

    async def read(self, fh: int, off: int, size: int) -> bytes:
        return await self.fs.read(fh, off, size)

    async def write(self, fh: int, off: int, buf: bytes) -> int:
        return await self.fs.write(fh, off, buf)

    async def flush(self, fh: int) -> None:
        await self.fs.flush(fh)

    async def fsync(self, fh: int, datasync: bool) -> None:
        await self.fs.fsync(fh, datasync)

    async def release(self, fh: int) -> None:
        await self.fs.release(fh)

    async def fsyncdir(self, fh: int, datasync: bool) -> None:
        await self.fs.fsyncdir(fh, datasync)

    async def create(self, parent_inode: int, name: bytes, mode: int, flags: int,
                     ctx: Any) -> tuple[pyfuse3.FileInfo, pyfuse3.EntryAttributes]:
        opened, entry = await self.fs.create(parent_inode, name, mode, flags, ctx)
        return _file_info(opened), entry

    async def listxattr(self, inode: int, ctx: Any) -> list[bytes]:
        return await self.fs.listxattr(inode, ctx)

    async def getxattr(self, inode: int, name: bytes, ctx: Any) -> bytes:
        return await self.fs.getxattr(inode, name, ctx)

    async def setxattr(self, inode: int, name: bytes, value: bytes, ctx: Any) -> None:
        await self.fs.setxattr(inode, name, value, ctx)

    async def removexattr(self, inode: int, name: bytes, ctx: Any) -> None:
        await self.fs.removexattr(inode, name, ctx)

    async def mkdir(self, parent_inode: int, name: bytes, mode: int, ctx: Any
                    ) -> pyfuse3.EntryAttributes:
        return await self.fs.mkdir(parent_inode, name, mode, ctx)

    async def mknod(self, parent_inode: int, name: bytes, mode: int, rdev: int,
                    ctx: Any) -> pyfuse3.EntryAttributes:
        return await self.fs.mknod(parent_inode, name, mode, rdev, ctx)

    async def unlink(self, parent_inode: int, name: bytes, ctx: Any) -> None:
        await self.fs.unlink(parent_inode, name, ctx)

    async def rmdir(self, parent_inode: int, name: bytes, ctx: Any) -> None:
        await self.fs.rmdir(parent_inode, name, ctx)

    async def rename(self, parent_inode_old: int, name_old: bytes, parent_inode_new: int,
                     name_new: bytes, flags: int, ctx: Any) -> None:
        await self.fs.rename(parent_inode_old, name_old, parent_inode_new, name_new, flags, ctx)

    async def link(self, inode: int, new_parent_inode: int, new_name: bytes, ctx: Any
                   ) -> pyfuse3.EntryAttributes:
        return await self.fs.link(inode, new_parent_inode, new_name, ctx)

    async def symlink(self, parent_inode: int, name: bytes, target: bytes, ctx: Any
                      ) -> pyfuse3.EntryAttributes:
        return await self.fs.symlink(parent_inode, name, target, ctx)


#: kernel requests answered since the mount, by operation (`aionfs status`): what a
#: workload costs in round trips (docs/mount.md, docs/writes.md)
REQUESTS: Counter[str] = Counter()


def _guard(name: str, handler: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """The core's errors as the kernel's; anything else logged (traceback) and EIO."""
    @functools.wraps(handler)
    async def guarded(*args: Any, **kwargs: Any) -> Any:
        REQUESTS[name] += 1
        try:
            return await handler(*args, **kwargs)
        except FsError as exc:
            raise pyfuse3.FUSEError(exc.errno) from None
        except trio.Cancelled:
            raise
        except Exception:
            log.exception("%s failed unexpectedly (EIO)", name)
            raise pyfuse3.FUSEError(errno.EIO) from None
    return guarded


for _name, _handler in list(vars(AionOperations).items()):
    if inspect.iscoroutinefunction(_handler) and not _name.startswith("_"):
        setattr(AionOperations, _name, _guard(_name, _handler))


def start(fs: Filesystem, mountpoint: str, options: set[str]) -> None:
    """Mount: from here until `serve` runs, nothing may touch the mountpoint
    (the kernel would wait for an answer from this very thread)."""
    pyfuse3.init(AionOperations(fs), mountpoint, options)


async def serve() -> None:
    """Answer the kernel until the filesystem is unmounted."""
    await pyfuse3.main()


def close(unmount: bool) -> None:
    pyfuse3.close(unmount=unmount)
