"""The mount daemon: one trio nursery owning FUSE, sync and the content cache."""
