"""What a mount runs with: the options the daemon takes from a profile and its flags."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..config import Profile, WatchSpec


@dataclass
class MountOptions:
    mountpoint: Path
    store_path: Path
    cache_size: int
    poll_interval: float = 60.0
    revalidate_interval: float = 900.0
    read_timeout: float = 5.0
    #: the kernel's `ro` flag; without it writes are still refused (EROFS) by the
    #: handlers, but remote changes can be replayed for inotify watchers
    read_only: bool = False
    unlimited: bool = False
    rank_names: bool = False
    hide_views: bool = False
    query_ttl: float = 600.0
    write_back_delay: float = 3.0
    thumbnails: bool = True
    thumbnail_sizes: tuple[str, ...] = ("normal", "large")
    thumbnail_wait: float = 5.0
    profile: str = "default"  # reloaded on SIGHUP
    watch: tuple[WatchSpec, ...] = field(default_factory=tuple)
    #: settings given as flags: a reload leaves them alone (flags beat the file)
    from_flags: frozenset[str] = frozenset()


def options_from_profile(profile: Profile, mountpoint: Path, store_path: Path) -> MountOptions:
    assert profile.cache_size is not None
    return MountOptions(
        mountpoint=mountpoint, store_path=store_path, cache_size=profile.cache_size,
        poll_interval=profile.poll_interval, revalidate_interval=profile.revalidate_interval,
        read_timeout=profile.read_timeout, read_only=profile.read_only,
        unlimited=profile.rpm == 0, rank_names=profile.rank_names,
        hide_views=profile.hide_views, query_ttl=profile.query_ttl,
        write_back_delay=profile.write_back_delay, profile=profile.name, watch=profile.watch,
        thumbnails=profile.thumbnails, thumbnail_sizes=profile.thumbnail_sizes,
        thumbnail_wait=profile.thumbnail_wait,
        from_flags=frozenset(k for k, v in profile.source.items() if v == "command line"))
