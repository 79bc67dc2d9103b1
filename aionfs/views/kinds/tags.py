"""tags/<a>/[<b>/…]/: files having every tag on the path (AND), from the store.

tags/<a>/ lists its files but not the tags/<a>/<b>/ intersections (reachable
by path), so a crawler meets a file once per tag. Putting a library file
into a tag folder (ln, mv, cp of its bytes) gives it the path's tags; rm
takes the folder's own tag away; the file stays where it is in the tree.
"""

from __future__ import annotations

from typing import Any

from ...store import naming
from .base import Creating, Kind, Path, refused


class Tags(Kind):
    name = "tags"

    def __init__(self, tree: Any) -> None:
        super().__init__(tree)
        self._shown: dict[str, str] | None = None  # shown name → tag

    def shown(self) -> dict[str, str]:
        """Every tag in the store by its shown name (made safe; clashes suffixed)."""
        if self._shown is None:
            shown: dict[str, str] = {}
            for tag in self.tree.browse.tags():
                name = naming.safe_name(tag)
                if name in shown:
                    name = naming.suffixed(name, tag.encode().hex())
                shown[name] = tag
            self._shown = shown
        return self._shown

    def changed(self) -> None:
        self._shown = None

    async def folders(self, path: Path) -> list[str]:
        return sorted(self.shown()) if len(path) == 1 else []

    async def is_folder(self, path: Path, name: str, creating: Creating) -> bool:
        return name in self.shown() and name not in path[1:]

    def holds_files(self, path: Path) -> bool:
        return len(path) >= 2

    async def rows(self, path: Path) -> list[Any]:
        shown = self.shown()
        tags = [shown[name] for name in path[1:] if name in shown]
        return self.tree.browse.tagged(tags) if len(tags) == len(path) - 1 else []

    def writable(self, path: Path) -> bool:
        return True

    def tags_given(self, path: Path) -> list[str]:
        if len(path) < 2:
            raise refused(path, "putting a file")
        shown = self.shown()
        return [shown[name] for name in path[1:] if name in shown]

    def tag_taken(self, path: Path) -> str:
        if len(path) < 2 or path[-1] not in self.shown():
            raise refused(path, "removing a file")
        return self.shown()[path[-1]]
