"""What the library looks like as a filesystem, without any FUSE types.

The view reads the metadata store and answers in plain Python: attributes,
directory entries, extended attributes, and the generated `.desktop` bytes
of saved links. The filesystem core (`core.py`) answers requests with these.

Attributes: directories 0755, files 0644 (0444 on a read-only mount),
owned by the mounting user; sizes from the API; `st_blocks` counts 512-byte
blocks of the size.

Times are honest: mtime changes only when the bytes do (a write, a truncate)
or when set (utimens: `cp -p`, `rsync -a`, `tar -x`), ctime whenever the
file's metadata changes. Times set through the mount live in the store per
inode and hold across upload, remount and eviction. A file never touched
here shows its upload time (`created_at`: a file's bytes never change under
its id, so that is when they were made, as far as the API knows) as mtime
and its `updated_at`, when known, as ctime. A folder shows the times set
through the mount (a change of its entries, utimens), else its `updated_at`.
atime equals mtime.
"""

from __future__ import annotations

import errno
import json
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..store import ROOT_INODE, Store
from ..store.db import ATTR_COLUMNS

XATTR_PREFIX = "user."
XATTRS = ("user.aion.id", "user.aion.title", "user.aion.tags", "user.aion.description",
          "user.aion.visible_text", "user.aion.colors", "user.xdg.comment", "user.xdg.tags",
          "user.aion.sync_state")


class FsError(Exception):
    """An operation fails with this errno."""

    def __init__(self, errno_: int, message: str = "") -> None:
        super().__init__(message or errno.errorcode.get(errno_, str(errno_)))
        self.errno = errno_


@dataclass(slots=True)
class Attr:
    inode: int
    is_dir: bool
    size: int
    mode: int
    mtime_ns: int
    uid: int
    gid: int
    #: a file shown in by-date/ and under each of its tags too counts those as links,
    #: so that du, tar and rsync -H see one file, not several
    nlink: int = 1
    ctime_ns: int = 0  # 0: the mtime

    @property
    def ctime(self) -> int:
        return self.ctime_ns or self.mtime_ns

    @property
    def blocks(self) -> int:
        return (self.size + 511) // 512


def _ns(value: str | None, default: int) -> int:
    """A time the API gives, in whole seconds (as nanoseconds).

    Thumbnailers compare a thumbnail's `Thumb::MTime` with the file's mtime in two
    ways: GLib wants the integer seconds, tumbler (Thunar's) compares a float with
    the microseconds. Only a file whose mtime has no fraction satisfies both, so the
    times of library files are shown in whole seconds (times set through the mount,
    by utimens or a write, keep their nanoseconds)."""
    if not value:
        return default
    try:
        return int(datetime.fromisoformat(value).timestamp()) * 1_000_000_000
    except ValueError:
        return default


def desktop_entry(row: Any) -> bytes:
    """A freedesktop link file (Type=Link) for a saved website link."""
    def esc(text: str) -> str:
        return text.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")

    name = row["title"] or row["domain"] or row["source_url"] or "Link"
    lines = ["[Desktop Entry]", "Version=1.0", "Type=Link", f"Name={esc(name)}",
             f"URL={esc(row['source_url'] or '')}", "Icon=text-html"]
    if row["description"]:
        lines.append(f"Comment={esc(row['description'])}")
    return ("\n".join(lines) + "\n").encode()


class LibraryView:
    def __init__(self, store: Store, *, uid: int, gid: int, read_only: bool,
                 views: bool = False) -> None:
        self.store = store
        self.views = views
        self.uid, self.gid = uid, gid
        self.read_only = read_only
        self.mounted_ns = time.time_ns()

    # -- attributes ----------------------------------------------------------------

    def _dir_attr(self, inode: int, mtime_ns: int, set_times: tuple[int, int] | None) -> Attr:
        ctime_ns = mtime_ns
        if set_times is not None:  # (set here: by utimens, `tar -x`, or a change of entries)
            mtime_ns, ctime_ns = set_times
        return Attr(inode, True, 4096, stat.S_IFDIR | 0o755, mtime_ns, self.uid, self.gid,
                    ctime_ns=ctime_ns)

    def file_attr(self, row: Any) -> Attr:
        size = len(desktop_entry(row)) if row["media_type"] == "link" else row["size"]
        mode = stat.S_IFREG | (0o444 if self.read_only else 0o644)
        mtime = row["set_mtime_ns"]
        if mtime is None:
            mtime = _ns(row["created_at"], self.mounted_ns)
            ctime = _ns(row["updated_at"], mtime)
        else:
            ctime = row["set_ctime_ns"]
        nlink = 1
        if self.views:  # the tree, by-date/, and tags/<t>/ for each tag
            tags = row["tags"]
            nlink = 2 + (tags.count('"') - tags.count('\\"')) // 2  # JSON: 2 quotes a tag
        return Attr(row["inode"], False, size, mode, mtime, self.uid, self.gid, nlink, ctime)

    def attr(self, inode: int, is_dir: bool | None = None) -> Attr:
        """Attributes of an inode; `is_dir`, when known, saves the query of the other kind."""
        if inode == ROOT_INODE:
            return self._dir_attr(inode, self.mounted_ns, self.store.times(inode))
        if is_dir is not True:  # (files first: most inodes are files)
            row = self.store.file_attr_row(inode)
            if row is not None:
                return self.file_attr(row)
        if is_dir is not False:
            folder = self.store.folder_by_inode(inode)
            if folder is not None:
                times = None if folder["set_mtime_ns"] is None else (
                    folder["set_mtime_ns"], folder["set_ctime_ns"])
                return self._dir_attr(inode, _ns(folder["updated_at"], self.mounted_ns), times)
        raise FsError(errno.ENOENT)

    # -- names ---------------------------------------------------------------------------

    def folder_key(self, inode: int) -> str | None:
        """The sync key of a directory inode ('' root), or None if not a directory."""
        if inode == ROOT_INODE:
            return ""
        folder = self.store.folder_by_inode(inode)
        return folder["id"] if folder is not None else None

    def lookup(self, parent_inode: int, name: str) -> Attr:
        entry = self.store.lookup(parent_inode, name)
        if entry is None:
            raise FsError(errno.ENOENT)
        return self.attr(entry.inode, entry.is_dir)  # one query per lookup

    def listdir(self, inode: int) -> Iterator[tuple[str, Attr]]:
        """Every entry with its attributes in name order, from one joined query (made
        at once: ENOTDIR is raised here, not when iterating)."""
        if self.folder_key(inode) is None:
            raise FsError(errno.ENOTDIR)
        return self._entries(self.store.list_dir_with_files(inode, ATTR_COLUMNS))

    def _entries(self, rows: Iterator[tuple[Any, Any]]) -> Iterator[tuple[str, Attr]]:
        for entry, row in rows:
            if entry.is_dir:
                yield entry.name, self.attr(entry.inode, True)
            elif row is not None and row["id"] is not None:
                yield entry.name, self.file_attr(row)

    def file_row(self, inode: int) -> Any:
        row = self.store.file_by_inode(inode)
        if row is None:
            if self.folder_key(inode) is not None:
                raise FsError(errno.EISDIR)
            raise FsError(errno.ENOENT)
        return row

    # -- extended attributes -----------------------------------------------------------------

    def xattrs(self, inode: int) -> dict[str, bytes]:
        row = self.store.file_by_inode(inode)
        if row is None:
            if self.folder_key(inode) is None:
                raise FsError(errno.ENOENT)
            folder = self.store.folder_by_inode(inode)
            return {"user.aion.id": folder["id"].encode()} if folder is not None else {}
        tags = json.loads(row["tags"])
        out = {"user.aion.id": row["id"].encode(), "user.aion.sync_state": b"synced",
               "user.aion.tags": ",".join(tags).encode(),
               "user.xdg.tags": ",".join(tags).encode()}
        if row["title"]:
            out["user.aion.title"] = row["title"].encode()
        if row["description"]:
            out["user.aion.description"] = row["description"].encode()
            out["user.xdg.comment"] = row["description"].encode()
        if row["visible_text"]:
            out["user.aion.visible_text"] = row["visible_text"].encode()
        if row["colors"]:  # NULL: never asked (core.py asks); '': the service found none
            out["user.aion.colors"] = row["colors"].encode()
        if not tags:
            del out["user.aion.tags"], out["user.xdg.tags"]
        return out
