"""Thumbnails for file managers, seeded from the API's renditions (no original read)."""

from .seeder import Thumbnails

__all__ = ["Thumbnails"]
