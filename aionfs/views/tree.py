"""The virtual folders as a filesystem model: paths, names, listings — no FUSE types.

    search/<text>/        semantic image search, best first
    text/<words>/         full-text search over titles, descriptions, visible text
    colors/<spec>/        color search (see colorspec.py); colors/ lists the families
    tags/<a>/[<b>/…]      files having every tag on the path (AND), from the store
    by-date/<yyyy>/<mm>/  by content creation time, else upload time, from the store

Directories here get inodes from a range the store never uses, allocated
per path for the life of the mount. Files are the library's own inodes, so
they read the same bytes and xattrs as in the tree.

Crawler safety: `search/` and `text/` list only saved queries; `tags/<a>/`
lists its files but not the `tags/<a>/<b>/` intersections (reachable by
path); `colors/` lists the families, each one query. So `find` over the
mount meets a file once in the tree, once in by-date/, once per tag, and at
most once per color family whose search returns it.
"""

from __future__ import annotations

import errno
import itertools
import json
import stat
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..api.errors import ApiError, ValidationFailed
from ..fs.view import Attr, LibraryView
from ..store import Store, naming
from ..store.browse import Browse
from . import colorspec
from .queries import QueryCache, QueryFailed

#: inodes of virtual directories start here (the store's are counted from 1)
VIRTUAL_BASE = 1 << 48
#: released virtual folders kept for revival (see VirtualTree._released)
RELEASED_KEPT = 1024
ROOT_NAMES = ("by-date", "colors", "search", "tags", "text")
QUERY_KINDS = ("search", "text", "colors")
#: names file managers and shells probe for in every folder; never queries
PROBES = frozenset({"desktop.ini", "autorun.inf", "folder.jpg", "folder.png", "thumbs.db",
                    "Thumbs.db", "AlbumArt.jpg", "cover.jpg"})


class ViewError(Exception):
    """A view cannot answer; `errno` says how the mount reports it."""

    def __init__(self, errno_: int, message: str) -> None:
        super().__init__(message)
        self.errno = errno_


@dataclass(frozen=True)
class Node:
    """One virtual directory."""

    path: tuple[str, ...]
    inode: int

    @property
    def kind(self) -> str:
        return self.path[0]

    @property
    def holds_files(self) -> bool:
        depth = len(self.path)
        return (self.kind in QUERY_KINDS and depth == 2) or (self.kind == "tags" and depth >= 2) \
            or (self.kind == "by-date" and depth == 3)


class VirtualTree:
    def __init__(self, store: Store, queries: QueryCache, view: LibraryView, *,
                 rank_names: bool = False, hidden: bool = False) -> None:
        self.store = store
        self.browse = Browse(store)
        self.queries = queries
        self.view = view
        self.rank_names = rank_names
        self.hidden = hidden
        self._inodes = itertools.count(VIRTUAL_BASE)
        self._by_path: dict[tuple[str, ...], Node] = {}
        self._by_inode: dict[int, Node] = {}
        #: nodes released lately, revived if the kernel is handed one again (a listing
        #: snapshot taken before its forget): at most RELEASED_KEPT, oldest dropped
        self._released: OrderedDict[int, Node] = OrderedDict()
        #: names given in each virtual directory, kept so names stay stable
        self._tags: dict[str, str] | None = None  # shown name → tag
        self._bad_colors: set[str] = set()
        self._families: frozenset[str] | None = None

    # -- nodes ---------------------------------------------------------------------

    def _node(self, path: tuple[str, ...]) -> Node:
        node = self._by_path.get(path)
        if node is None:
            node = Node(path, next(self._inodes))
            self._by_path[path] = node
            self._by_inode[node.inode] = node
        return node

    def scratch_inode(self) -> int:
        """An inode for something short-lived in a virtual folder (a copy being made)."""
        return next(self._inodes)

    def node(self, inode: int) -> Node | None:
        node = self._by_inode.get(inode)
        if node is None:
            node = self._released.pop(inode, None)
            if node is not None:  # the kernel was handed it again (a lookup or a
                # listing taken before its forget): it is known again
                self._by_inode[inode] = node
                self._by_path.setdefault(node.path, node)
        return node

    def release(self, inode: int) -> int | None:
        """The kernel forgot this folder: its node goes (the folders at the root
        stay; a later lookup of the same path makes a new node). Returns the
        inode of its parent folder, whose kept listing names it."""
        node = self._by_inode.get(inode)
        if node is None or len(node.path) == 1:
            return None
        del self._by_inode[inode]
        if self._by_path.get(node.path) is node:
            del self._by_path[node.path]
        self._released[inode] = node
        if len(self._released) > RELEASED_KEPT:
            self._released.popitem(last=False)
        parent = self._by_path.get(node.path[:-1])
        return parent.inode if parent is not None else None

    def known(self) -> int:
        return len(self._by_inode)

    def top(self, name: str) -> Node | None:
        """A virtual folder at the root (reachable by path even when hidden)."""
        return self._node((name,)) if name in ROOT_NAMES else None

    def root_entries(self) -> list[tuple[str, Attr]]:
        if self.hidden:
            return []
        return [(name, self.dir_attr(self._node((name,)))) for name in ROOT_NAMES]

    def dir_attr(self, node: Node) -> Attr:
        writable = node.kind in ("search", "text") and len(node.path) == 1
        mode = stat.S_IFDIR | (0o755 if writable or node.kind == "tags" else 0o555)
        return Attr(node.inode, True, 4096, mode, self.view.mounted_ns, self.view.uid,
                    self.view.gid)

    def changed(self) -> None:
        """The store changed: tags and names are computed again when next asked."""
        self._tags = None

    # -- lookups ---------------------------------------------------------------------

    async def child_dir(self, parent: Node, name: str, creating: bool = False) -> Node | None:
        """The directory `name` in `parent`, if it is one (may run a color query).

        `creating`: the caller is inside mkdir(2). Any name under search/ is a
        query, so the kernel would answer "exists" without asking us; an
        unsaved query must look absent to let `mkdir search/<text>` save it.
        """
        kind, depth = parent.kind, len(parent.path)
        if kind in ("search", "text") and depth == 1:
            if name.startswith(".") or name in PROBES or not name.strip():
                return None
            if creating and not self.queries.is_saved(kind, name):
                return None
            return self._node((kind, name))
        if kind == "colors" and depth == 1:
            if name in self._bad_colors or name.startswith("."):
                return None
            try:
                query = colorspec.parse(name, await self.families())
            except colorspec.BadColor:
                self._bad_colors.add(name)
                return None
            if query.name is not None:  # only the service knows its color names
                try:
                    await self.queries.results("colors", query.key, query)
                except QueryFailed as exc:
                    if isinstance(exc.__cause__, ValidationFailed):
                        self._bad_colors.add(name)
                        return None
                    raise ViewError(errno.EIO, str(exc)) from None
            return self._node(("colors", name))
        if kind == "tags":
            tag = self.tags().get(name)
            if tag is None or name in parent.path[1:]:
                return None
            return self._node((*parent.path, name))
        if kind == "by-date" and depth == 1:
            return self._node(("by-date", name)) if name in self.browse.years() else None
        if kind == "by-date" and depth == 2:
            months = self.browse.months(parent.path[1])
            return self._node((*parent.path, name)) if name in months else None
        return None

    async def lookup(self, parent: Node, name: str, creating: bool = False
                     ) -> tuple[Node | None, Attr]:
        """(the directory node or None for a file, its attributes); KeyError if absent."""
        child = await self.child_dir(parent, name, creating)
        if child is not None:
            return child, self.dir_attr(child)
        if parent.holds_files:
            for entry_name, attr in await self.listing(parent):
                if entry_name == name:
                    return None, attr
        raise KeyError(name)

    # -- listings ------------------------------------------------------------------------

    async def listing(self, node: Node) -> list[tuple[str, Attr]]:
        kind, depth = node.kind, len(node.path)
        if depth == 1:
            return [(name, self.dir_attr(self._node((kind, name))))
                    for name in await self._top_names(kind)]
        if kind == "by-date" and depth == 2:
            return [(m, self.dir_attr(self._node((*node.path, m))))
                    for m in self.browse.months(node.path[1])]
        return self._files(node, await self._file_rows(node))

    async def _top_names(self, kind: str) -> list[str]:
        if kind in ("search", "text"):
            return self.queries.saved(kind)
        if kind == "colors":
            return sorted(await self.families())
        if kind == "tags":
            return sorted(self.tags())
        return self.browse.years()

    async def _file_rows(self, node: Node) -> list[Any]:
        kind = node.kind
        if kind in QUERY_KINDS:
            query, color = node.path[1], None
            if kind == "colors":
                color = colorspec.parse(query, await self.families())
                query = color.key
            try:
                ids = await self.queries.results(kind, query, color)
            except QueryFailed as exc:
                raise ViewError(errno.EIO, str(exc)) from None
            return self.browse.by_ids(ids)
        if kind == "tags":
            tags = [self.tags()[name] for name in node.path[1:] if name in self.tags()]
            if len(tags) != len(node.path) - 1:
                return []
            return self.browse.tagged(tags)
        return self.browse.dated(node.path[1], node.path[2])

    def _files(self, node: Node, rows: Iterable[Any]) -> list[tuple[str, Attr]]:
        """Entries for files in rank (or listing) order, named as in the tree."""
        rows = list(rows)
        children = [naming.Child(r["inode"], naming.file_name(
            r["title"], r["filename"], r["format"], r["media_type"], r["domain"]),
            r["created_at"], r["id"]) for r in rows]
        names = naming.assign(children)
        ranked = self.rank_names and node.kind in QUERY_KINDS
        width = max(3, len(str(len(rows))))
        out = []
        for rank, r in enumerate(rows, 1):
            name = names[r["inode"]]
            if ranked:
                name = naming.safe_name(f"{rank:0{width}d} {name}")
            out.append((name, self.view.file_attr(r)))
        return out

    # -- what the store and the service hold ------------------------------------------

    def tags(self) -> dict[str, str]:
        """Every tag in the store by its shown name (made safe; clashes suffixed)."""
        if self._tags is None:
            shown: dict[str, str] = {}
            for tag in self.browse.tags():
                name = naming.safe_name(tag)
                if name in shown:
                    name = naming.suffixed(name, tag.encode().hex())
                shown[name] = tag
            self._tags = shown
        return self._tags


    async def families(self) -> frozenset[str]:
        """The color families (asked once, then kept in the store)."""
        if self._families is None:
            stored = self.store.get_meta("color_families")
            if stored is not None:
                self._families = frozenset(json.loads(stored))
            else:
                try:
                    fams = await self.queries.client.color_families()
                except ApiError:
                    return frozenset()  # offline: asked again next time
                names = [f.name for f in fams]
                with self.store.transaction():
                    self.store.set_meta("color_families", json.dumps(names))
                self._families = frozenset(names)
        return self._families
