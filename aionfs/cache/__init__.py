"""The content cache: file bytes on local disk, by range."""
