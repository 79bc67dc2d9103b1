"""The kinds of virtual folder, one module each, registered here.

Adding a kind is one module (a `Kind` subclass) and one line in KINDS; its
root name must also be reserved in store/naming.py (VIRTUAL_ROOT_NAMES), so
that no library file at the root takes it (checked at import).
"""

from __future__ import annotations

from ...store import naming
from .base import Kind, Path, ViewError
from .by_date import ByDate
from .colors import Colors
from .saved_queries import Search, Text
from .tags import Tags

KINDS: tuple[type[Kind], ...] = (ByDate, Colors, Search, Tags, Text)

if frozenset(k.name for k in KINDS) != naming.VIRTUAL_ROOT_NAMES:
    raise ImportError("the virtual folders' names and the store's reserved root names differ")

__all__ = ["KINDS", "Kind", "Path", "ViewError"]
