"""`aionfs doctor`: every check a mount depends on, each failure with its fix.

Checks run in the order a mount needs them (FUSE, the mountpoint, the key,
the API, the plan and its rate limit, the cache's disk); a failing check does
not stop the others, so one run names every problem. The plan is the one a
mount would use: given, else asked of the service as the mount asks
(daemon/plan.py `ask_service`), each shown with where it came from.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import trio

from .api import AionClient, ApiSettings, Priority
from .api.errors import ApiError, AuthError, RateLimited
from .api.settings import PLAN_LIMITS, SettingsError
from .config import Profile
from .credentials import CredentialsError, find_key
from .daemon.control import find_daemon
from .daemon.plan import ServicePlan, ask_service, given_origin

LOW_SPACE = 1 << 30


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""
    #: the API check's settings, with the plan it settled on (what `--api` probes with)
    settings: ApiSettings | None = None


def check_fuse() -> Check:
    if not os.path.exists("/dev/fuse"):
        return Check("FUSE", False, "/dev/fuse is missing",
                     "install fuse3 (apt install fuse3) and load the module: modprobe fuse")
    try:
        fd = os.open("/dev/fuse", os.O_RDWR)
        os.close(fd)
    except OSError as exc:
        return Check("FUSE", False, f"/dev/fuse cannot be opened: {exc.strerror}",
                     "check its permissions (crw-rw-rw-) or, in a container, pass --device "
                     "/dev/fuse")
    helper = shutil.which("fusermount3")
    if helper is None:
        return Check("FUSE", False, "fusermount3 is not installed", "apt install fuse3")
    if os.getuid() != 0 and not os.stat(helper).st_mode & stat.S_ISUID:
        return Check("FUSE", False, f"{helper} is not setuid root: users cannot mount",
                     f"reinstall fuse3, or: sudo chmod u+s {helper}")
    return Check("FUSE", True, f"/dev/fuse usable, {helper}")


def check_mountpoint(profile: Profile) -> Check:
    where = profile.mountpoint
    if where is None:
        return Check("mountpoint", False, f"none set for profile {profile.name!r}",
                     f"give one to 'aionfs mount DIR', or set mountpoint in "
                     f"[profiles.{profile.name}]")
    daemon = find_daemon(mountpoint=where)
    if daemon is not None:
        return Check("mountpoint", True, f"{where} is mounted (daemon pid {daemon.pid})")
    try:
        if os.path.ismount(where):
            return Check("mountpoint", False, f"{where} is already a mountpoint of something "
                         "else", f"unmount it (fusermount3 -u {where}) or choose another")
        if not where.exists():
            return Check("mountpoint", False, f"{where} does not exist", f"mkdir -p {where}")
        if not where.is_dir():
            return Check("mountpoint", False, f"{where} is not a directory",
                         "choose a directory")
        if any(where.iterdir()):
            return Check("mountpoint", False, f"{where} is not empty",
                         "empty it, or choose an empty directory")
    except OSError as exc:
        return Check("mountpoint", False, f"{where}: {exc.strerror}",
                     f"a dead mount? fusermount3 -u -z {where}")
    return Check("mountpoint", True, f"{where} is an empty directory")


def check_key(profile: Profile) -> tuple[Check, ApiSettings | None]:
    try:
        found = find_key(profile.name)
    except CredentialsError as exc:
        return Check("API key", False, str(exc), "see the message"), None
    if found is None:
        login = "aionfs login" + ("" if profile.name == "default" else
                                  f" --profile {profile.name}")
        return Check("API key", False, "no key", f"run '{login}' or set AIONVISION_API_KEY"), None
    key, origin = found
    try:
        settings = ApiSettings(api_key=key, base_url=profile.base_url, plan=profile.plan,
                               requests_per_minute=profile.rpm or None, max_attempts=1,
                               timeout=10)
    except SettingsError as exc:
        return Check("API key", False, str(exc), "fix base_url in the profile"), None
    return Check("API key", True, f"{key.masked()} from {origin}"), settings


@dataclass
class Probe:
    seconds: float  # how long GET /folders took
    folders: int
    asked: ServicePlan | None  # the service's plan, when the profile gives none


async def _probe(settings: ApiSettings, ask_plan: bool) -> Probe:
    async with AionClient(settings, unlimited=True) as client:
        started = time.monotonic()
        folders = await client.folder_tree(priority=Priority.INTERACTIVE)
        seconds = time.monotonic() - started
        # the mount's own question (daemon/plan.py), so doctor shows the plan it would use
        asked = await ask_service(client) if ask_plan else None
        return Probe(seconds, len(folders), asked)


def check_api(settings: ApiSettings, profile: Profile) -> Check:
    """Reachability, the key, and the plan a mount would work within (and why)."""
    given = profile.source.get("plan")
    try:
        probe = trio.run(_probe, settings, given is None)
    except AuthError:
        return Check("API", False, f"{settings.base_url} refused the key",
                     "create a new key in the Aionvision dashboard, then 'aionfs login'")
    except RateLimited as exc:
        return Check("API", False, f"rate limited right now (retry after {exc.retry_after}s)",
                     "wait a minute; if it persists, set the profile's plan to yours")
    except ApiError as exc:
        return Check("API", False, f"{settings.base_url} is not reachable: {exc}",
                     "check the network (and AIONVISION_BASE_URL); a mount still serves "
                     "what is cached")
    assumed = False
    if given is not None:
        plan = f"plan {settings.plan} (from {given_origin(given)})"
    elif probe.asked is not None and probe.asked.name is not None:
        settings = dataclasses.replace(settings, plan=probe.asked.name)
        plan = f"plan {settings.plan} (from the service)"
    else:
        assumed = True
        why = probe.asked.why_not if probe.asked is not None else "not asked"
        plan = f"plan unknown to the service ({why}); assuming {settings.plan}"
    rpm = settings.rate_per_minute
    limit = (f"{rpm} requests/minute" if profile.rpm is None else
             f"{rpm} requests/minute (rpm set)" if profile.rpm else "no rate limit (rpm = 0)")
    detail = (f"{settings.base_url} answered in {probe.seconds * 1000:.0f} ms "
              f"({probe.folders} folders); {plan}: {limit}")
    if assumed and profile.rpm is None and rpm == PLAN_LIMITS["free"][0]:
        detail += " (set plan in the profile if yours is larger: sync goes faster)"
    return Check("API", True, detail, settings=settings)


def check_cache(profile: Profile, store_dir: Callable[[], Path] | None) -> Check:
    root = profile.cache_dir or (store_dir().parent if store_dir else None)
    if root is None:
        return Check("cache", True, "not checked (no key to name the store)")
    probe = root
    while not probe.exists():
        probe = probe.parent
    if not os.access(probe, os.W_OK):
        return Check("cache", False, f"{probe} is not writable", "choose another cache_dir")
    free = shutil.disk_usage(probe).free
    want = profile.cache_size or min(free // 10, 20 << 30)
    detail = f"{root}: {free / (1 << 30):.1f} GiB free, cache cap {want / (1 << 30):.1f} GiB"
    if free < LOW_SPACE:
        return Check("cache", False, detail, "free some space, or set cache_dir on a disk "
                     "with room")
    if profile.cache_size and profile.cache_size > free:
        return Check("cache", False, detail, "lower cache_size: the disk cannot hold it")
    return Check("cache", True, detail)


def run_checks(profile: Profile, store_dir: Callable[[ApiSettings], Path]) -> list[Check]:
    checks = [check_fuse(), check_mountpoint(profile)]
    key, settings = check_key(profile)
    checks.append(key)
    if settings is not None:
        checks.append(check_api(settings, profile))
        checks.append(check_cache(profile, lambda: store_dir(settings)))
    else:
        checks.append(check_cache(profile, None))
    return checks
