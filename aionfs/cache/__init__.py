"""The content cache: file bytes on local disk, by range.

Owns the cache directory and (through store/content_index.py) its index.
May import the API client and the store.
"""
