"""The metadata store: the library in SQLite, as the mount shows it."""

from .db import ROOT_KEY, Entry, Event, Store
from .schema import ROOT_INODE, SCHEMA_VERSION

__all__ = ["ROOT_KEY", "ROOT_INODE", "SCHEMA_VERSION", "Entry", "Event", "Store"]
