"""Writing through the mount: the durable journal and the upload workers.

Owns the upload journal (its rows and staging files) and the uploads. May
import the API client, the store and sync.
"""

from .journal import ACCEPTED, MAX_SIZE, Journal, LocalFile, content_type, is_scratch

__all__ = ["ACCEPTED", "MAX_SIZE", "Journal", "LocalFile", "content_type", "is_scratch"]
