"""The metadata store: the library in SQLite, as the mount shows it."""

from .db import ALL_FILES, Entry, Event, Store
from .schema import ROOT_INODE, SCHEMA_VERSION

__all__ = ["ALL_FILES", "ROOT_INODE", "SCHEMA_VERSION", "Entry", "Event", "Store"]
