"""The `aionfs` command line.

Subcommands import their machinery lazily, so `aionfs --help` is instant.
Errors a user can fix print one line and exit non-zero; tracebacks are for
bugs only.

Exit codes: 0 success, 1 runtime failure, 2 usage or configuration error.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from . import __version__

if TYPE_CHECKING:
    from .api import ApiSettings

LOG_LEVELS = ("debug", "info", "warning", "error")


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


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="aionfs")
@click.option("--log-level", type=click.Choice(LOG_LEVELS), default="info", show_default=True,
              help="How much to log to stderr.")
def main(log_level: str) -> None:
    """aionfs: your Aionvision library as a drive.

    \b
    Examples:
      aionfs emulator --data /tmp/emu --demo     # a local API with a demo library
      aionfs sync --full                         # fill the local metadata store
      aionfs ls -l Inspections                   # list a library path, offline

    The API key is read from AIONVISION_API_KEY (never from the command
    line, where other users could read it); AIONVISION_BASE_URL points at
    another server, such as the emulator.
    """
    _setup_logging(log_level)


def _settings(plan: str | None = None, rpm: int | None = None) -> ApiSettings:
    from .api import ApiSettings, SettingsError

    try:
        return ApiSettings.from_env(plan=plan or os.environ.get("AIONFS_PLAN", "free"),
                                    requests_per_minute=rpm)
    except SettingsError as exc:
        raise click.UsageError(str(exc)) from None


def _store_path(settings: ApiSettings, cache_dir: Path | None) -> Path:
    """One store per workspace: named by a hash of the base URL and key (never the key)."""
    import hashlib

    import platformdirs

    root = cache_dir or Path(platformdirs.user_cache_dir("aionfs"))
    digest = hashlib.sha256(
        f"{settings.base_url}\0{settings.api_key.reveal()}".encode()).hexdigest()[:16]
    path = root / digest
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path / "metadata.sqlite3"


cache_dir_option = click.option(
    "--cache-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
    help="Where the metadata store and content cache live (default: the XDG cache dir).")
rpm_option = click.option(
    "--rpm", type=click.IntRange(0), default=None,
    help="Requests per minute instead of the plan's (0: no limit, for servers without "
         "one such as the emulator).")
plan_option = click.option(
    "--plan", type=click.Choice(["free", "starter", "professional", "enterprise"]),
    default=None, help="Your plan (sets the request budget); default $AIONFS_PLAN or free.")


@main.command()
@cache_dir_option
@plan_option
@rpm_option
@click.option("--full", is_flag=True, help="List everything, not just what changed.")
@click.option("--allow-mass-delete", is_flag=True,
              help="Apply a sync even if it deletes more than half of the library.")
def sync(cache_dir: Path | None, plan: str | None, rpm: int | None, full: bool,
         allow_mass_delete: bool) -> None:
    """Bring the local metadata store up to date with the workspace.

    The first run (or --full) lists every folder; later runs poll for
    what changed. Progress goes to the terminal; a summary ends the run.

    \b
    Example:
      aionfs sync --full
    """
    from .synccli import run_sync

    settings = _settings(plan, rpm or None)
    sys.exit(run_sync(settings, _store_path(settings, cache_dir), full=full,
                      allow_mass_delete=allow_mass_delete, unlimited=rpm == 0))


@main.command(name="ls")
@cache_dir_option
@click.option("-l", "long", is_flag=True, help="Long listing: kind, size, date.")
@click.argument("path", default="/")
def ls_command(cache_dir: Path | None, long: bool, path: str) -> None:
    """List a library path from the local store (the names the mount shows).

    Works offline; run 'aionfs sync' first to fill the store.

    \b
    Example:
      aionfs ls -l "Inspections/2026"
    """
    from .synccli import run_ls

    settings = _settings()
    sys.exit(run_ls(_store_path(settings, cache_dir), path, long=long))


def _parse_size(text: str) -> int:
    units = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
    raw = text.strip().lower().removesuffix("ib").removesuffix("b")
    unit = raw[-1] if raw and raw[-1] in units else ""
    try:
        return int(float(raw[: len(raw) - len(unit)]) * units[unit])
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a size like 500M or 10G") from None


@main.command()
@click.argument("mountpoint", type=click.Path(file_okay=False, path_type=Path))
@cache_dir_option
@plan_option
@rpm_option
@click.option("--foreground", "-f", is_flag=True, help="Stay in the foreground (systemd).")
@click.option("--read-only", is_flag=True,
              help="Mount read-only: every write gets EROFS, and file managers watching a "
                   "folder no longer see remote changes live.")
@click.option("--write-back-delay", default=3.0, show_default=True, type=click.FloatRange(0),
              help="Seconds a closed file waits before upload (a file rewritten meanwhile "
                   "is uploaded once).")
@click.option("--cache-size", default=None, metavar="SIZE",
              help="Content cache cap, e.g. 2G (default: 10% of the free space, at most 20G).")
@click.option("--poll-interval", default=60.0, show_default=True, type=click.FloatRange(0.1),
              help="Seconds between checks for remote changes.")
@click.option("--revalidate-interval", default=900.0, show_default=True,
              type=click.FloatRange(0.1),
              help="Seconds after which a listed folder is listed again (renames, retags).")
@click.option("--read-timeout", default=5.0, show_default=True, type=click.FloatRange(0.1),
              help="Seconds a read waits for bytes not yet cached before failing (EIO).")
@click.option("--rank-names", is_flag=True,
              help="Prefix search results with their rank (001 name.jpg), so that file "
                   "managers sorting by name show the best match first.")
@click.option("--hide-views", is_flag=True,
              help="Leave search/, text/, colors/, tags/ and by-date/ out of the root "
                   "listing (they stay reachable by path).")
@click.option("--query-ttl", default=600.0, show_default=True, type=click.FloatRange(1),
              help="Seconds a query's results are served before being asked again.")
@click.option("--ready-fd", type=int, default=None, hidden=True)
def mount(mountpoint: Path, cache_dir: Path | None, plan: str | None, rpm: int | None,
          foreground: bool, read_only: bool, cache_size: str | None, poll_interval: float,
          revalidate_interval: float, read_timeout: float, write_back_delay: float,
          rank_names: bool, hide_views: bool, query_ttl: float, ready_fd: int | None) -> None:
    """Mount the library at MOUNTPOINT.

    Without --foreground it returns once the mount answers (or fails with
    a one-line reason). The cached library stays browsable when the API is
    unreachable; reads of bytes not cached then fail with EIO.

    \b
    Example:
      mkdir -p ~/Aion && aionfs mount ~/Aion
      ls ~/Aion; aionfs unmount ~/Aion
    """
    import shutil

    from .daemon.mount import MountError, MountOptions, check_mountpoint

    settings = _settings(plan, rpm or None)
    store_path = _store_path(settings, cache_dir)
    if cache_size is None:
        free = shutil.disk_usage(store_path.parent).free
        size = min(free // 10, 20 << 30)
    else:
        size = _parse_size(cache_size)
    mountpoint = mountpoint.expanduser().absolute()
    try:
        check_mountpoint(mountpoint)
    except MountError as exc:
        raise click.ClickException(str(exc)) from None
    if not foreground:
        sys.exit(_spawn_daemon(store_path.parent / "aionfs.log"))
    opts = MountOptions(mountpoint=mountpoint, store_path=store_path, cache_size=size,
                        poll_interval=poll_interval, read_timeout=read_timeout,
                        revalidate_interval=revalidate_interval,
                        read_only=read_only, unlimited=rpm == 0, rank_names=rank_names,
                        hide_views=hide_views, query_ttl=query_ttl,
                        write_back_delay=write_back_delay)
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
@click.argument("mountpoint", type=click.Path(file_okay=False, path_type=Path))
@click.option("--timeout", default=30.0, show_default=True,
              help="Seconds to wait for the daemon to exit.")
@click.option("--no-wait", is_flag=True,
              help="Do not wait for pending uploads; they resume at the next mount.")
@click.option("--drain-timeout", default=600.0, show_default=True,
              help="Seconds to wait for pending uploads before unmounting anyway.")
def unmount(mountpoint: Path, timeout: float, no_wait: bool, drain_timeout: float) -> None:
    """Unmount MOUNTPOINT once its uploads are done, and wait for the daemon to exit.

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

    try:
        left = do_unmount(mountpoint.expanduser().absolute(), timeout,
                          drain=0.0 if no_wait else drain_timeout, progress=progress)
    except MountError as exc:
        raise click.ClickException(str(exc)) from None
    if left:
        click.echo(f"{left} uploads were not finished; they resume at the next mount",
                   err=True)


@main.command()
@click.argument("mountpoint", required=False, type=click.Path(file_okay=False, path_type=Path))
@cache_dir_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def status(mountpoint: Path | None, cache_dir: Path | None, as_json: bool) -> None:
    """The upload queue of a mount: pending, uploading and failed files, with reasons.

    \b
    Example:
      aionfs status ~/Aion
    """
    from .daemon.mount import mounted_store
    from .store import Store
    from .upload import Journal

    if mountpoint is not None:
        pid, store_path = mounted_store(mountpoint.expanduser().absolute())
        if store_path is None:
            raise click.ClickException(f"{mountpoint} is not mounted by aionfs")
    else:
        pid, store_path = None, _store_path(_settings(None, None), cache_dir)
    if not store_path.exists():
        raise click.ClickException(f"no metadata store at {store_path}")
    store = Store(store_path)
    try:
        files = Journal(store, store_path.parent / "staging").all()
    finally:
        store.close()
    queue = [{"name": f.name, "folder": f.folder_key or None, "state": f.state,
              "size": f.size, "error": f.last_error, "attempts": f.attempts}
             for f in files if not (f.scratch and f.state == "local")]
    counts = {state: sum(1 for q in queue if q["state"] == state)
              for state in ("local", "pending", "uploading", "failed")}
    if as_json:
        click.echo(json.dumps({"mounted": pid is not None, "pid": pid, "uploads": counts,
                               "queue": queue}, indent=2))
        return
    click.echo(f"mount: {f'running (pid {pid})' if pid else 'not running'}")
    click.echo("uploads: " + ", ".join(f"{n} {s}" for s, n in counts.items()))
    for q in queue:
        reason = f"  ({q['error']})" if q["state"] == "failed" and q["error"] else ""
        click.echo(f"  {q['state']:<9} {q['name']}{reason}")


def _pin(paths: tuple[Path, ...], cache_dir: Path | None, pinned: bool) -> None:
    """Mark files (folders: every file below) as pinned in the store of their mount."""
    from .cache.content import pin_files
    from .store import Store

    ids: list[str] = []
    for path in paths:
        targets = [path] if path.is_file() else [
            Path(d) / f for d, _, files in os.walk(path) for f in files]
        for target in targets:
            try:
                ids.append(os.getxattr(target, "user.aion.id").decode())
            except OSError:
                raise click.ClickException(f"{target} is not in an aionfs mount") from None
    settings = _settings()
    store = Store(_store_path(settings, cache_dir))
    try:
        count = pin_files(store, ids, pinned)
    finally:
        store.close()
    click.echo(f"{'pinned' if pinned else 'unpinned'} {count} files"
               + (" (the daemon fetches them in the background)" if pinned else ""))


@main.command()
@click.argument("paths", nargs=-1, required=True,
                type=click.Path(exists=True, path_type=Path))
@cache_dir_option
def pin(paths: tuple[Path, ...], cache_dir: Path | None) -> None:
    """Keep files (or whole folders) of a mount available offline.

    Pinned files are fetched completely and never evicted from the cache.

    \b
    Example:
      aionfs pin ~/Aion/Inspections/2026
    """
    _pin(paths, cache_dir, True)


@main.command()
@click.argument("paths", nargs=-1, required=True,
                type=click.Path(exists=True, path_type=Path))
@cache_dir_option
def unpin(paths: tuple[Path, ...], cache_dir: Path | None) -> None:
    """Let pinned files be evicted from the cache again.

    \b
    Example:
      aionfs unpin ~/Aion/Inspections/2026
    """
    _pin(paths, cache_dir, False)


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
    from .demo import run_demo

    sys.exit(run_demo(mountpoint.expanduser().absolute(), data_dir))


@main.command()
@click.option("--data", "data_dir", type=click.Path(file_okay=False, path_type=Path),
              required=True, help="Directory for the emulator's state (kept across restarts).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8765, show_default=True, type=click.IntRange(0, 65535),
              help="Port to listen on (0: any free port).")
@click.option("--plan", type=click.Choice(["free", "starter", "professional", "enterprise"]),
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


if __name__ == "__main__":
    main()
