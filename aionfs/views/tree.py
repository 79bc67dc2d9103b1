"""The virtual folders as a filesystem model: paths, names, listings — no FUSE types.

    search/<text>/        semantic image search, best first
    text/<words>/         full-text search over titles, descriptions, visible text
    colors/<spec>/        color search (see colorspec.py); colors/ lists the families
    tags/<a>/[<b>/…]      files having every tag on the path (AND), from the store
    by-date/<yyyy>/<mm>/  by content creation time, else upload time, from the store

Each kind is one class (views/kinds/), registered in one place; this tree
dispatches to them by the first name of a path. Directories here get
inodes from a range the store never uses, allocated per path while the
kernel holds them. Files are the library's own inodes, so they read the
same bytes and xattrs as in the tree.

Crawler safety: `search/` and `text/` list only saved queries; `tags/<a>/`
lists its files but not the `tags/<a>/<b>/` intersections (reachable by
path); `colors/` lists the families, each one query. So `find` over the
mount meets a file once in the tree, once in by-date/, once per tag, and at
most once per color family whose search returns it.
"""

from __future__ import annotations

import itertools
import stat
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..fs.view import Attr, LibraryView
from ..store import Store, naming
from ..store.browse import Browse
from .kinds import KINDS, Kind
from .kinds.base import Creating, not_creating
from .queries import QueryCache

#: inodes of virtual directories start here (the store's are counted from 1)
VIRTUAL_BASE = 1 << 48
#: released virtual folders kept for revival (see VirtualTree._released)
RELEASED_KEPT = 1024
#: the virtual folders at the root, in listing order
ROOT_NAMES = tuple(sorted(k.name for k in KINDS))


@dataclass(frozen=True)
class Node:
    """One virtual directory."""

    path: tuple[str, ...]
    inode: int

    @property
    def kind(self) -> str:
        return self.path[0]


class VirtualTree:
    def __init__(self, store: Store, queries: QueryCache, view: LibraryView, *,
                 rank_names: bool = False, hidden: bool = False) -> None:
        self.store = store
        self.browse = Browse(store)
        self.queries = queries
        self.view = view
        self.rank_names = rank_names
        self.hidden = hidden
        self.kinds: dict[str, Kind] = {k.name: k(self) for k in KINDS}
        self._inodes = itertools.count(VIRTUAL_BASE)
        self._by_path: dict[tuple[str, ...], Node] = {}
        self._by_inode: dict[int, Node] = {}
        #: nodes released lately, revived if the kernel is handed one again (a listing
        #: snapshot taken before its forget): at most RELEASED_KEPT, oldest dropped
        self._released: OrderedDict[int, Node] = OrderedDict()

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
        return self._node((name,)) if name in self.kinds else None

    def root_entries(self) -> list[tuple[str, Attr]]:
        if self.hidden:
            return []
        return [(name, self.dir_attr(self._node((name,)))) for name in ROOT_NAMES]

    def dir_attr(self, node: Node) -> Attr:
        mode = stat.S_IFDIR | (0o755 if self.kinds[node.kind].writable(node.path) else 0o555)
        return Attr(node.inode, True, 4096, mode, self.view.mounted_ns, self.view.uid,
                    self.view.gid)

    def changed(self) -> None:
        """The store changed: what the kinds derived from it is computed again."""
        for kind in self.kinds.values():
            kind.changed()

    # -- lookups ---------------------------------------------------------------------

    async def child_dir(self, parent: Node, name: str, creating: Creating = not_creating
                        ) -> Node | None:
        """The directory `name` in `parent`, if it is one (may run a color query).
        `creating`: the caller is inside mkdir(2) (see kinds/saved_queries.py)."""
        if await self.kinds[parent.kind].is_folder(parent.path, name, creating):
            return self._node((*parent.path, name))
        return None

    async def lookup(self, parent: Node, name: str, creating: Creating = not_creating
                     ) -> tuple[Node | None, Attr]:
        """(the directory node or None for a file, its attributes); KeyError if absent."""
        child = await self.child_dir(parent, name, creating)
        if child is not None:
            return child, self.dir_attr(child)
        if self.kinds[parent.kind].holds_files(parent.path):
            for entry_name, attr in await self.listing(parent):
                if entry_name == name:
                    return None, attr
        raise KeyError(name)

    # -- listings ------------------------------------------------------------------------

    async def listing(self, node: Node) -> list[tuple[str, Attr]]:
        kind = self.kinds[node.kind]
        entries = [(name, self.dir_attr(self._node((*node.path, name))))
                   for name in await kind.folders(node.path)]
        if kind.holds_files(node.path):
            entries += self._files(node, await kind.rows(node.path))
        return entries

    def _files(self, node: Node, rows: Iterable[Any]) -> list[tuple[str, Attr]]:
        """Entries for files in rank (or listing) order, named as in the tree."""
        rows = list(rows)
        children = [naming.Child(r["inode"], naming.file_name(
            r["title"], r["filename"], r["format"], r["media_type"], r["domain"]),
            r["created_at"], r["id"]) for r in rows]
        names = naming.assign(children)
        ranked = self.rank_names and self.kinds[node.kind].ranked
        width = max(3, len(str(len(rows))))
        out = []
        for rank, r in enumerate(rows, 1):
            name = names[r["inode"]]
            if ranked:
                name = naming.safe_name(f"{rank:0{width}d} {name}")
            out.append((name, self.view.file_attr(r)))
        return out

    # -- what writes mean (each kind decides; ViewError when it refuses) --------------

    async def mkdir(self, parent: Node, name: str) -> Node:
        await self.kinds[parent.kind].mkdir(parent.path, name)
        return self._node((*parent.path, name))

    def rmdir(self, parent: Node, name: str) -> None:
        self.kinds[parent.kind].rmdir(parent.path, name)

    def tags_given(self, node: Node) -> list[str]:
        """The tags a library file put into this folder gains."""
        return self.kinds[node.kind].tags_given(node.path)

    def tag_taken(self, node: Node) -> str:
        """The tag a file removed from this folder loses."""
        return self.kinds[node.kind].tag_taken(node.path)
