"""The effective settings of one profile: the config file, then the environment, then flags.

`~/.config/aionfs/config.toml` (the XDG config dir, found by platformdirs)
holds named profiles:

    default_profile = "work"          # optional; else "default"

    [profiles.work]
    base_url = "https://api.aionvision.tech/api/v2"
    plan = "professional"
    mountpoint = "~/Aion"
    cache_dir = "~/.cache/aionfs"
    cache_size = "10G"
    poll_interval = 60
    write_back_delay = 3
    rank_names = false
    thumbnails = true                 # seed file managers' thumbnails from the API
    thumbnail_sizes = ["normal", "large"]
    thumbnail_wait = 5                # seconds a file manager's opening waits for them

    [[profiles.work.watch]]           # watched folders the daemon runs
    dir = "~/Scans"
    to = "Inspections/Scans"
    tags = ["scan"]
    delete_after_upload = false

Each setting is taken from the first of: a command-line flag, an environment
variable (`AIONVISION_API_KEY`, `AIONVISION_BASE_URL`, `AIONFS_PLAN`,
`AIONFS_PROFILE`), the profile, the built-in default. The API key is never
in the config file: it comes from the environment or from the key file that
`aionfs login` writes (see `credentials.py`).
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import platformdirs

from .api.settings import DEFAULT_BASE_URL, ENV_BASE_URL, ENV_KEY, PLAN_LIMITS

ENV_PROFILE = "AIONFS_PROFILE"
ENV_PLAN = "AIONFS_PLAN"
DEFAULT_PROFILE = "default"


class ConfigError(ValueError):
    """The configuration cannot be used; the message names the file and the fix."""


def config_dir() -> Path:
    return Path(platformdirs.user_config_dir("aionfs"))


def config_path() -> Path:
    return config_dir() / "config.toml"


def parse_size(text: str | int) -> int:
    """'500M', '10G', '2GiB', or a number of bytes."""
    if isinstance(text, int):
        return text
    units = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
    raw = text.strip().lower().removesuffix("ib").removesuffix("b")
    unit = raw[-1] if raw and raw[-1] in units else ""
    try:
        value = float(raw[: len(raw) - len(unit)])
    except ValueError:
        raise ConfigError(f"{text!r} is not a size like 500M or 10G") from None
    if value < 0:
        raise ConfigError(f"{text!r} is not a size like 500M or 10G")
    return int(value * units[unit])


@dataclass(frozen=True)
class WatchSpec:
    """A local folder whose new files are uploaded into a library folder."""

    dir: Path
    to: str  # library folder path, '' for the root
    tags: tuple[str, ...] = ()
    delete_after_upload: bool = False


@dataclass(frozen=True)
class Profile:
    """Everything but the key. `source` says where each non-default value came from."""

    name: str = DEFAULT_PROFILE
    base_url: str = DEFAULT_BASE_URL
    plan: str = "free"
    rpm: int | None = None  # requests per minute instead of the plan's (0: unlimited)
    mountpoint: Path | None = None
    cache_dir: Path | None = None
    cache_size: int | None = None  # None: 10 % of the free space, at most 20 GiB
    poll_interval: float = 60.0
    revalidate_interval: float = 900.0
    read_timeout: float = 5.0
    write_back_delay: float = 3.0
    query_ttl: float = 600.0
    rank_names: bool = False
    hide_views: bool = False
    read_only: bool = False
    thumbnails: bool = True
    thumbnail_sizes: tuple[str, ...] = ("normal", "large")
    thumbnail_wait: float = 5.0
    watch: tuple[WatchSpec, ...] = ()
    source: dict[str, str] = field(default_factory=dict, compare=False)

    def with_overrides(self, origin: str, **values: Any) -> Profile:
        """Values that are not None replace the profile's, noting where they came from."""
        given = {k: v for k, v in values.items() if v is not None}
        if not given:
            return self
        return replace(self, **given, source={**self.source, **dict.fromkeys(given, origin)})


_PATHS = ("mountpoint", "cache_dir")
_FLOATS = ("poll_interval", "revalidate_interval", "read_timeout", "write_back_delay",
           "query_ttl", "thumbnail_wait")
_BOOLS = ("rank_names", "hide_views", "read_only", "thumbnails")
THUMBNAIL_SIZES = ("normal", "large", "x-large", "xx-large")


def thumbnail_sizes(sizes: list[Any]) -> tuple[str, ...]:
    """The thumbnail buckets asked for (config list or the flag's comma list)."""
    if not sizes or not all(isinstance(x, str) and x in THUMBNAIL_SIZES for x in sizes):
        raise ConfigError(f"choose from {', '.join(THUMBNAIL_SIZES)}")
    return tuple(sizes)


def _expand(value: str) -> Path:
    return Path(os.path.expandvars(value)).expanduser()


def _profile_from_table(name: str, table: dict[str, Any], where: str) -> Profile:
    values: dict[str, Any] = {}
    for key, raw in table.items():
        what = f"{where}: [profiles.{name}] {key}"
        if key == "watch":
            values["watch"] = tuple(_watch_spec(w, f"{what}[{i}]")
                                    for i, w in enumerate(_as_list(raw, what)))
        elif key in _PATHS:
            values[key] = _expand(_typed(raw, str, what))
        elif key in _FLOATS:
            number = _typed(raw, (int, float), what)
            if number <= 0:
                raise ConfigError(f"{what} must be a positive number of seconds")
            values[key] = float(number)
        elif key in _BOOLS:
            values[key] = _typed(raw, bool, what)
        elif key == "cache_size":
            try:
                values[key] = parse_size(_typed(raw, (str, int), what))
            except ConfigError as exc:
                raise ConfigError(f"{what}: {exc}") from None
        elif key == "thumbnail_sizes":
            try:
                values[key] = thumbnail_sizes(raw if isinstance(raw, list) else [None])
            except ConfigError as exc:
                raise ConfigError(f"{what}: {exc}") from None
        elif key == "rpm":
            values[key] = _typed(raw, int, what)
        elif key == "plan":
            plan = _typed(raw, str, what)
            if plan not in PLAN_LIMITS:
                raise ConfigError(f"{what}: unknown plan {plan!r} (one of "
                                  f"{', '.join(PLAN_LIMITS)})")
            values[key] = plan
        elif key == "base_url":
            values[key] = _typed(raw, str, what)
        elif key in ("api_key", "key"):
            raise ConfigError(f"{what}: the API key does not belong in the config file; run "
                              "'aionfs login' (it keeps the key in a private file)")
        else:
            raise ConfigError(f"{what}: unknown setting")
    return Profile(name=name).with_overrides(f"config ({where})", **values)


def _typed(value: Any, kind: type | tuple[type, ...], what: str) -> Any:
    # bool is an int in Python; a number where a flag belongs (or back) is a mistake
    if isinstance(value, bool) != (kind is bool) or not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise ConfigError(f"{what} must be a {names}, not {value!r}")
    return value


def _as_list(value: Any, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise ConfigError(f"{what} must be a list of tables ([[...watch]])")
    return value


def _watch_spec(table: Any, what: str) -> WatchSpec:
    if not isinstance(table, dict) or "dir" not in table:
        raise ConfigError(f"{what} needs at least dir = \"...\"")
    unknown = set(table) - {"dir", "to", "tags", "delete_after_upload"}
    if unknown:
        raise ConfigError(f"{what}: unknown setting {sorted(unknown)[0]}")
    tags = table.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise ConfigError(f"{what} tags must be a list of strings")
    return WatchSpec(dir=_expand(_typed(table["dir"], str, f"{what} dir")),
                     to=_typed(table.get("to", ""), str, f"{what} to").strip("/"),
                     tags=tuple(tags),
                     delete_after_upload=_typed(table.get("delete_after_upload", False), bool,
                                                f"{what} delete_after_upload"))


def load_file(path: Path | None = None) -> dict[str, Any]:
    path = path or config_path()
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        return {}
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None


def load_profile(name: str | None = None, *, environ: dict[str, str] | None = None,
                 path: Path | None = None) -> Profile:
    """The profile `name` (or $AIONFS_PROFILE, or the file's default) with the
    environment applied. Flags are applied by the caller with `with_overrides`."""
    env = os.environ if environ is None else environ
    path = path or config_path()
    data = load_file(path)
    profiles = data.get("profiles", {})
    if not isinstance(profiles, dict):
        raise ConfigError(f"{path}: 'profiles' must be tables like [profiles.work]")
    unknown = set(data) - {"profiles", "default_profile"}
    if unknown:
        raise ConfigError(f"{path}: unknown top-level setting {sorted(unknown)[0]!r}")
    chosen = name or env.get(ENV_PROFILE) or data.get("default_profile") or DEFAULT_PROFILE
    if chosen in profiles:
        table = profiles[chosen]
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: [profiles.{chosen}] must be a table")
        profile = _profile_from_table(chosen, table, str(path))
    elif chosen != DEFAULT_PROFILE:
        known = ", ".join(sorted(profiles)) or "none"
        raise ConfigError(f"no profile {chosen!r} in {path} (profiles there: {known})")
    else:
        profile = Profile()
    plan = env.get(ENV_PLAN)
    if plan is not None and plan not in PLAN_LIMITS:
        raise ConfigError(f"{ENV_PLAN}={plan!r} is not a plan (one of {', '.join(PLAN_LIMITS)})")
    return profile.with_overrides("environment", base_url=env.get(ENV_BASE_URL) or None,
                                  plan=plan or None)


def describe(profile: Profile, key_origin: str | None, masked_key: str | None) -> list[
        tuple[str, str, str]]:
    """(setting, value, where it came from) rows for `aionfs config show`."""
    rows = [("profile", profile.name, ""),
            ("api_key", masked_key or "(none: run 'aionfs login' or set " + ENV_KEY + ")",
             key_origin or "")]
    for f in fields(Profile):
        if f.name in ("name", "source", "watch"):
            continue
        value = getattr(profile, f.name)
        shown = "(default)" if value is None else str(value)
        rows.append((f.name, shown, profile.source.get(f.name, "default")))
    for i, w in enumerate(profile.watch):
        extra = (f" tags={','.join(w.tags)}" if w.tags else "") + (
            " delete-after-upload" if w.delete_after_upload else "")
        rows.append((f"watch[{i}]", f"{w.dir} → /{w.to}{extra}",
                     profile.source.get("watch", "")))
    return rows
