"""Thumbnails for file managers, seeded from the API's renditions (no original read).

Owns the thumbnails it writes into the freedesktop cache. May import the API
client, the store and the FUSE-free fs model (fs/view.py).
"""

from .seeder import Thumbnails

__all__ = ["Thumbnails"]
