"""search/<text>/ and text/<words>/: saved queries of the service's searches.

Any name under search/ is a query (reachable by path), but only saved ones
are listed, so a crawler never runs a search; `mkdir search/<text>` saves
one, `rmdir` forgets it. `search` is semantic image search, `text` full-text
search over titles, descriptions and visible text; both list best first.
"""

from __future__ import annotations

import errno
import logging
from typing import Any

from ..queries import QueryFailed
from .base import Creating, Kind, Path, ViewError, not_creating, refused

log = logging.getLogger(__name__)

#: names file managers and shells probe for in every folder; never queries
PROBES = frozenset({"desktop.ini", "autorun.inf", "folder.jpg", "folder.png", "thumbs.db",
                    "Thumbs.db", "AlbumArt.jpg", "cover.jpg"})


class SavedQueries(Kind):
    ranked = True

    async def folders(self, path: Path) -> list[str]:
        return self.tree.queries.saved(self.name) if len(path) == 1 else []

    async def is_folder(self, path: Path, name: str, creating: Creating) -> bool:
        if len(path) != 1 or name.startswith(".") or name in PROBES or not name.strip():
            return False
        # Any name is a query, so the kernel would answer "exists" to mkdir without
        # asking us: an unsaved one must look absent from inside mkdir(2) to be saved.
        return self.tree.queries.is_saved(self.name, name) or not creating()

    def holds_files(self, path: Path) -> bool:
        return len(path) == 2

    async def rows(self, path: Path) -> list[Any]:
        return await query_rows(self, path[1])

    def writable(self, path: Path) -> bool:
        return len(path) == 1

    async def mkdir(self, path: Path, name: str) -> None:
        if len(path) != 1:
            raise refused(path, "mkdir")
        if not await self.is_folder(path, name, not_creating):
            raise ViewError(errno.EINVAL, f"{name!r} cannot be a query")
        if not self.tree.queries.save(self.name, name):
            raise ViewError(errno.EEXIST, f"{name!r} is saved already")
        log.info("saved the %s %r", self.name, name)

    def rmdir(self, path: Path, name: str) -> None:
        if len(path) != 1:
            raise refused(path, "rmdir")
        if not self.tree.queries.forget(self.name, name):
            raise ViewError(errno.ENOENT, f"{name!r} is not a saved {self.name}")
        log.info("forgot the saved %s %r", self.name, name)


async def query_rows(kind: Kind, query: str, color: Any = None) -> list[Any]:
    """The rows of a query's results, best first (from the query cache)."""
    try:
        ids = await kind.tree.queries.results(kind.name, query, color)
    except QueryFailed as exc:
        raise ViewError(errno.EIO, str(exc)) from None
    return kind.tree.browse.by_ids(ids)


class Search(SavedQueries):
    name = "search"


class Text(SavedQueries):
    name = "text"
