"""by-date/<yyyy>/<mm>/: files by content creation time, else upload time (store)."""

from __future__ import annotations

from typing import Any

from .base import Kind, Path


class ByDate(Kind):
    name = "by-date"

    async def folders(self, path: Path) -> list[str]:
        if len(path) == 1:
            return self.tree.browse.years()
        if len(path) == 2:
            return self.tree.browse.months(path[1])
        return []

    def holds_files(self, path: Path) -> bool:
        return len(path) == 3

    async def rows(self, path: Path) -> list[Any]:
        return self.tree.browse.dated(path[1], path[2])
