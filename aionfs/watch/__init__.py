"""Watched folders: local folders whose new files are uploaded into the library, once."""

from .folder import WatchedFolder
from .manager import Watches

__all__ = ["WatchedFolder", "Watches"]
