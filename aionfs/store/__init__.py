"""The metadata store: the library in SQLite, as the mount shows it.

Owns every table and every SQL statement but the upload journal's (one
repository per concern: db.py, content_index.py, watched.py,
query_results.py, browse.py). Imports nothing of aionfs.
"""

from .db import ROOT_KEY, Entry, Event, Store
from .schema import ROOT_INODE, SCHEMA_VERSION

__all__ = ["ROOT_KEY", "ROOT_INODE", "SCHEMA_VERSION", "Entry", "Event", "Store"]
