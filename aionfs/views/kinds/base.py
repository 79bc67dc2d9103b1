"""What a kind of virtual folder answers: its folders, its files, what writes mean.

A kind owns `<name>/` at the root and every folder below it; a folder is
named by its path, `(name, …)`. The tree (views/tree.py) gives folders their
inodes and attributes and names the files; a kind says only which folders
and which store rows a path holds, and what mkdir, rmdir and putting a file
in or taking it out mean there. It raises `ViewError` with the errno the
caller gets.
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from ..tree import VirtualTree

Path = tuple[str, ...]
#: asks whether the caller is inside mkdir(2) (a read of /proc: only when it matters)
Creating = Callable[[], bool]


def not_creating() -> bool:
    return False


class ViewError(Exception):
    """A view cannot answer; `errno` says how the mount reports it."""

    def __init__(self, errno_: int, message: str) -> None:
        super().__init__(message)
        self.errno = errno_


def refused(path: Path, what: str) -> ViewError:
    return ViewError(errno.EPERM, f"{what} is not possible in {'/'.join(path)}/")


class Kind:
    #: the folder at the root (reserved in the store's naming, store/naming.py)
    name: ClassVar[str]
    #: its files are listed in the service's rank order (numbered with rank_names)
    ranked: ClassVar[bool] = False

    def __init__(self, tree: VirtualTree) -> None:
        self.tree = tree

    async def folders(self, path: Path) -> list[str]:
        """The folders listed in `path` (a crawler's walk stops where this is empty)."""
        return []

    async def is_folder(self, path: Path, name: str, creating: Creating) -> bool:
        """Is `name` a folder in `path`? (may be reachable without being listed)."""
        return name in await self.folders(path)

    def holds_files(self, path: Path) -> bool:
        return False

    async def rows(self, path: Path) -> list[Any]:
        """The store's rows of the files `path` lists, in listing order."""
        return []

    def writable(self, path: Path) -> bool:
        """Shown writable (mode 755): something can be made or put here."""
        return False

    def changed(self) -> None:
        """The store changed: what was derived from it is computed again when asked."""

    # -- what writes mean (refused unless a kind says otherwise) ----------------------

    async def mkdir(self, path: Path, name: str) -> None:
        raise refused(path, "mkdir")

    def rmdir(self, path: Path, name: str) -> None:
        raise refused(path, "rmdir")

    def tags_given(self, path: Path) -> list[str]:
        """The tags a library file linked, moved or copied into `path` gains."""
        raise refused(path, "putting a file")

    def tag_taken(self, path: Path) -> str:
        """The tag a file removed from `path` loses (the file itself stays)."""
        raise refused(path, "removing a file")
