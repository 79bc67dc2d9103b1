"""What the commands share: flags declared from the settings, the profile with the
command line on top, the API settings, and the workspace's store.

Its own module so that cli.py (the `aionfs` group) and setupcli.py (setup
commands) both import from here instead of from each other.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from .config import SETTINGS, ConfigError, Profile, Setting, shown_default
from .vendor import PLAN_LIMITS

if TYPE_CHECKING:
    from .api import ApiSettings


def profile_for(name: str | None, **flags: object) -> Profile:
    """The profile's settings with the command line's flags on top."""
    from .config import ConfigError, load_profile

    try:
        return load_profile(name).with_overrides("command line", **flags)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None


def api_settings(profile: Profile) -> ApiSettings:
    from .api import ApiSettings, SettingsError
    from .credentials import CredentialsError, require_key

    try:
        return ApiSettings(api_key=require_key(profile.name), base_url=profile.base_url,
                           plan=profile.plan, requests_per_minute=profile.rpm or None)
    except (SettingsError, CredentialsError) as exc:
        raise click.UsageError(str(exc)) from None


def workspace_store(settings: ApiSettings, cache_dir: Path | None) -> Path:
    """One store per workspace: named by a hash of the base URL and key (never the key)."""
    import hashlib

    import platformdirs

    root = cache_dir or Path(platformdirs.user_cache_dir("aionfs"))
    digest = hashlib.sha256(
        f"{settings.base_url}\0{settings.api_key.reveal()}".encode()).hexdigest()[:16]
    path = root / digest
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path / "metadata.sqlite3"


profile_option = click.option(
    "--profile", "profile_name", default=None, metavar="NAME",
    help="Profile of ~/.config/aionfs/config.toml (default: $AIONFS_PROFILE, the file's "
         "default_profile, or 'default').")


class _SettingValue(click.ParamType):
    """A flag's text checked by its setting's own parser, the config file's too."""

    def __init__(self, setting: Setting) -> None:
        self.setting = setting
        self.name = setting.kind

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> Any:
        if not isinstance(value, str):
            return value
        try:
            return self.setting.parse(value)
        except ConfigError as exc:
            self.fail(str(exc), param, ctx)


def setting_option(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The flag of a setting, from its declaration (config.Profile)."""
    setting = SETTINGS[name]
    flag = "--" + name.replace("_", "-")
    env = f" ${setting.env}, else the profile's, else" if setting.env else ""
    help_text = f"{setting.help} Default:{env} {shown_default(name)}."
    if setting.kind == "bool":
        return click.option(f"{flag}/--no-{flag[2:]}", name, default=None, help=help_text)
    if setting.kind == "plan":
        return click.option(flag, name, type=click.Choice(list(PLAN_LIMITS)), default=None,
                            help=help_text)
    return click.option(flag, name, type=_SettingValue(setting), default=None,
                        metavar=setting.metavar, help=help_text)


def setting_options(*names: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        for name in reversed(names):
            fn = setting_option(name)(fn)
        return fn
    return decorate


cache_dir_option = setting_option("cache_dir")
rpm_option = setting_option("rpm")
plan_option = setting_option("plan")
#: the settings `aionfs mount` takes as flags (plan, rpm and cache_dir first, as elsewhere)
MOUNT_FLAGS = tuple(name for name, s in SETTINGS.items() if s.flag)
