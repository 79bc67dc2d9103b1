"""The setup commands of `aionfs`: login, config show, doctor, service install/uninstall.

cli.py adds them to the `aionfs` group (SETUP_COMMANDS); like every command, they import their machinery lazily and report errors a
user can fix in one line.
"""

from __future__ import annotations

import json
import os
import sys

import click

from .cliargs import plan_option, profile_for, profile_option, workspace_store


@click.command()
@profile_option
@click.option("--no-check", is_flag=True,
              help="Store the key without asking the API whether it works.")
def login(profile_name: str | None, no_check: bool) -> None:
    """Store the API key of a profile in a private file (mode 0600).

    The key is read from a hidden prompt, or from stdin when that is not a
    terminal; never from the command line, where other users could read it.
    It is checked against the API (GET /folders) before it is stored.

    \b
    Examples:
      aionfs login
      pass show aionvision | aionfs login --profile work
    """
    from .api import ApiSettings, SettingsError
    from .api.settings import ApiKey
    from .credentials import CredentialsError, key_path, save_key
    from .doctor import check_api

    profile = profile_for(profile_name)
    if sys.stdin.isatty():
        text = click.prompt("API key (input hidden)", hide_input=True, err=True)
    else:
        text = sys.stdin.readline()
    try:
        key = ApiKey(text)
        key_path(profile.name)
        settings = ApiSettings(api_key=key, base_url=profile.base_url, plan=profile.plan,
                               max_attempts=1, timeout=15)
    except (SettingsError, CredentialsError) as exc:
        raise click.ClickException(str(exc)) from None
    if not no_check:
        check = check_api(settings, profile)
        if not check.ok:
            raise click.ClickException(f"{check.detail}; nothing stored ({check.fix}; "
                                       "--no-check stores it anyway)")
        click.echo(f"the key works: {check.detail}", err=True)
    path = save_key(profile.name, key)
    click.echo(f"stored the key {key.masked()} for profile {profile.name!r} in {path}")
    if os.environ.get("AIONVISION_API_KEY"):
        click.echo("note: AIONVISION_API_KEY is set in this shell and wins over the stored "
                   "key", err=True)


@click.group()
def config() -> None:
    """The configuration: ~/.config/aionfs/config.toml and its profiles.

    \b
    Example:
      aionfs config show --profile work
    """


@config.command("show")
@profile_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def config_show(profile_name: str | None, as_json: bool) -> None:
    """Print the effective settings of a profile, and where each comes from.

    The key is shown masked. Precedence: flags, then environment variables,
    then the profile in the config file, then built-in defaults.

    \b
    Example:
      aionfs config show --profile work
    """
    from .config import config_path, describe
    from .credentials import CredentialsError, find_key

    profile = profile_for(profile_name)
    try:
        found = find_key(profile.name)
        masked, origin = (found[0].masked(), found[1]) if found else (None, None)
    except CredentialsError as exc:
        masked, origin = f"(unusable: {exc})", None
    rows = describe(profile, origin, masked)
    if as_json:
        click.echo(json.dumps({"config_file": str(config_path()),
                               "settings": {k: {"value": v, "from": o} for k, v, o in rows}},
                              indent=2))
        return
    click.echo(f"# {config_path()}" + ("" if config_path().exists() else " (not present)"))
    width = max(len(k) for k, _, _ in rows)
    for k, v, o in rows:
        click.echo(f"{k:<{width}}  {v}" + (f"   [{o}]" if o else ""))


@click.command()
@profile_option
@plan_option
@click.option("--api", "api", is_flag=True,
              help="Also call each API operation aionfs relies on once (read-only, at most "
                   "15 requests) and check every answer against the vendored spec.")
@click.option("--write-test", "write_folder", metavar="FOLDER", default=None,
              help="With --api: also upload, read, rename and delete one small image in "
                   "this folder of the library (e.g. Inspections/Scans).")
def doctor(profile_name: str | None, plan: str | None, api: bool,
           write_folder: str | None) -> None:
    """Check everything a mount needs, and print a fix for each failing check.

    FUSE, the mountpoint, the API key, the API's reachability, your plan
    and its rate limit (the plan given, else the one the service names, as
    the mount would use), and the cache directory's free space. With --api,
    a table of the service's answers: per operation its status, time, and
    "conforms" or the first difference from the spec.

    \b
    Examples:
      aionfs doctor --profile work
      aionfs doctor --api
      aionfs doctor --api --write-test Inspections/Scans
    """
    from .doctor import check_key, run_checks

    profile = profile_for(profile_name, plan=plan)
    checks = run_checks(profile, lambda s: workspace_store(s, None))
    for c in checks:
        click.echo(f"{'ok  ' if c.ok else 'FAIL'} {c.name}: {c.detail}")
        if not c.ok and c.fix:
            click.echo(f"     fix: {c.fix}")
    ok = all(c.ok for c in checks)
    if write_folder is not None and not api:
        raise click.UsageError("--write-test goes with --api")
    if api:
        import trio

        from .conformance import probe, table

        # the plan the API check settled on; else (it failed: the probe says how) the
        # profile's
        settings = next((c.settings for c in checks if c.settings is not None), None) \
            or check_key(profile)[1]
        if settings is None:  # (no key: said above)
            sys.exit(1)
        click.echo("")
        lines = trio.run(probe, settings, write_folder)
        click.echo(table(lines))
        ok = ok and all(line.ok for line in lines)
    sys.exit(0 if ok else 1)


@click.group()
def service() -> None:
    """The systemd user service that mounts the library at every login.

    \b
    Examples:
      aionfs service install --enable
      aionfs service uninstall
    """


def _systemctl(*args: str) -> None:
    import subprocess

    try:
        res = subprocess.run(["systemctl", "--user", *args], capture_output=True, text=True)
    except FileNotFoundError:
        raise click.ClickException("systemctl is not installed") from None
    if res.returncode != 0:
        raise click.ClickException(f"systemctl --user {' '.join(args)} failed: "
                                   f"{res.stderr.strip() or res.returncode}")


@service.command("install")
@profile_option
@click.option("--enable", is_flag=True, help="Also enable and start it now.")
@click.option("--bookmark", is_flag=True,
              help="Also add the mount to the GTK bookmarks (the sidebar of Nautilus, Thunar "
                   "and PCManFM); uninstall removes it.")
def service_install(profile_name: str | None, enable: bool, bookmark: bool) -> None:
    """Write the user unit into ~/.config/systemd/user/ and print how to start it.

    The profile needs a mountpoint and a stored key ('aionfs login'): the
    unit holds neither the key nor any secret.

    \b
    Examples:
      aionfs login && aionfs service install --enable
      aionfs service install --profile work      # aionfs@work.service
      aionfs service install --enable --bookmark # and in the file manager's sidebar
    """
    from .credentials import CredentialsError, find_key
    from .daemon.service import add_bookmark, bookmarks_file, install, unit_name

    profile = profile_for(profile_name)
    if profile.mountpoint is None:
        raise click.UsageError(f"profile {profile.name!r} has no mountpoint: set mountpoint "
                               f"in [profiles.{profile.name}] of the config file")
    try:
        found = find_key(profile.name, environ={})  # systemd does not see this shell's env
    except CredentialsError as exc:
        raise click.ClickException(str(exc)) from None
    if found is None:
        raise click.ClickException(f"no stored key for profile {profile.name!r}: run 'aionfs "
                                   "login' first (the service cannot see AIONVISION_API_KEY)")
    written = install(profile_name)
    name = unit_name(profile_name)
    for path in written:
        click.echo(f"wrote {path}")
    if bookmark:
        added = add_bookmark(profile.mountpoint.absolute(), profile.mountpoint.name or "Aion")
        click.echo(f"{'added' if added else 'kept'} the bookmark in {bookmarks_file()}")
    if enable:
        _systemctl("daemon-reload")
        _systemctl("enable", "--now", name)
        click.echo(f"enabled and started {name}")
    else:
        click.echo(f"start it with:\n  systemctl --user daemon-reload\n"
                   f"  systemctl --user enable --now {name}")
    click.echo("to mount before login (and keep it after logout): loginctl enable-linger")


@service.command("uninstall")
@profile_option
def service_uninstall(profile_name: str | None) -> None:
    """Stop and disable the user unit, and remove its file.

    \b
    Example:
      aionfs service uninstall
    """
    import shutil

    from .daemon.service import remove_bookmark, uninstall, unit_name

    name = unit_name(profile_name)
    mountpoint = profile_for(profile_name).mountpoint
    if mountpoint is not None and remove_bookmark(mountpoint.absolute()):
        click.echo("removed the bookmark")
    if shutil.which("systemctl"):
        try:
            _systemctl("disable", "--now", name)
        except click.ClickException as exc:
            click.echo(f"note: {exc.message}", err=True)
    removed = uninstall(profile_name)
    for path in removed:
        click.echo(f"removed {path}")
    if not removed:
        click.echo(f"{name} was not installed")


SETUP_COMMANDS = (login, config, doctor, service)
