"""The mount daemon: one trio nursery owning FUSE, sync and the content cache.

Owns the process: construction of every part, its tasks, signals, the
control socket, systemd. May import every package but the command line.
"""
