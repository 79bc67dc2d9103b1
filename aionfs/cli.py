"""The `aionfs` command line.

Subcommands import their machinery lazily, so `aionfs --help` is instant.
Errors a user can fix print one line and exit non-zero; tracebacks are for
bugs only.

Exit codes: 0 success, 1 runtime failure, 2 usage or configuration error.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from . import __version__
from .cliargs import (
    MOUNT_FLAGS,
    api_settings,
    cache_dir_option,
    plan_option,
    profile_for,
    profile_option,
    rpm_option,
    setting_options,
    workspace_store,
)
from .setupcli import SETUP_COMMANDS
from .vendor import PLAN_LIMITS

if TYPE_CHECKING:
    from .api import ApiSettings
    from .daemon.control import Daemon

LOG_LEVELS = ("debug", "info", "warning", "error")


def _interrupted_replies(record: logging.LogRecord) -> bool:
    """pyfuse3 logs an error when it answers a request the kernel no longer waits
    for (ENOENT: the caller was interrupted, e.g. a reader killed mid-read).
    Nothing failed: such lines are kept for --log-level debug only."""
    if "fuse_reply_" in record.getMessage() and "No such file or directory" in record.getMessage():
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return logging.getLogger().isEnabledFor(logging.DEBUG)
    return True


def _setup_logging(level: str) -> None:
    # Under systemd, journald reads "<N>" priority prefixes from stderr.
    prefix = "<%(levelno_syslog)s>" if os.environ.get("JOURNAL_STREAM") else ""
    fmt = f"{prefix}%(asctime)s %(levelname)s %(name)s: %(message)s"

    class SyslogLevel(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            record.levelno_syslog = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4,
                                     logging.ERROR: 3}.get(record.levelno, 2)
            return True

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(fmt))
    handler.addFilter(SyslogLevel())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # httpx logs every request at INFO with the full URL; ours is enough.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("pyfuse3").addFilter(_interrupted_replies)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="aionfs")
@click.option("--log-level", type=click.Choice(LOG_LEVELS), default="info", show_default=True,
              help="How much to log to stderr.")
def main(log_level: str) -> None:
    """aionfs: your Aionvision library as a drive.

    \b
    Examples:
      aionfs login && aionfs mount ~/Aion        # the library at ~/Aion
      aionfs status                              # how the mount is doing
      aionfs service install --enable            # mounted at every login
      aionfs watch ~/Scans --to Inspections      # a scanner's folder, uploaded
      aionfs demo                                # a local demo library, mounted

    The API key is read from AIONVISION_API_KEY or the key file 'aionfs
    login' writes (never from the command line, where other users could
    read it); AIONVISION_BASE_URL points at another server, such as the
    emulator. Settings come from ~/.config/aionfs/config.toml (see 'aionfs
    config show'). Shell completion: eval "$(_AIONFS_COMPLETE=bash_source
    aionfs)".
    """
    _setup_logging(log_level)




@main.command()
@profile_option
@cache_dir_option
@plan_option
@rpm_option
@click.option("--full", is_flag=True, help="List everything, not just what changed.")
@click.option("--now", is_flag=True,
              help="Have the running mount check for remote changes now (and wait for it).")
@click.option("--allow-mass-delete", is_flag=True,
              help="Apply a sync even if it deletes more than half of the library.")
def sync(profile_name: str | None, cache_dir: Path | None, plan: str | None, rpm: int | None,
         full: bool, now: bool, allow_mass_delete: bool) -> None:
    """Bring the local metadata store up to date with the workspace.

    The first run (or --full) lists every folder; later runs poll for
    what changed. Progress goes to the terminal; a summary ends the run.
    While a mount of the workspace runs, the mount does the work (--now
    only asks it to); without a mount this command syncs by itself.

    \b
    Examples:
      aionfs sync --full
      aionfs sync --now        # the running mount looks for changes at once
    """
    from .synccli import run_sync

    profile = profile_for(profile_name, plan=plan, rpm=rpm, cache_dir=cache_dir)
    settings = api_settings(profile)
    store_path = workspace_store(settings, profile.cache_dir)
    daemon = _daemon_for(store_path)
    if daemon is not None:
        sys.exit(_ask_daemon(daemon, "sync", full=full))
    if now:
        raise click.ClickException("no mount of this workspace is running (start one with "
                                   "'aionfs mount', or run 'aionfs sync' without --now)")
    sys.exit(run_sync(settings, store_path, full=full, allow_mass_delete=allow_mass_delete,
                      unlimited=profile.rpm == 0))


@main.command(name="ls")
@profile_option
@cache_dir_option
@click.option("-l", "long", is_flag=True, help="Long listing: kind, size, date.")
@click.argument("path", default="/")
def ls_command(profile_name: str | None, cache_dir: Path | None, long: bool, path: str) -> None:
    """List a library path from the local store (the names the mount shows).

    Works offline; run 'aionfs sync' first to fill the store.

    \b
    Example:
      aionfs ls -l "Inspections/2026"
    """
    from .synccli import run_ls

    profile = profile_for(profile_name, cache_dir=cache_dir)
    sys.exit(run_ls(workspace_store(api_settings(profile), profile.cache_dir), path, long=long))


def _daemon_for(store_path: Path) -> Daemon | None:
    from .daemon.control import find_daemon

    return find_daemon(store_path=store_path)


def _ask_daemon(daemon: Daemon, command: str, **args: object) -> int:
    """Send one command to a running mount, showing its progress; the exit code."""
    from .daemon.control import ControlError, call
    from .progress import Progress

    with Progress(f"{command}") as progress:
        try:
            for message in call(daemon.socket, command, **args):
                if "progress" in message:
                    progress.update(message["progress"], message.get("total"),
                                    message.get("text", ""))
                elif "error" in message:
                    progress.close()
                    click.echo(f"aionfs {command}: {message['error']}", err=True)
                    return 1
                elif "result" in message:
                    progress.close()
                    click.echo(message["result"])
        except ControlError as exc:
            progress.close()
            click.echo(f"aionfs {command}: {exc}", err=True)
            return 1
    return 0


#: A mountpoint argument: not checked for readability, which asks the daemon (access(2)
#: goes to the filesystem: it has no `default_permissions`) and fails on a dead mount
#: that the command itself is there to detach or report.
MOUNTPOINT = click.Path(file_okay=False, readable=False, path_type=Path)


@main.command()
@click.argument("mountpoint", required=False, type=MOUNTPOINT)
@profile_option
@setting_options(*MOUNT_FLAGS)
@click.option("--foreground", "-f", is_flag=True, help="Stay in the foreground (systemd).")
@click.option("--mkdir", is_flag=True, help="Create the mountpoint if it is missing.")
@click.option("--ready-fd", type=int, default=None, hidden=True)
def mount(mountpoint: Path | None, profile_name: str | None, foreground: bool, mkdir: bool,
          ready_fd: int | None, **flags: Any) -> None:
    """Mount the library at MOUNTPOINT (default: the profile's mountpoint).

    Without --foreground it returns once the mount answers (or fails with
    a one-line reason). The cached library stays browsable when the API is
    unreachable; reads of bytes not cached then fail with EIO. Settings not
    given here come from the profile (see 'aionfs config show').

    \b
    Examples:
      mkdir -p ~/Aion && aionfs mount ~/Aion
      ls ~/Aion; aionfs unmount ~/Aion
      aionfs mount --profile work          # mountpoint and settings from config.toml
    """
    import shutil

    from .daemon.mount import MountError, check_mountpoint, is_mounted
    from .daemon.options import MountOptions

    profile = profile_for(profile_name, mountpoint=mountpoint.expanduser() if mountpoint else None,
                       **flags)
    if profile.mountpoint is None:
        raise click.UsageError("no mountpoint: give one (aionfs mount ~/Aion) or set "
                               f"mountpoint in [profiles.{profile.name}] of the config file")
    settings = api_settings(profile)
    store_path = workspace_store(settings, profile.cache_dir)
    if profile.cache_size is None:
        free = shutil.disk_usage(store_path.parent).free
        profile = profile.with_overrides("default", cache_size=min(free // 10, 20 << 30))
    where = profile.mountpoint.absolute()
    try:
        if mkdir and not is_mounted(where):  # a dead mount fails the mkdir's stat
            where.mkdir(parents=True, exist_ok=True)
        check_mountpoint(where)
    except (MountError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
    if not foreground:
        sys.exit(_spawn_daemon(store_path.parent / "aionfs.log"))
    opts = MountOptions(profile, where, store_path)
    sys.exit(_run_mount(settings, opts, ready_fd))


def _run_mount(settings: ApiSettings, opts: object, ready_fd: int | None) -> int:
    import trio

    from .daemon.mount import MountError, serve

    pending = [ready_fd] if ready_fd is not None else []

    def ready(error: str | None) -> None:
        """Tell the waiting parent once: 'ready' or the reason it failed."""
        while pending:
            fd = pending.pop()
            os.write(fd, f"{error or 'ready'}\n".encode())
            os.close(fd)

    try:
        trio.run(serve, settings, opts, ready)
    except MountError as exc:
        ready(f"error: {exc}")
        click.echo(f"aionfs mount: {exc}", err=True)
        return 1
    return 0


def _spawn_daemon(log_path: Path) -> int:
    """Run this same command with --foreground, detached; wait for it to answer."""
    import subprocess

    read_end, write_end = os.pipe()
    args = [a for a in sys.argv[1:]]
    cmd = [sys.executable, "-m", "aionfs", *args, "--foreground", "--ready-fd", str(write_end)]
    with open(log_path, "ab") as logf:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
                                pass_fds=(write_end,), start_new_session=True)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        answer = pipe.readline().strip()
    if answer == "ready":
        click.echo(f"mounted (daemon pid {proc.pid}, log {log_path})")
        return 0
    proc.wait(10)
    reason = answer.removeprefix("error: ") or f"the daemon exited; see {log_path}"
    click.echo(f"aionfs mount: {reason}", err=True)
    return 1


@main.command()
@click.argument("mountpoint", required=False, type=MOUNTPOINT)
@profile_option
@click.option("--timeout", default=30.0, show_default=True,
              help="Seconds to wait for the daemon to exit.")
@click.option("--no-wait", is_flag=True,
              help="Do not wait for pending uploads; they resume at the next mount.")
@click.option("--drain-timeout", default=600.0, show_default=True,
              help="Seconds to wait for pending uploads before unmounting anyway.")
def unmount(mountpoint: Path | None, profile_name: str | None, timeout: float, no_wait: bool,
            drain_timeout: float) -> None:
    """Unmount MOUNTPOINT (default: the profile's) once its uploads are done, and wait
    for the daemon to exit.

    Uploads still pending after --drain-timeout (or with --no-wait) are kept
    in the journal and resume at the next mount.

    \b
    Example:
      aionfs unmount ~/Aion
    """
    from .daemon.mount import MountError
    from .daemon.mount import unmount as do_unmount

    def progress(left: int) -> None:
        if left:
            click.echo(f"waiting for {left} upload{'s' * (left != 1)}… (Ctrl-C unmounts now "
                       "and keeps them for the next mount)", err=True)

    if mountpoint is None:
        mountpoint = profile_for(profile_name).mountpoint
        if mountpoint is None:
            raise click.UsageError("no mountpoint: give one, or set mountpoint in the profile")
    try:
        left = do_unmount(mountpoint.expanduser().absolute(), timeout,
                          drain=0.0 if no_wait else drain_timeout, progress=progress)
    except MountError as exc:
        raise click.ClickException(str(exc)) from None
    if left:
        click.echo(f"{left} uploads were not finished; they resume at the next mount",
                   err=True)


@main.command()
@click.argument("mountpoint", required=False, type=MOUNTPOINT)
@profile_option
@cache_dir_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def status(mountpoint: Path | None, profile_name: str | None, cache_dir: Path | None,
           as_json: bool) -> None:
    """How a mount is doing: API reachability, last sync, uploads, cache, rate budget.

    Asks the running daemon over its control socket; without a running
    mount it shows what the local store knows (the upload queue).

    \b
    Examples:
      aionfs status ~/Aion
      aionfs status --json | jq .uploads
    """
    from .daemon.control import ControlError, call, find_daemon
    from .daemon.status import format_status, offline_status

    if mountpoint is not None:
        daemon = find_daemon(mountpoint=mountpoint.expanduser().absolute())
        if daemon is None:
            raise click.ClickException(f"{mountpoint} is not mounted by aionfs")
        store_path = daemon.store_path
    else:
        profile = profile_for(profile_name, cache_dir=cache_dir)
        store_path = workspace_store(api_settings(profile), profile.cache_dir)
        daemon = find_daemon(store_path=store_path)
    report = None
    if daemon is not None:
        try:
            report = next(m["result"] for m in call(daemon.socket, "status") if "result" in m)
        except (ControlError, StopIteration) as exc:
            click.echo(f"aionfs status: the daemon (pid {daemon.pid}) did not answer: {exc}",
                       err=True)
    if report is None:
        if not store_path.exists():
            raise click.ClickException(f"no metadata store at {store_path}")
        report = offline_status(store_path, daemon.pid if daemon else None)
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        click.echo(format_status(report))


@main.command()
@click.argument("mountpoint", required=False, type=MOUNTPOINT)
@profile_option
@cache_dir_option
@click.option("--timeout", default=600.0, show_default=True, type=click.FloatRange(0),
              help="Seconds to wait for the queue to drain.")
def flush(mountpoint: Path | None, profile_name: str | None, cache_dir: Path | None,
          timeout: float) -> None:
    """Upload everything queued now (skipping the write-back delay), and wait for it.

    Exits 0 once the queue is empty, 1 if uploads are still waiting (for
    the API, or failed: 'aionfs status' says why) when the timeout ends.

    \b
    Example:
      cp scans/*.pdf ~/Aion/Archive/ && aionfs flush ~/Aion
    """
    from .daemon.control import find_daemon

    if mountpoint is not None:
        daemon = find_daemon(mountpoint=mountpoint.expanduser().absolute())
    else:
        profile = profile_for(profile_name, cache_dir=cache_dir)
        daemon = find_daemon(store_path=workspace_store(api_settings(profile), profile.cache_dir))
    if daemon is None:
        raise click.ClickException("no aionfs mount is running (uploads resume when one is)")
    sys.exit(_ask_daemon(daemon, "flush", timeout=timeout))


def _pin(paths: tuple[Path, ...], profile_name: str | None, cache_dir: Path | None,
         pinned: bool) -> None:
    """Mark files (folders: every file below) as pinned in the store of their mount."""
    from .store import Store
    from .store.content_index import ContentIndex

    ids: list[str] = []
    for path in paths:
        targets = [path] if path.is_file() else [
            Path(d) / f for d, _, files in os.walk(path) for f in files]
        for target in targets:
            try:
                ids.append(os.getxattr(target, "user.aion.id").decode())
            except OSError:
                raise click.ClickException(f"{target} is not in an aionfs mount") from None
    profile = profile_for(profile_name, cache_dir=cache_dir)
    path = workspace_store(api_settings(profile), profile.cache_dir)
    store = Store(path)
    try:
        count = ContentIndex(store).pin(ids, pinned)
    finally:
        store.close()
    daemon = _daemon_for(path)
    if pinned and daemon is not None:  # the mount fetches them now, not at its next look
        from .daemon.control import ControlError, call

        try:
            list(call(daemon.socket, "pinned"))
        except ControlError as exc:
            click.echo(f"aionfs pin: the mount was not told ({exc}); it fetches them "
                       "within a minute", err=True)
    click.echo(f"{'pinned' if pinned else 'unpinned'} {count} files"
               + (" (the daemon fetches them in the background)" if pinned else ""))


@main.command()
@click.argument("paths", nargs=-1, required=True,
                type=click.Path(exists=True, path_type=Path))
@profile_option
@cache_dir_option
def pin(paths: tuple[Path, ...], profile_name: str | None, cache_dir: Path | None) -> None:
    """Keep files (or whole folders) of a mount available offline.

    Pinned files are fetched completely and never evicted from the cache.

    \b
    Example:
      aionfs pin ~/Aion/Inspections/2026
    """
    _pin(paths, profile_name, cache_dir, True)


@main.command()
@click.argument("paths", nargs=-1, required=True,
                type=click.Path(exists=True, path_type=Path))
@profile_option
@cache_dir_option
def unpin(paths: tuple[Path, ...], profile_name: str | None, cache_dir: Path | None) -> None:
    """Let pinned files be evicted from the cache again.

    \b
    Example:
      aionfs unpin ~/Aion/Inspections/2026
    """
    _pin(paths, profile_name, cache_dir, False)


@main.command()
@click.argument("directory", required=False,
                type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--to", "to", default=None, metavar="LIBRARY_FOLDER",
              help="Library folder the files go to, e.g. Inspections/Scans (made if missing; "
                   "default: the root).")
@click.option("--tags", default=None, metavar="T1,T2", help="Tags every upload gets.")
@click.option("--delete-after-upload", is_flag=True,
              help="Remove each local file once the workspace has it.")
@click.option("--settle", default=2.0, show_default=True, type=click.FloatRange(0.1),
              help="Seconds a file must stay unchanged (and closed) before it is taken.")
@profile_option
@cache_dir_option
@plan_option
@rpm_option
def watch(directory: Path | None, to: str | None, tags: str | None,
          delete_after_upload: bool, settle: float, profile_name: str | None,
          cache_dir: Path | None, plan: str | None, rpm: int | None) -> None:
    """Upload every file that appears in DIRECTORY (a scanner's or camera's folder), once.

    Files are taken once complete (closed and unchanged for --settle
    seconds); partial downloads (.part, .crdownload), editor scratch files
    and types the workspace refuses are skipped. Subfolders become
    subfolders of the library folder. Restarts neither lose nor repeat an
    upload. While a mount of the workspace runs, the mount does the
    watching; otherwise this command does, until Ctrl-C. Without DIRECTORY
    it runs the profile's [[profiles.NAME.watch]] entries.

    \b
    Examples:
      aionfs watch ~/Scans --to Inspections/Scans --tags scan
      aionfs watch ~/DCIM --to Photos --delete-after-upload
    """
    import trio

    from .config import WatchSpec
    from .watch.standalone import WatchError, run_watch

    profile = profile_for(profile_name, cache_dir=cache_dir, plan=plan, rpm=rpm)
    if directory is not None:
        specs: tuple[WatchSpec, ...] = (WatchSpec(
            dir=directory.absolute(), to=(to or "").strip("/"),
            tags=tuple(t.strip() for t in (tags or "").split(",") if t.strip()),
            delete_after_upload=delete_after_upload),)
    elif to or tags or delete_after_upload:
        raise click.UsageError("--to, --tags and --delete-after-upload need a DIRECTORY")
    else:
        specs = profile.watch
        if not specs:
            raise click.UsageError(f"no DIRECTORY given and profile {profile.name!r} has no "
                                   "watch entries")
    settings = api_settings(profile)
    store_path = workspace_store(settings, profile.cache_dir)
    daemon = _daemon_for(store_path)
    if daemon is not None:
        codes = [_ask_daemon(daemon, "watch", dir=str(s.dir), to=s.to, tags=list(s.tags),
                             delete_after_upload=s.delete_after_upload) for s in specs]
        sys.exit(max(codes))
    for s in specs:
        click.echo(f"watching {s.dir} → /{s.to} (Ctrl-C stops; queued uploads resume at the "
                   "next start)", err=True)
    try:
        trio.run(functools.partial(run_watch, settings, store_path, specs,
                                   unlimited=profile.rpm == 0, settle=settle))
    except WatchError as exc:
        raise click.ClickException(str(exc)) from None


@main.command()
@click.option("--mountpoint", type=click.Path(file_okay=False, path_type=Path),
              default=Path("~/Aion"), show_default=True, help="Where to mount the demo.")
@click.option("--data", "data_dir", type=click.Path(file_okay=False, path_type=Path),
              default=None, help="Emulator state (default: ~/.local/share/aionfs/demo).")
def demo(mountpoint: Path, data_dir: Path | None) -> None:
    """Run the emulator with its demo library and mount it, until Ctrl-C.

    Everything stays on this machine: no key or network is needed.

    \b
    Example:
      aionfs demo --mountpoint ~/Aion
    """
    from .democli import run_demo

    sys.exit(run_demo(mountpoint.expanduser().absolute(), data_dir))


@main.command()
@click.option("--data", "data_dir", type=click.Path(file_okay=False, path_type=Path),
              required=True, help="Directory for the emulator's state (kept across restarts).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8765, show_default=True, type=click.IntRange(0, 65535),
              help="Port to listen on (0: any free port).")
@click.option("--plan", type=click.Choice(list(PLAN_LIMITS)),
              default="free", show_default=True, help="Plan of the default workspace.")
@click.option("--rpm", type=click.IntRange(0), default=None,
              help="Requests per minute instead of the plan's (0: unlimited).")
@click.option("--demo", is_flag=True, help="Seed a demo library (once per data dir).")
@click.option("--demo-images", type=click.IntRange(1), default=None, hidden=True)
@click.option("--faults", default=None, metavar="SPEC",
              help="Inject faults, e.g. '500:0.1,reset:0.05,429:0.02,latency:20ms'.")
@click.option("--seed", default=0, show_default=True, help="Seed for faults and the demo.")
@click.option("--processing-delay", default=2.0, show_default=True, type=click.FloatRange(0),
              help="Seconds until a new upload's AI processing completes.")
@click.option("--semantic-latency", default=0.3, show_default=True, type=click.FloatRange(0),
              help="Seconds a semantic search takes.")
@click.option("--json", "json_banner", is_flag=True,
              help="Print the base URL and key as one JSON line (for scripts).")
def emulator(data_dir: Path, host: str, port: int, plan: str, rpm: int | None, demo: bool,
             demo_images: int | None, faults: str | None, seed: int, processing_delay: float,
             semantic_latency: float, json_banner: bool) -> None:
    """Run a local emulator of the Aionvision API.

    A real HTTP server implementing the part of the API aionfs uses, with
    per-plan rate limits, presigned downloads, real color extraction and
    deterministic stand-ins for the AI. It prints its base URL and the API
    key of its default workspace, and serves until Ctrl-C.

    \b
    Example:
      aionfs emulator --data ~/.local/share/aionfs/emu --demo --port 8765
      # then, in another shell, the two export lines it prints
    """
    import trio

    from .emulator.faults import Faults, FaultSpecError
    from .emulator.server import ServerOptions, run

    try:
        Faults.parse(faults)
    except FaultSpecError as exc:
        raise click.BadParameter(str(exc), param_hint="--faults") from None
    opts = ServerOptions(data_dir=data_dir, host=host, port=port, plan=plan, rpm=rpm,
                         demo=demo, demo_images=demo_images, faults=faults, seed=seed,
                         processing_delay=processing_delay, semantic_latency=semantic_latency,
                         json_banner=json_banner)
    trio.run(run, opts)


for _command in SETUP_COMMANDS:  # login, config, doctor, service
    main.add_command(_command)

if __name__ == "__main__":
    main()
