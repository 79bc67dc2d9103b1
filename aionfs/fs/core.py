"""The filesystem core: every decision a request needs, and no FUSE types.

`Filesystem` resolves an inode to what it is (a file written here and not
uploaded yet, a copy being made into tags/, a virtual folder, a library file
or folder in the store) and answers with the view, the sync engine, the
content cache and the writer. It raises `FsError` with the errno the caller
gets (each cause logged once), returns entries built by the `make_entry` it
is given (the adapter's kernel type, or a plain record in the unit tests),
and tells the kernel what changed through a `KernelNotifier` (fs/notify.py).
fs/ops.py translates pyfuse3 calls into calls here and nothing else.

Kernel caching is generous — long entry and attribute timeouts,
`keep_cache` on open — and kept honest by invalidating whatever the sync
engine reports as changed; a remote delete is sent to the kernel as a
delete notification, and every remote change of a name is replayed through
the mount (`echo.py`) so that inotify watchers of the directory (file
managers) see it.

Directory listings are computed once per open directory handle; readdir
offsets are indexes into that snapshot, so they stay stable while the
handle is open.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import heapq
import logging
import os
import platform
import stat
import time
from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

import trio

from ..api import AionClient, Priority, answer_within
from ..api.errors import ApiError, AuthError
from ..cache.content import CacheMiss, ContentCache
from ..store import ROOT_INODE, Event, Store
from ..sync import Syncer
from ..thumbs import Thumbnails
from ..upload.durability import GroupCommit
from ..views import VIRTUAL_BASE, Node, ViewError, VirtualTree
from .colors import ImageColors
from .echo import Echoes
from .handles import Handles
from .listing import EMPTY_LISTING, Listing, ListingCache
from .local import LocalFiles
from .lookups import LookupCounts
from .notify import KernelNotifier
from .tagcopy import CopyRefused, TagCopy
from .view import XATTRS, Attr, FsError, LibraryView, desktop_entry
from .writer import Writer

log = logging.getLogger(__name__)

ENTRY_TIMEOUT = 300.0
ATTR_TIMEOUT = 300.0
#: Names inside virtual folders: their membership changes without notice (a query
#: refreshed, a tag set elsewhere), so the kernel keeps them only briefly.
VIEW_ENTRY_TIMEOUT = 5.0
NAME_MAX = 255
#: How long an `ls` waits for an answer to a folder's first listing before showing what
#: is cached (time queued for the plan's request budget does not count).
LIST_WAIT = 10.0
#: how long the first listing of a fresh mount's root waits for the first crawl
#: (hurried to interactive priority) before it is served partial (_first_root_listing)
ROOT_WAIT = 10.0
#: rename(2)'s flag, as the kernel passes it (linux/fs.h)
RENAME_NOREPLACE = 1


class Entry(Protocol):
    """What `make_entry` builds: the adapter's kernel entry, or a test's record."""

    st_ino: int


#: (attributes, entry timeout, attribute timeout) → an entry for the kernel
MakeEntry = Callable[[Attr, float, float], Any]


class Opened(NamedTuple):
    """An open file handle, and whether the kernel may keep the pages it cached."""

    fh: int
    keep_cache: bool


class Usage(NamedTuple):
    """statfs(2): the cache's room in blocks, and the inodes in use."""

    block_size: int
    blocks: int
    free: int
    files: int
    name_max: int


_MKDIR_SYSCALLS = {"x86_64": {83, 258}, "aarch64": {34}}.get(platform.machine(), set())


def _making_directory(tid: int) -> bool:
    """Is this thread inside mkdir(2)? FUSE does not say why it looks a name up.

    Reading /proc/TID/syscall needs ptrace access to the caller (same user,
    and Yama's ptrace_scope 0); without it the answer is no (documented).
    """
    try:
        with open(f"/proc/{tid}/syscall", "rb") as f:
            return int(f.read(24).split(b" ", 1)[0]) in _MKDIR_SYSCALLS
    except (OSError, ValueError):
        return False



def _name(entry: tuple[str, Any]) -> str:
    return entry[0]

class Filesystem:
    def __init__(self, *, store: Store, client: AionClient, syncer: Syncer,
                 view: LibraryView, cache: ContentCache, echoes: Echoes, views: VirtualTree,
                 local: LocalFiles, writer: Writer, durability: GroupCommit,
                 thumbs: Thumbnails | None, notify: KernelNotifier,
                 make_entry: MakeEntry) -> None:
        self.store = store
        self.client = client
        self.view = view
        self.durability = durability
        self.notify = notify
        self.make_entry = make_entry
        self.local = local
        self.writer = writer
        self.echoes = echoes
        self.views = views
        self.syncer = syncer
        self.cache = cache
        self.lookups = LookupCounts()
        self.handles = Handles()
        #: library files' inodes → set once the edit being started has its bytes staged
        self._editing: dict[int, trio.Event] = {}
        #: folders whose first listing is being fetched (for the opener: no echo)
        self._first_listing: set[int] = set()
        #: local files' inodes → held while a rewrite's copy of their bytes is made
        self._copying: dict[int, trio.Lock] = {}
        #: directory inode → its packed listing, until sync reports any change
        self._listings = ListingCache()
        self._listed: set[int] = set()
        self._view_listings: dict[int, tuple[float, Listing]] = {}
        views.queries.changed.subscribe(self._view_listings.clear)
        self._xattr_names: dict[int, list[bytes]] = {}
        self._root_deadline: float | None = None  # the first root listing's wait (trio time)
        self.colors = ImageColors(store, client)
        self._logged: set[str] = set()
        self.mounted = False
        self.thumbs = thumbs  # told of every folder a file manager opens

    # -- helpers --------------------------------------------------------------------

    def _entry(self, attr: Attr, entry_timeout: float = ENTRY_TIMEOUT,
               attr_timeout: float = ATTR_TIMEOUT) -> Any:
        return self.make_entry(attr, entry_timeout, attr_timeout)

    def _echo_entry(self, inode: int, is_dir: bool) -> Entry:
        """An entry for the echo worker, cached by the kernel for no time at all."""
        try:
            attr = self.view.attr(inode, is_dir)
        except FsError:  # deleted: the kernel needs only a name to remove
            attr = Attr(inode, is_dir, 0, (stat.S_IFDIR | 0o755) if is_dir
                        else (stat.S_IFREG | 0o444), 0, os.getuid(), os.getgid())
        self.lookups.add(inode)
        return self._entry(attr, 0, 0)

    def _echoed_entry(self, kind: str, parent: int, name: bytes, ctx: Any
                      ) -> Entry | None:
        """mknod/mkdir made by the echo worker: the entry that appeared remotely."""
        echo = self._echoed(kind, ctx, dst=(parent, os.fsdecode(name)))
        if echo is None:
            return None
        try:
            entry = self._entry(self.view.attr(echo.inode, echo.is_dir))
        except FsError as exc:
            raise FsError(exc.errno) from None
        self.lookups.add(echo.inode)
        return entry

    def _fail(self, exc: Exception, errno_: int, what: str) -> FsError:
        """Log the cause once per distinct message; return the FUSEError to raise."""
        key = f"{what}:{exc}"
        if key not in self._logged:
            self._logged.add(key)
            log.warning("%s failed (%s): %s", what, errno.errorcode.get(errno_, errno_), exc)
        return FsError(errno_)

    async def _ensure_listed(self, inode: int) -> None:
        """A directory's first listing, bounded; offline we show what we have."""
        if inode in self._listed:
            return
        key = self.view.folder_key(inode)
        if key is None:
            return
        if self.store.listing(key) is not None:
            self._listed.add(inode)
            return
        if key == "" and not self.syncer.crawl_finished.is_set():
            await self._first_root_listing()
            return
        self._first_listing.add(inode)
        try:
            with answer_within(LIST_WAIT):
                await self.syncer.ensure_listed(key, Priority.INTERACTIVE)
        except AuthError as exc:
            raise self._fail(exc, errno.EACCES, "listing") from exc
        except ApiError as exc:
            self._fail(exc, errno.EIO, "listing (serving the cached library)")
        finally:
            self._first_listing.discard(inode)

    async def _first_root_listing(self) -> None:
        """The root of a fresh mount, complete or said to be partial.

        Files at the root are known only once every folder was listed (list
        items carry no folder id and there is no root filter), so a root shown
        before the first crawl ends lacks them, and a `find`, a backup or an
        `rsync --delete` started right after the first mount would take that
        for the truth. The first listing of the root hurries the crawl to
        interactive priority and waits for it up to ROOT_WAIT; past that the
        root is served with the folders and what is placed so far, the log
        says so once, and `aionfs status` shows it as partial until the crawl
        ends. Later listings never wait again (the kernel is told when the
        root files arrive).
        """
        first = self._root_deadline is None
        if first:
            self._root_deadline = trio.current_time() + ROOT_WAIT
            if self.syncer.crawl_fits(ROOT_WAIT):
                self.syncer.hurry()
            else:  # (a huge library, or a small plan: waiting would not make it whole)
                self._root_deadline = trio.current_time()
        self._first_listing.add(ROOT_INODE)  # (what arrives meanwhile is in the listing)
        try:
            with trio.move_on_at(self._root_deadline):  # (every caller until then waits)
                await self.syncer.crawl_finished.wait()
        finally:
            self._first_listing.discard(ROOT_INODE)
        self._listed.add(ROOT_INODE)
        if first and not self.syncer.crawl_finished.is_set():
            self.syncer.unhurry()
            done, total = self.syncer.crawl_progress or (0, 0)
            log.warning("the root is shown before the first crawl placed its files "
                        "(%d of %d folders listed): files at the root appear when it "
                        "ends; `aionfs status` shows its progress", done, total)

    # -- lookups and attributes -----------------------------------------------------------

    async def lookup(self, parent_inode: int, name: bytes, ctx: Any = None
                     ) -> Entry:
        if len(name) > NAME_MAX:  # FUSE lets names of up to 1024 bytes through
            raise FsError(errno.ENAMETOOLONG)
        try:
            name.decode()
        except UnicodeDecodeError:  # no library name is anything but UTF-8
            raise FsError(errno.ENOENT) from None
        if self.echoes.current is not None and ctx is not None:
            before = self.echoes.before(parent_inode, os.fsdecode(name), ctx.pid)
            if before == -1:
                raise FsError(errno.ENOENT)
            if before is not None:
                return self._echo_entry(before, self.echoes.current.is_dir)
        if parent_inode >= VIRTUAL_BASE or parent_inode == ROOT_INODE:
            found = await self._view_lookup(parent_inode, os.fsdecode(name), ctx)
            if found is not None:
                self.lookups.add(found.st_ino)
                return found
        local = self.local.lookup(parent_inode, os.fsdecode(name))
        if local is not None:
            self.lookups.add(local.inode)
            return self._entry(self._local_attr(local))
        try:
            attr = self.view.lookup(parent_inode, os.fsdecode(name))
        except FsError:
            await self._ensure_listed(parent_inode)
            try:
                attr = self.view.lookup(parent_inode, os.fsdecode(name))
            except FsError as exc:
                if exc.errno == errno.ENOENT:
                    return self._absent
                raise FsError(exc.errno) from None
        self.lookups.add(attr.inode)
        return self._entry(attr)

    @functools.cached_property
    def _absent(self) -> Entry:
        """No such name in a folder of the library: an entry with inode 0, which the
        kernel keeps as a negative entry (ENOENT without asking again: `cp` and `rsync`
        look a new name up twice before creating it). Every way a name can appear
        tells the kernel: sync's entry_added events, the watched folders
        (local_added), and what is made through the mount the kernel sees itself."""
        return self._entry(Attr(0, False, 0, 0, 0, self.view.uid, self.view.gid), ENTRY_TIMEOUT, 0)

    def _local_attr(self, f: Any) -> Attr:
        return Attr(f.inode, False, self.local.size(f), stat.S_IFREG | 0o644, f.mtime_ns,
                    self.view.uid, self.view.gid, 1 if self.local.linked(f) else 0, f.ctime_ns)

    def _echoed(self, kind: str, ctx: Any, src: tuple[int, str] | None = None,
                dst: tuple[int, str] | None = None) -> Any:
        """The echo this request is (fs/echo.py), acknowledged; None if it is not one.

        Its folders' times move as for the same change made through the mount:
        KDE's KDirWatch (Dolphin) acts on IN_DELETE or IN_MOVED_FROM only when a
        stat of the folder shows new times."""
        echo = self.echoes.acknowledge(kind, ctx.pid, src=src, dst=dst)
        if echo is not None:
            self._dir_changed(*(name[0] for name in (src, dst) if name is not None))
        return echo

    def _dir_changed(self, *inodes: int) -> None:
        """Entries were made or removed in these directories: their mtime and ctime
        are now (kept in the store; the kernel drops its copy of their attributes
        itself). Listings that carry their attributes are made anew."""
        now = time.time_ns()
        for inode in set(inodes):
            if inode >= VIRTUAL_BASE:
                continue
            self.store.set_times(inode, now, now)
            for parent, _ in self.store.names_of(inode):
                self._listings.pop(parent)

    def _dir_path(self, inode: int) -> str | None:
        """A directory's path below the mountpoint (real or virtual)."""
        if inode >= VIRTUAL_BASE:
            node = self.views.node(inode)
            return "/".join(node.path) if node is not None else None
        return self.store.dir_path(inode)

    def _node(self, inode: int) -> Node:
        node = self.views.node(inode)
        if node is None:
            raise FsError(errno.ENOENT)
        return node

    async def _view_lookup(self, parent_inode: int, name: str, ctx: Any
                           ) -> Entry | None:
        """Lookups in the virtual folders (None: not a virtual name at the root)."""
        if parent_inode == ROOT_INODE:
            top = self.views.top(name)
            return None if top is None else self._entry(self.views.dir_attr(top))
        node = self._node(parent_inode)
        try:
            _, attr = await self.views.lookup(node, name, lambda: _making_directory(ctx.pid))
        except KeyError:
            raise FsError(errno.ENOENT) from None
        except ViewError as exc:
            raise self._fail(exc, exc.errno, "a virtual folder") from None
        return self._entry(attr, VIEW_ENTRY_TIMEOUT)

    async def forget(self, inode_list: list[tuple[int, int]]) -> None:
        """The kernel dropped these inodes: what was kept for them goes (a virtual
        folder's node and listing, a folder's listing), so that memory follows what
        the kernel holds, not every name ever looked up."""
        for inode, count in inode_list:
            if not self.lookups.forget(inode, count):
                continue
            self._listings.pop(inode)
            if inode >= VIRTUAL_BASE:
                self._view_listings.pop(inode, None)
                parent = self.views.release(inode)
                if parent is not None:  # (its kept listing names the node gone)
                    self._view_listings.pop(parent, None)

    def inode_counts(self) -> dict[str, int]:
        """For status: inodes the kernel holds, virtual folders known, listings kept."""
        return {"kernel": len(self.lookups), "virtual_folders": self.views.known(),
                "listings": len(self._listings) + len(self._view_listings),
                "listing_bytes": self._listings.bytes}

    async def getattr(self, inode: int, ctx: Any = None) -> Entry:
        local = self.local.by_inode(inode)
        if local is not None:
            return self._entry(self._local_attr(local))
        if inode >= VIRTUAL_BASE:
            copy = self.handles.copy_inodes.get(inode)
            if copy is not None:
                return self._copy_entry(copy)
            return self._entry(self.views.dir_attr(self._node(inode)))
        return self._entry(self._stored_attr(inode))

    def _stored_attr(self, inode: int) -> Attr:
        """A library file's or folder's attributes (also once deleted, while open)."""
        try:
            return self.view.attr(inode)
        except FsError:
            orphan = self.handles.orphan_attr(inode)
            if orphan is not None:  # deleted while open: still there for its readers
                return orphan
            raise

    async def setattr(self, inode: int, attr: Any, fields: Any, fh: int | None,
                      ctx: Any) -> Entry:
        copy = self.handles.copy_inodes.get(inode)
        if copy is not None:
            if fields.update_size:
                copy.truncate(attr.st_size)
            return self._copy_entry(copy)  # modes and times of a copy are not kept
        local = self.local.by_inode(inode)
        if local is None and fields.update_size:  # truncate(2) of an uploaded file: an edit
            local = await self._start_edit(inode, truncate=attr.st_size == 0)
        mtime = attr.st_mtime_ns if fields.update_mtime else None
        if local is None:
            # utimens kept (what `rsync -a`, `cp -p`, `tar -x` set); chmod and chown are
            # accepted, not stored, but count as a change of metadata (ctime)
            if inode < VIRTUAL_BASE:
                current = self._stored_attr(inode)
                self.store.set_times(
                    inode, current.mtime_ns if mtime is None else mtime, time.time_ns())
                for parent, _ in self.store.names_of(inode):
                    self._listings.pop(parent)
            return await self.getattr(inode)
        if fields.update_size:
            try:
                self.local.truncate(local, attr.st_size)
            except FsError as exc:
                raise self._fail(exc, exc.errno, "truncating") from None
            # (a closed file's truncate is committed at its release, and the journal
            # tells the uploader; an open one is taken only after its last close)
        if fields.update_mtime or fields.update_mode or fields.update_uid or fields.update_gid:
            self.local.set_times(local, mtime)
        self._listings.pop(self.local.parent_of(local))
        return self._entry(self._local_attr(local))

    def statfs(self) -> Usage:
        stats = self.cache.statistics()
        bsize = 4096
        counts = self.store.counts()
        return Usage(bsize, max(stats["capacity"] // bsize, 1),
                     max((stats["capacity"] - stats["used"]) // bsize, 0),
                     counts["files"] + counts["folders"] + 1, NAME_MAX)

    # -- directories ----------------------------------------------------------------------

    async def opendir(self, inode: int, ctx: Any) -> int:
        if inode >= VIRTUAL_BASE:
            listing = await self._view_listing(inode)
        else:
            listing = await self._listing(inode)
        if self.thumbs is not None and ctx is not None:
            # a file manager (or dialog, or viewer): its thumbnails first (bounded wait)
            await self.thumbs.opened_by(ctx.pid, self._dir_path(inode), listing)
        return self.handles.open_dir(listing)  # a snapshot: offsets stay valid

    async def _listing(self, inode: int) -> Listing:
        await self._ensure_listed(inode)
        listing = self._listings.get(inode)
        if listing is None:
            try:
                entries = self.view.listdir(inode)
            except FsError as exc:
                raise FsError(exc.errno) from None
            # streamed in name order straight into the packed listing: a directory of
            # 100,000 files never sits in memory as objects (merges, not sorts)
            if inode == ROOT_INODE:
                entries = heapq.merge(entries, sorted(self.views.root_entries()), key=_name)
            local = self.local.in_dir(inode)
            if local:  # written here, not uploaded yet: shadows a remote name
                names = {f.name for f in local}
                entries = heapq.merge((e for e in entries if e[0] not in names),
                                      sorted(((f.name, self._local_attr(f)) for f in local),
                                             key=_name), key=_name)
            listing = Listing(((os.fsencode(name), attr) for name, attr in entries),
                              ENTRY_TIMEOUT, ATTR_TIMEOUT)
            self._listings.put(inode, listing)
        return listing

    async def _view_listing(self, inode: int) -> Listing:
        """Virtual listings are kept as briefly as the kernel keeps their names (their
        queries expire on their own), and dropped at once on any change we hear of."""
        kept = self._view_listings.get(inode)
        if kept is not None and kept[0] > trio.current_time():
            return kept[1]
        try:
            entries = await self.views.listing(self._node(inode))
        except ViewError as exc:
            raise self._fail(exc, exc.errno, "listing a virtual folder") from None
        listing = Listing(((os.fsencode(name), attr) for name, attr in entries),
                          VIEW_ENTRY_TIMEOUT, ATTR_TIMEOUT)
        keep = min(VIEW_ENTRY_TIMEOUT, self.views.queries.ttl)
        self._view_listings[inode] = (trio.current_time() + keep, listing)
        return listing

    def listing_of(self, fh: int) -> Listing:
        """An open directory's snapshot (readdir counts a lookup per entry it hands out)."""
        return self.handles.dirs.get(fh, EMPTY_LISTING)

    async def releasedir(self, fh: int) -> None:
        self.handles.dirs.pop(fh, None)

    # -- files ----------------------------------------------------------------------------------

    async def open(self, inode: int, flags: int, ctx: Any) -> Opened:
        writing = bool(flags & (os.O_WRONLY | os.O_RDWR | os.O_TRUNC | os.O_APPEND))
        local = self.local.by_inode(inode)
        if local is not None:
            truncate = bool(flags & os.O_TRUNC)
            if self.local.needs_copy(local, writing, truncate):
                fd = await self._open_rewrite(inode, local, truncate)
            else:
                fd = self.local.open(local, writing, truncate)
            return Opened(self.handles.open_local(local, fd, writing), False)
        if writing:  # an uploaded file edited: a new version under the same inode
            local = await self._start_edit(inode, truncate=bool(flags & os.O_TRUNC))
            fd = self.local.open(local, True, bool(flags & os.O_TRUNC))
            return Opened(self.handles.open_local(local, fd, True), False)
        try:
            row = self.view.file_row(inode)
        except FsError as exc:
            raise FsError(exc.errno) from None
        attr = self.view.file_attr(row)
        if row["media_type"] == "link":
            return Opened(self.handles.open_reading(row["id"], desktop_entry(row), attr), True)
        self.cache.open(row["id"])
        return Opened(self.handles.open_reading(row["id"], None, attr), True)

    async def _open_rewrite(self, inode: int, local: Any, truncate: bool) -> int:
        """A closed file opened for writing, not truncated: its bytes are copied aside in
        a worker thread (not on the thread that answers FUSE) into a private file,
        which becomes the rewrite's side file only if no other writer started one
        meanwhile (then the copy is dropped and the handle joins that rewrite)."""
        lock = self._copying.setdefault(inode, trio.Lock())
        try:
            async with lock:
                if not self.local.needs_copy(local, True, truncate):
                    return self.local.open(local, True, truncate)
                prepared = await trio.to_thread.run_sync(self.local.copy_aside, local)
                if not self.local.needs_copy(local, True, truncate):  # (one began meanwhile)
                    prepared.unlink(missing_ok=True)
                    return self.local.open(local, True, truncate)
                return self.local.open(local, True, truncate, prepared=prepared)
        finally:
            if (self._copying.get(inode) is lock and not lock.locked()
                    and not lock.statistics().tasks_waiting):
                del self._copying[inode]

    async def read(self, fh: int, off: int, size: int) -> bytes:
        local = self.handles.local.get(fh)
        if local is not None:
            return os.pread(local.fd, size, off)
        file_id, inline, _ = self.handles.reading[fh]
        if inline is not None:
            return inline[off:off + size]
        try:
            return await self.cache.read(file_id, off, size)
        except CacheMiss as exc:
            raise self._fail(exc, errno.EIO, f"read of {file_id}") from None
        except FileNotFoundError as exc:
            raise self._fail(exc, errno.ESTALE, f"read of {file_id}") from None

    async def release(self, fh: int) -> None:
        copy = self.handles.close_copy(fh)
        if copy is not None:
            if copy.matched is None and copy.refused is None:  # closed without a flush
                with contextlib.suppress(FsError):  # _fail logged why
                    await self._finish_copy(copy)
            # the name now stands for the library file itself (or nothing): ask us again
            self.notify.entry(copy.parent, copy.name)
            return
        local = self.handles.local.pop(fh, None)
        if local is not None:
            f, fd, writing = local
            self.local.release(f, fd, writing)
            if writing:  # (the journal told the uploader of the close, at the flush)
                self._listings.pop(self.local.parent_of(f))  # its size in the listing
            return
        reading = self.handles.close_reading(fh)
        if reading is not None and reading.inline is None:
            self.cache.release(reading.file_id)

    # -- extended attributes --------------------------------------------------------------------

    async def listxattr(self, inode: int, ctx: Any) -> list[bytes]:
        # `ls -l` asks for every file (ACL check): keep the answer until a change.
        cached = self._xattr_names.get(inode)
        if cached is not None:
            return cached
        if inode >= VIRTUAL_BASE:
            return []
        local = self.local.by_inode(inode)
        if local is not None:
            return [b"user.aion.sync_state"]
        try:
            names = set(self.view.xattrs(inode))
        except FsError as exc:
            raise FsError(exc.errno) from None
        row = self.store.file_by_inode(inode)
        if row is not None and row["media_type"] == "image" and row["colors"] is None:
            # Not asked yet: listed without asking (listing costs no request); known
            # colors are in the view's names already, known-none ('') stays out.
            names.add("user.aion.colors")
        listed = self._xattr_names[inode] = [n.encode() for n in XATTRS if n in names]
        return listed

    async def getxattr(self, inode: int, name: bytes, ctx: Any) -> bytes:
        if not name.startswith(b"user."):
            # Security labels and ACLs are not supported, and saying so (rather than
            # "no such attribute") lets `ls -l` stop asking for every file of the mount.
            raise FsError(errno.EOPNOTSUPP)
        if inode >= VIRTUAL_BASE:
            raise FsError(errno.ENODATA)
        local = self.local.by_inode(inode)
        if local is not None:  # local, pending, uploading or failed (with the reason)
            if name != b"user.aion.sync_state":
                raise FsError(errno.ENODATA)
            state = local.state + (f": {local.last_error}" if local.state == "failed" else "")
            return state.encode()
        key = name.decode("utf-8", "replace")
        try:
            values = self.view.xattrs(inode)
        except FsError as exc:
            raise FsError(exc.errno) from None
        if key == "user.aion.colors" and key not in values:
            try:
                values[key], stored = await self.colors.of(inode)
            except FsError as exc:
                raise self._fail(exc, exc.errno, "fetching colors") from None
            if stored:
                self._xattr_names.pop(inode, None)  # known-none is listed no more
        if key not in values or not values[key]:
            raise FsError(errno.ENODATA)
        return values[key]

    async def setxattr(self, inode: int, name: bytes, value: bytes, ctx: Any) -> None:
        if not name.startswith(b"user."):
            # ACLs and security labels: unsupported, as on any filesystem mounted
            # without them; `sed -i`, `cp -a` and `rsync -A` expect that quietly
            raise FsError(errno.ENOTSUP)
        await self._write_op("setting an attribute", self.writer.set_xattr(
            inode, name.decode("utf-8", "replace"), value))

    async def removexattr(self, inode: int, name: bytes, ctx: Any) -> None:
        if not name.startswith(b"user."):
            raise FsError(errno.ENOTSUP)
        await self._write_op("removing an attribute", self.writer.set_xattr(
            inode, name.decode("utf-8", "replace"), b""))

    # -- writes: new files stay local until uploaded (fs/local.py), copies into tags/ tag --

    async def create(self, parent_inode: int, name: bytes, mode: int, flags: int,
                     ctx: Any) -> Any:
        if parent_inode < VIRTUAL_BASE:
            return self._create_local(parent_inode, os.fsdecode(name))
        node = self._node(parent_inode)
        text = os.fsdecode(name)
        try:
            self.views.tags_given(node)  # only copies of library files, into tags
        except ViewError as exc:
            raise FsError(exc.errno) from None
        candidates = self.store.files_named(text)
        if not candidates:
            raise FsError(errno.EPERM)
        copy = TagCopy(self.views.scratch_inode(), parent_inode, text, candidates)
        return Opened(self.handles.open_copy(copy), True), self._copy_entry(copy)

    async def _start_edit(self, inode: int, truncate: bool) -> Any:
        """Writing to an uploaded file: its bytes go to staging first (unless truncated);
        the new version is uploaded with its title, tags and folder, then the old one
        is deleted. The inode stays. The bytes are copied a chunk at a time (never the
        whole file in memory); the edit is shown only once they are all staged, and
        writers opening the file meanwhile wait for it and share it."""
        while inode in self._editing:
            await self._editing[inode].wait()
        started = self.local.by_inode(inode)
        if started is not None:
            return started
        row = self.store.file_by_inode(inode)
        names = self.store.names_of(inode)
        if row is None or not names:
            raise FsError(errno.ENOENT)
        if row["media_type"] == "link":  # generated from the link's metadata
            raise FsError(errno.EPERM)
        parent, name = names[0]
        key = self.view.folder_key(parent)
        if key is None:
            raise FsError(errno.ENOENT)
        attr = self.view.file_attr(row)
        done = self._editing[inode] = trio.Event()
        local = None
        try:
            local = self.local.begin_edit(key, name, row, (attr.mtime_ns, attr.ctime))
            if not truncate:
                await self._stage_library_bytes(row, local.staging)
        except BaseException as exc:
            if local is not None:
                self.local.abandon_edit(local)
            if isinstance(exc, (CacheMiss, OSError)):
                raise self._fail(exc, errno.EIO, f"reading {name} to edit it") from None
            raise
        finally:
            del self._editing[inode]
            done.set()
        self.local.finish_edit(local, 0 if truncate else row["size"])
        self._listings.pop(parent)
        return local

    async def _stage_library_bytes(self, row: Any, staging: Any) -> None:
        """A library file's bytes into a staging file, 1 MiB at a time; the writes in
        a worker thread (the trio thread answers FUSE)."""
        file_id = row["id"]
        fd = os.open(staging, os.O_WRONLY)
        self.cache.open(file_id)
        try:
            for off in range(0, row["size"], 1 << 20):
                data = await self.cache.read(file_id, off, 1 << 20)
                await trio.to_thread.run_sync(os.pwrite, fd, data, off)
        finally:
            self.cache.release(file_id)
            os.close(fd)

    def _create_local(self, parent: int, name: str) -> Any:
        """A new file in the library: written to staging, uploaded after its last close."""
        try:
            self.writer.check_new_name(name)
            key = self.view.folder_key(parent)
            if key is None:
                raise FsError(errno.ENOTDIR)
            f, fd = self.local.create(parent, key, name, also=lambda: self._dir_changed(parent))
            self.writer.take_over(f, parent)
        except FsError as exc:
            raise self._fail(exc, exc.errno, f"creating {name}") from None
        except OSError as exc:  # the staging disk (ENOSPC and the like)
            raise self._fail(exc, exc.errno or errno.EIO, f"staging {name}") from None
        fh = self.handles.open_local(f, fd, True)
        self.lookups.add(f.inode)
        return Opened(fh, False), self._entry(self._local_attr(f))

    def _copy_entry(self, copy: TagCopy) -> Entry:
        return self._entry(Attr(copy.inode, False, len(copy.data), stat.S_IFREG | 0o644,
                                self.view.mounted_ns, os.getuid(), os.getgid()), 0, 0)

    async def _finish_copy(self, copy: TagCopy) -> None:
        """The copy is complete: if it is a library file's bytes, tag that file."""
        async def read(inode: int, size: int) -> bytes:
            row = self.view.file_row(inode)
            self.cache.open(row["id"])
            try:
                pieces = [await self.cache.read(row["id"], off, 1 << 20)
                          for off in range(0, size, 1 << 20)]
            finally:
                self.cache.release(row["id"])
            return b"".join(pieces)

        try:
            inode = await copy.verify(read)
        except CopyRefused as exc:
            raise self._fail(exc, errno.EPERM, "copying into a tag folder") from None
        except (CacheMiss, FsError) as exc:
            raise self._fail(exc, errno.EIO, "comparing a copy with the library") from None
        await self._tag(self._node(copy.parent), inode)

    async def _write_op(self, what: str, op: Any) -> Any:
        """Run a change through the writer; its events invalidate what the kernel cached."""
        try:
            result = await op
        except FsError as exc:
            raise self._fail(exc, exc.errno, what) from None
        events = result[1] if isinstance(result, tuple) else result
        self.on_events(events, echo=False)
        return result

    async def mkdir(self, parent_inode: int, name: bytes, mode: int, ctx: Any) -> Any:
        if parent_inode >= VIRTUAL_BASE:
            return await self._save_query(self._node(parent_inode), os.fsdecode(name))
        echoed = self._echoed_entry("mkdir", parent_inode, name, ctx)
        if echoed is not None:
            return echoed
        inode, _ = await self._write_op("mkdir", self.writer.mkdir(parent_inode,
                                                                   os.fsdecode(name)))
        self._dir_changed(parent_inode)
        self.lookups.add(inode)
        return self._entry(self.view.attr(inode, True))

    async def mknod(self, parent_inode: int, name: bytes, mode: int, rdev: int,
                    ctx: Any) -> Any:
        echoed = self._echoed_entry("mknod", parent_inode, name, ctx)
        if echoed is None:
            raise FsError(errno.EPERM)  # only regular files, made with create
        return echoed

    async def unlink(self, parent_inode: int, name: bytes, ctx: Any) -> None:
        if parent_inode >= VIRTUAL_BASE:
            return await self._untag(self._node(parent_inode), os.fsdecode(name))
        if self._echoed("unlink", ctx, src=(parent_inode, os.fsdecode(name))):
            return None
        entry = self.store.lookup(parent_inode, os.fsdecode(name))
        if entry is not None and self.handles.still_read(entry.inode):  # open: kept for
            with contextlib.suppress(FsError):  # its readers as it is now
                self.handles.remember(self.view.attr(entry.inode, False))
        await self._write_op("unlink", self.writer.unlink(parent_inode, os.fsdecode(name)))
        self._dir_changed(parent_inode)
        return None

    async def rmdir(self, parent_inode: int, name: bytes, ctx: Any) -> None:
        if parent_inode >= VIRTUAL_BASE:
            return self._forget_query(self._node(parent_inode), os.fsdecode(name))
        if self._echoed("rmdir", ctx, src=(parent_inode, os.fsdecode(name))):
            return None
        await self._write_op("rmdir", self.writer.rmdir(parent_inode, os.fsdecode(name)))
        self._dir_changed(parent_inode)
        return None

    async def rename(self, parent_inode_old: int, name_old: bytes, parent_inode_new: int,
                     name_new: bytes, flags: int, ctx: Any) -> None:
        if parent_inode_new >= VIRTUAL_BASE:
            # `mv FILE tags/<t>/` tags the file; it stays where it is in the tree
            entry = await self.lookup(parent_inode_old, name_old, ctx)
            if not entry.st_ino:
                raise FsError(errno.ENOENT)
            await self.forget([(entry.st_ino, 1)])  # a lookup the kernel does not count
            await self._tag(self._node(parent_inode_new), entry.st_ino)
            return
        if parent_inode_old >= VIRTUAL_BASE:
            raise FsError(errno.EPERM)
        if not flags and self._echoed(
                "rename", ctx, src=(parent_inode_old, os.fsdecode(name_old)),
                dst=(parent_inode_new, os.fsdecode(name_new))):
            return
        if flags & ~RENAME_NOREPLACE:
            raise FsError(errno.EINVAL)  # RENAME_EXCHANGE: not supported
        old, new = os.fsdecode(name_old), os.fsdecode(name_new)
        if self.local.lookup(parent_inode_old, old) is None:
            entry = self.store.lookup(parent_inode_old, old)
            if (entry is not None and not entry.is_dir
                    and not self.writer.keeps_name(entry.inode, new)):
                try:
                    self.writer.check_rename(parent_inode_old, old, parent_inode_new, new,
                                             bool(flags & RENAME_NOREPLACE))
                except FsError as exc:
                    raise self._fail(exc, exc.errno, "rename") from None
                # renamed as a new version: its bytes staged as they are, then moved
                edit = await self._start_edit(entry.inode, truncate=False)
                self.local.journal.commit(edit, edit.size)
        await self._write_op("rename", self.writer.rename(
            parent_inode_old, os.fsdecode(name_old), parent_inode_new, os.fsdecode(name_new),
            noreplace=bool(flags & RENAME_NOREPLACE)))
        self._dir_changed(parent_inode_old, parent_inode_new)

    async def link(self, inode: int, new_parent_inode: int, new_name: bytes, ctx: Any) -> Any:
        if new_parent_inode >= VIRTUAL_BASE:  # `ln FILE tags/<t>/` tags the file
            await self._tag(self._node(new_parent_inode), inode)
            self.lookups.add(inode)
            return self._entry(self.view.attr(inode, False), VIEW_ENTRY_TIMEOUT)
        # Hard links cannot be kept (a library file has one name per folder): EPERM, what
        # link(2) answers on filesystems without them; EROFS would tell tools the whole
        # filesystem is read-only.
        raise FsError(errno.EPERM)

    # -- writes in the virtual folders --------------------------------------------------------

    async def _save_query(self, parent: Node, name: str) -> Entry:
        """`mkdir search/<text>` (or text/): keep the query, listed and refreshed."""
        try:
            child = await self.views.mkdir(parent, name)
        except ViewError as exc:
            raise FsError(exc.errno) from None
        attr = self.views.dir_attr(child)
        self.lookups.add(attr.inode)
        return self._entry(attr)

    def _forget_query(self, parent: Node, name: str) -> None:
        try:
            self.views.rmdir(parent, name)
        except ViewError as exc:
            raise FsError(exc.errno) from None

    async def _tag(self, node: Node, inode: int) -> None:
        try:
            tags = self.views.tags_given(node)
        except ViewError as exc:
            raise FsError(exc.errno) from None
        await self._write_op("tagging", self.writer.retag(
            inode, lambda old: old + [t for t in tags if t not in old]))

    async def _untag(self, node: Node, name: str) -> None:
        """`rm tags/<a>/<b>/FILE` removes the tag <b> (the folder's own); the file stays."""
        try:
            tag = self.views.tag_taken(node)
            _, attr = await self.views.lookup(node, name)
        except ViewError as exc:
            raise FsError(exc.errno) from None
        except KeyError:
            raise FsError(errno.ENOENT) from None
        await self._write_op("untagging", self.writer.retag(
            attr.inode, lambda old: [t for t in old if t != tag]))

    async def symlink(self, parent_inode: int, name: bytes, target: bytes, ctx: Any) -> Any:
        raise FsError(errno.EPERM)  # symlink(2) where they are not supported

    async def write(self, fh: int, off: int, buf: bytes) -> int:
        local = self.handles.local.get(fh)
        if local is not None:
            try:
                return self.local.write(local.file, local.fd, off, buf)
            except FsError as exc:
                raise self._fail(exc, exc.errno, "writing") from None
            except OSError as exc:  # the staging disk (ENOSPC and the like)
                raise self._fail(exc, exc.errno or errno.EIO, "writing to staging") from None
        copy = self.handles.copies.get(fh)
        if copy is None:
            raise FsError(errno.EBADF)
        try:
            return copy.write(off, buf)
        except CopyRefused as exc:
            raise self._fail(exc, errno.EPERM, "copying into a tag folder") from None

    async def flush(self, fh: int) -> None:
        local = self.handles.local.get(fh)
        if local is not None:
            if local.writing and self.local.flush(local.file):
                self._listings.pop(self.local.parent_of(local.file))
                if self.local.wants_disk(local.file):  # fsync'd, then closed: the row too
                    await self.durability.sync([local.file])
            return
        copy = self.handles.copies.get(fh)
        if copy is not None:
            await self._finish_copy(copy)

    async def fsync(self, fh: int, datasync: bool) -> None:
        """A file written here made durable against a power loss, as on a local
        filesystem: its bytes so far (a worker thread's fsync); a file closed already
        also its journal entry, at once (the group commit's pass for this file)."""
        local = self.handles.local.get(fh)
        if local is None:
            return  # library files and copies into tags/ hold nothing unsent
        await trio.to_thread.run_sync(os.fdatasync if datasync else os.fsync, local.fd)
        self.local.fsynced(local.file)
        if local.file.state != "local":
            await self.durability.sync([local.file])
        else:  # never closed yet: its name and row too (kept, as cut off, after a power loss)
            await self.durability.sync_entry()

    async def fsyncdir(self, fh: int, datasync: bool) -> None:
        """fsync(2) of a folder (the end of a careful save: write a temp file, fsync,
        rename over, fsync the folder): every closed or renamed file is made durable."""
        await self.durability.sync()

    # -- change notifications from sync ---------------------------------------------------------

    def on_events(self, events: list[Event], echo: bool = True) -> None:
        """Invalidate what the kernel may have cached (non-blocking calls only).

        `echo`: replay name changes for inotify watchers; not for changes made
        through the mount, which the kernel saw happen."""
        self._listings.clear()  # names or attributes changed somewhere: list again
        self._xattr_names.clear()
        self._view_listings.clear()
        self.views.changed()
        for e in events:
            if e.kind == "content":  # new bytes, new analysis (the store forgot the colors)
                row = self.store.file_by_inode(e.inode)
                if row is not None:
                    self.colors.new_bytes(row["id"])
        if not self.mounted:
            return
        if echo:
            self.echoes.submit([e for e in events if self._watchable(e)])
        gone = {e.inode for e in events if e.kind == "gone"}
        for inode in gone:
            for f in self.local.orphaned(inode):
                log.warning("%s was written into a folder deleted remotely: it is kept at the "
                            "root", f.name)
                self._listings.pop(ROOT_INODE)
                self.notify.entry(ROOT_INODE, f.name)  # (a negative entry may be kept)
        for e in events:  # (the notifier handles what the kernel answers)
            if e.kind == "entry_removed" and e.parent is not None and e.name is not None:
                self.notify.entry(e.parent, e.name, deleted=e.inode if e.inode in gone else 0)
            elif e.kind == "entry_added" and e.parent is not None and e.name is not None:
                self.notify.entry(e.parent, e.name)
            elif e.kind in ("attr", "content") and e.inode in self.lookups:
                self.notify.inode(e.inode, attr_only=e.kind == "attr")
                if e.kind == "content":
                    row = self.store.file_by_inode(e.inode)
                    if row is not None:
                        self.cache.forget(row["id"])

    def _watchable(self, e: Event) -> bool:
        """Could anyone watch this change of a name with inotify? Only in a folder whose
        inode the kernel holds (a watch holds it), not in one whose first listing is
        what brings the name (its opener gets the name in that listing), and not under
        a name written here (it shadows the library's). A crawl of folders nobody
        opened replays nothing through the mount."""
        if e.name is None or e.parent is None:
            return True
        return ((e.parent == ROOT_INODE or e.parent in self.lookups)
                and e.parent not in self._first_listing
                and self.local.lookup(e.parent, e.name) is None)

    def local_added(self, f: Any) -> None:
        """A file queued by a watched folder: its folder lists it from now on."""
        parent = self.local.parent_of(f)
        self._listings.pop(parent)
        self._xattr_names.pop(f.inode, None)
        if self.mounted:
            self.notify.entry(parent, f.name)
