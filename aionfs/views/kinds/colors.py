"""colors/<spec>/: images by color (spec grammar in views/colorspec.py).

colors/ lists the color families, each one query; any other valid spec is
reachable by path. A name only the service knows (a color name) is asked
once; names it refuses are remembered as not folders.
"""

from __future__ import annotations

import errno
import json
from typing import Any

from ...api.errors import ApiError, ValidationFailed
from .. import colorspec
from ..queries import QueryFailed
from .base import Creating, Kind, Path, ViewError
from .saved_queries import query_rows


class Colors(Kind):
    name = "colors"
    ranked = True

    def __init__(self, tree: Any) -> None:
        super().__init__(tree)
        self._bad: set[str] = set()
        self._families: frozenset[str] | None = None

    async def folders(self, path: Path) -> list[str]:
        return sorted(await self.families()) if len(path) == 1 else []

    async def is_folder(self, path: Path, name: str, creating: Creating) -> bool:
        if len(path) != 1 or name in self._bad or name.startswith("."):
            return False
        try:
            query = colorspec.parse(name, await self.families())
        except colorspec.BadColor:
            self._bad.add(name)
            return False
        if query.name is not None:  # only the service knows its color names
            try:
                await self.tree.queries.results("colors", query.key, query)
            except QueryFailed as exc:
                if isinstance(exc.__cause__, ValidationFailed):
                    self._bad.add(name)
                    return False
                raise ViewError(errno.EIO, str(exc)) from None
        return True

    def holds_files(self, path: Path) -> bool:
        return len(path) == 2

    async def rows(self, path: Path) -> list[Any]:
        color = colorspec.parse(path[1], await self.families())
        return await query_rows(self, color.key, color)

    async def families(self) -> frozenset[str]:
        """The color families (asked once, then kept in the store)."""
        if self._families is None:
            store = self.tree.store
            stored = store.get_meta("color_families")
            if stored is not None:
                self._families = frozenset(json.loads(stored))
            else:
                try:
                    fams = await self.tree.queries.client.color_families()
                except ApiError:
                    return frozenset()  # offline: asked again next time
                names = [f.name for f in fams]
                with store.transaction():
                    store.set_meta("color_families", json.dumps(names))
                self._families = frozenset(names)
        return self._families
