"""What a mount runs with: a profile's settings (flags applied) and where it mounts.

The settings are the profile itself (config.py): one description of every
setting, whether it comes from a flag, the environment or the file. A reload
(SIGHUP) replaces the profile with one whose reloadable settings are new.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..config import Profile


@dataclass
class MountOptions:
    #: every setting; its cache_size is resolved (never None)
    profile: Profile
    mountpoint: Path
    store_path: Path

    def __post_init__(self) -> None:
        assert self.profile.cache_size is not None, "resolve the cache size first"

    @property
    def cache_size(self) -> int:
        assert self.profile.cache_size is not None
        return self.profile.cache_size

    @property
    def unlimited(self) -> bool:
        return self.profile.rpm == 0
