"""Writing through the mount: the durable journal and the upload workers."""

from .journal import ACCEPTED, MAX_SIZE, Journal, LocalFile, content_type, is_scratch

__all__ = ["ACCEPTED", "MAX_SIZE", "Journal", "LocalFile", "content_type", "is_scratch"]
