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

from .vendor import DEFAULT_BASE_URL, ENV_BASE_URL, ENV_KEY, PLAN_LIMITS

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
class Setting:
    """How one setting is given and checked, declared once beside its default (a
    `Profile` field's metadata). The config-file key, the `mount` flag, the
    environment variable, reload, `config show` and the settings table of
    docs/operations.md all come from this, so they cannot disagree."""

    help: str
    kind: str  # seconds, size, bool, path, file, plan, count, text, buckets, watch
    minimum: float = 0.0  # seconds: the least accepted
    flag: bool = True  # a flag of `aionfs mount` (--poll-interval for poll_interval)
    reload: bool = False  # a running mount takes a new value on reload (SIGHUP)
    env: str | None = None  # an environment variable that sets it
    shown: str = ""  # the default in words, where the value alone would mislead

    @property
    def metavar(self) -> str:
        return {"seconds": "S", "size": "SIZE", "path": "DIR", "file": "FILE", "count": "N",
                "buckets": "B1,B2"}.get(self.kind, "TEXT")

    def parse(self, raw: Any) -> Any:
        """A value from the config file (TOML types) or a flag (text) → the
        setting's value; ConfigError says what it must be."""
        kind, text = self.kind, isinstance(raw, str)
        if kind == "seconds":
            try:
                value = float(raw) if text else float(_typed(raw, (int, float)))
            except (TypeError, ValueError):
                raise ConfigError(f"must be a number of seconds, not {raw!r}") from None
            if not value >= self.minimum:  # (also refuses nan)
                raise ConfigError(f"must be at least {self.minimum:g} seconds, not {raw!r}")
            return value
        if kind == "count":
            try:
                value = int(raw) if text else _typed(raw, int)
            except (TypeError, ValueError):
                raise ConfigError(f"must be a whole number, not {raw!r}") from None
            if value < 0:
                raise ConfigError(f"must be 0 or more, not {raw!r}")
            return value
        if kind == "size":
            return parse_size(raw if text else _typed(raw, int))
        if kind == "bool":
            return _typed(raw, bool)
        if kind == "path":
            path = _expand(_typed(raw, str))
            if path.exists() and not path.is_dir():
                raise ConfigError(f"{path} is not a directory")
            return path
        if kind == "file":
            path = _expand(_typed(raw, str))
            if path.is_dir():
                raise ConfigError(f"{path} is a directory")
            return path
        if kind == "text":
            return _typed(raw, str)
        if kind == "plan":
            if _typed(raw, str) not in PLAN_LIMITS:
                raise ConfigError(f"unknown plan {raw!r} (one of {', '.join(PLAN_LIMITS)})")
            return raw
        if kind == "buckets":
            sizes = [b.strip() for b in raw.split(",") if b.strip()] if text else raw
            if not isinstance(sizes, list) or not sizes or not all(
                    isinstance(x, str) and x in THUMBNAIL_SIZES for x in sizes):
                raise ConfigError(f"choose from {', '.join(THUMBNAIL_SIZES)}, not {raw!r}")
            return tuple(sizes)
        if kind == "watch":
            if not isinstance(raw, list):
                raise ConfigError("must be a list of tables ([[...watch]])")
            return tuple(_watch_spec(w, f"[{i}]") for i, w in enumerate(raw))
        raise AssertionError(f"no parser for {kind}")


def _setting(default: Any, help: str, kind: str, **how: Any) -> Any:
    return field(default=default, metadata={"setting": Setting(help, kind, **how)})


THUMBNAIL_SIZES = ("normal", "large", "x-large", "xx-large")


@dataclass(frozen=True)
class Profile:
    """Everything but the key. `source` says where each non-default value came from."""

    name: str = DEFAULT_PROFILE
    base_url: str = _setting(DEFAULT_BASE_URL, "The API's address (another server, such as "
                             "the emulator).", "text", flag=False, env=ENV_BASE_URL)
    plan: str = _setting("free", "Your plan, which sets the request budget.", "plan",
                         env=ENV_PLAN, shown="asked of the service by mount and doctor, "
                         "else free")
    rpm: int | None = _setting(None, "Requests per minute instead of the plan's (0: no "
                               "limit, for servers without one such as the emulator).",
                               "count", shown="the plan's")
    mountpoint: Path | None = _setting(None, "Where `aionfs mount` mounts without an "
                                       "argument.", "path", flag=False, shown="none")
    cache_dir: Path | None = _setting(None, "Where the metadata store, content cache and "
                                      "staged uploads live.", "path",
                                      shown="the XDG cache dir")
    cache_size: int | None = _setting(None, "Content cache cap, e.g. 2G.", "size",
                                      reload=True, shown="10 % of the free space, at most 20G")
    poll_interval: float = _setting(60.0, "Seconds between checks for remote changes.",
                                    "seconds", minimum=0.1, reload=True)
    revalidate_interval: float = _setting(900.0, "Seconds after which a listed folder is "
                                          "listed again (renames, retags).", "seconds",
                                          minimum=0.1, reload=True)
    read_timeout: float = _setting(5.0, "Seconds a read waits for bytes not yet cached "
                                   "before failing (EIO); time queued for the plan's budget "
                                   "is not counted.", "seconds", minimum=0.1, reload=True)
    write_back_delay: float = _setting(3.0, "Seconds a closed file waits before its upload "
                                       "(a file rewritten meanwhile is uploaded once).",
                                       "seconds", reload=True)
    commit_interval: float = _setting(1.0, "Seconds within which a closed file reaches "
                                      "stable storage when it was not fsync'd (the group "
                                      "commit; docs/writes.md#durability).", "seconds",
                                      minimum=0.1)
    query_ttl: float = _setting(600.0, "Seconds a query's results are served before being "
                                "asked again.", "seconds", minimum=1, reload=True)
    rank_names: bool = _setting(False, "Prefix search results with their rank (001 "
                                "name.jpg), so that file managers sorting by name show the "
                                "best match first.", "bool")
    hide_views: bool = _setting(False, "Leave search/, text/, colors/, tags/ and by-date/ "
                                "out of the root listing (they stay reachable by path).",
                                "bool")
    read_only: bool = _setting(False, "Mount read-only: every write gets EROFS, and file "
                               "managers watching a folder no longer see remote changes "
                               "live.", "bool")
    thumbnails: bool = _setting(True, "Seed file managers' thumbnails of listed folders from "
                                "the API's small renditions, so they never read whole "
                                "images.", "bool")
    thumbnail_sizes: tuple[str, ...] = _setting(("normal", "large"), "Thumbnail buckets to "
                                                "seed: normal, large, x-large, xx-large.",
                                                "buckets")
    thumbnail_wait: float = _setting(5.0, "Seconds a file manager's opening of a folder "
                                     "waits for its thumbnails (the rest follow in the "
                                     "background).", "seconds", reload=True)
    trace: Path | None = _setting(None, "Append every API request's and answer's shape to "
                                  "this file (no key, token, title or content: "
                                  "docs/operations.md#traces), for a report of how the "
                                  "service answered.", "file", shown="none")
    watch: tuple[WatchSpec, ...] = _setting((), "Watched folders the mount runs "
                                            "([[profiles.NAME.watch]] tables).", "watch",
                                            flag=False, reload=True)
    source: dict[str, str] = field(default_factory=dict, compare=False)

    def with_overrides(self, origin: str, **values: Any) -> Profile:
        """Values that are not None replace the profile's, noting where they came from."""
        given = {k: v for k, v in values.items() if v is not None}
        if not given:
            return self
        return replace(self, **given, source={**self.source, **dict.fromkeys(given, origin)})


#: every setting, by name, in the order declared
SETTINGS: dict[str, Setting] = {f.name: f.metadata["setting"] for f in fields(Profile)
                                if "setting" in f.metadata}
#: settings a reload (SIGHUP) can change while mounted; the others need a remount
RELOADABLE = frozenset(name for name, s in SETTINGS.items() if s.reload)


def default_of(name: str) -> Any:
    return next(f.default for f in fields(Profile) if f.name == name)


def shown_default(name: str) -> str:
    """A setting's default as help and the docs say it."""
    default, shown = default_of(name), SETTINGS[name].shown
    if shown:
        return shown
    if isinstance(default, bool):
        return "on" if default else "off"
    if isinstance(default, tuple):
        return ",".join(map(str, default)) or "none"
    if isinstance(default, float):
        return f"{default:g}"
    return str(default)


def _expand(value: str) -> Path:
    return Path(os.path.expandvars(value)).expanduser()


def _profile_from_table(name: str, table: dict[str, Any], where: str) -> Profile:
    values: dict[str, Any] = {}
    for key, raw in table.items():
        what = f"{where}: [profiles.{name}] {key}"
        if key in ("api_key", "key"):
            raise ConfigError(f"{what}: the API key does not belong in the config file; run "
                              "'aionfs login' (it keeps the key in a private file)")
        setting = SETTINGS.get(key)
        if setting is None:
            raise ConfigError(f"{what}: unknown setting")
        try:
            values[key] = setting.parse(raw)
        except ConfigError as exc:
            raise ConfigError(f"{what} {exc}") from None
    return Profile(name=name).with_overrides(f"config ({where})", **values)


def _typed(value: Any, kind: type | tuple[type, ...], what: str = "") -> Any:
    # bool is an int in Python; a number where a flag belongs (or back) is a mistake
    if isinstance(value, bool) != (kind is bool) or not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise ConfigError(f"{what + ' ' if what else ''}must be a {names}, not {value!r}")
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
    given = {}
    for key, setting in SETTINGS.items():
        raw = env.get(setting.env) if setting.env else None
        if raw:
            try:
                given[key] = setting.parse(raw)
            except ConfigError as exc:
                raise ConfigError(f"{setting.env}={raw!r}: {exc}") from None
    return profile.with_overrides("environment", **given)


def describe(profile: Profile, key_origin: str | None, masked_key: str | None) -> list[
        tuple[str, str, str]]:
    """(setting, value, where it came from) rows for `aionfs config show`."""
    rows = [("profile", profile.name, ""),
            ("api_key", masked_key or "(none: run 'aionfs login' or set " + ENV_KEY + ")",
             key_origin or "")]
    for name in SETTINGS:
        if name == "watch":
            continue
        value = getattr(profile, name)
        shown = f"({shown_default(name)})" if value is None else str(value)
        rows.append((name, shown, profile.source.get(name, "default")))
    for i, w in enumerate(profile.watch):
        extra = (f" tags={','.join(w.tags)}" if w.tags else "") + (
            " delete-after-upload" if w.delete_after_upload else "")
        rows.append((f"watch[{i}]", f"{w.dir} → /{w.to}{extra}",
                     profile.source.get("watch", "")))
    return rows


def settings_table() -> str:
    """The settings as a Markdown table (docs/operations.md holds it verbatim)."""
    rows = ["| setting (config key) | `aionfs mount` flag | default | on reload | what it does |",
            "|---|---|---|---|---|"]
    for name, s in SETTINGS.items():
        flag = f"`--{name.replace('_', '-')}`" if s.flag else "—"
        if s.env:
            flag += f", ${s.env}"
        unit = f" (≥ {s.minimum:g} s)" if s.kind == "seconds" and s.minimum else ""
        rows.append(f"| `{name}` | {flag} | {shown_default(name)}{unit} | "
                    f"{'applied' if s.reload else 'needs a remount'} | {s.help} |")
    return "\n".join(rows) + "\n"
