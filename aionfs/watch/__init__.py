"""Watched folders: local folders whose new files are uploaded into the library, once.

Owns the watched folders' state (through store/watched.py). May import the
API client, config, the store, sync, uploads and the FUSE-free parts of fs
that write (fs/local.py, fs/view.py, fs/writer.py).
"""

from .folder import WatchedFolder
from .manager import Watches

__all__ = ["WatchedFolder", "Watches"]
