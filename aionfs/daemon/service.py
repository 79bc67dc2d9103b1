"""systemd user units: the shipped files, and `aionfs service install/uninstall`.

The units run `aionfs mount --foreground` as `Type=notify` (see notify.py):
READY once the mount answers, a watchdog that restarts a hung daemon, and
`ExecStop` draining uploads before unmounting. The key is never in a unit:
the daemon reads it from the profile's key file (`aionfs login`).

Hardening is what a FUSE mount allows. Anything that gives the service its
own mount namespace (PrivateTmp, ProtectSystem, ProtectHome, PrivateDevices,
ReadOnlyPaths, ...) would hide the mount from the user's session, and
NoNewPrivileges would stop the setuid `fusermount3` that mounts for an
unprivileged user; so the unit restricts what works without either. There
is no ordering after the network: a user manager has no network-online
target, and the mount needs none (it serves the cache and catches up).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import platformdirs

UNIT_NAME = "aionfs.service"
TEMPLATE_NAME = "aionfs@.service"

_UNIT = """\
# aionfs: the Aionvision library as a drive, mounted for this user.
# {origin}
[Unit]
Description=aionfs: Aionvision library mounted {what}

[Service]
Type=notify
NotifyAccess=main
ExecStart={exe} mount --foreground --mkdir{profile_arg}
ExecStop={exe} unmount{profile_arg} --drain-timeout 60
ExecReload=/bin/kill -HUP $MAINPID
Restart=on-failure
RestartSec=10
WatchdogSec=60
TimeoutStartSec=90
TimeoutStopSec=120
KillMode=mixed
UMask=0077
LockPersonality=yes
RestrictRealtime=yes
SystemCallArchitectures=native

[Install]
WantedBy=default.target
"""


def unit_dir() -> Path:
    return Path(platformdirs.user_config_dir("systemd")) / "user"


def aionfs_executable() -> str:
    """The absolute path of this aionfs (systemd needs one; PATH differs there)."""
    candidate = Path(sys.argv[0]) if sys.argv and sys.argv[0].endswith("aionfs") else None
    if candidate is not None and candidate.exists():
        return str(candidate.absolute())
    found = shutil.which("aionfs")
    if found:
        return str(Path(found).absolute())
    return str(Path(sys.executable).with_name("aionfs"))


def render_unit(exe: str, *, template: bool, profile: str | None = None,
                origin: str = "Written by 'aionfs service install'.") -> str:
    if template:
        what, profile_arg = "for profile %i", " --profile %i"
    elif profile and profile != "default":
        what, profile_arg = f"for profile {profile}", f" --profile {profile}"
    else:
        what, profile_arg = "at its profile's mountpoint", ""
    return _UNIT.format(exe=exe, what=what, profile_arg=profile_arg, origin=origin)


def unit_name(profile: str | None) -> str:
    return UNIT_NAME if not profile or profile == "default" else f"aionfs@{profile}.service"


def install(profile: str | None, exe: str | None = None) -> list[Path]:
    """Write the unit (the template too, for a named profile); returns what was written."""
    exe = exe or aionfs_executable()
    target = unit_dir()
    target.mkdir(parents=True, exist_ok=True)
    written = []
    if not profile or profile == "default":
        path = target / UNIT_NAME
        path.write_text(render_unit(exe, template=False))
        written.append(path)
    else:
        path = target / TEMPLATE_NAME
        path.write_text(render_unit(exe, template=True))
        written.append(path)
    return written


def uninstall(profile: str | None) -> list[Path]:
    """Remove the unit; the template stays while another profile's instance is enabled."""
    target = unit_dir()
    names = [UNIT_NAME] if not profile or profile == "default" else [TEMPLATE_NAME]
    if names == [TEMPLATE_NAME] and any(
            p.name != f"aionfs@{profile}.service"
            for p in (target / "default.target.wants").glob("aionfs@*.service")):
        return []
    removed = []
    for name in names:
        path = target / name
        if path.exists():
            path.unlink()
            removed.append(path)
    return removed


SHIPPED_ORIGIN = "Shipped in systemd/; 'aionfs service install' writes it with this aionfs's path."


def write_shipped(directory: Path) -> None:
    """The files in the repository's systemd/ (`make units`); a test keeps them current."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, template in ((UNIT_NAME, False), (TEMPLATE_NAME, True)):
        (directory / name).write_text(render_unit("%h/.local/bin/aionfs", template=template,
                                                  origin=SHIPPED_ORIGIN))


if __name__ == "__main__":
    write_shipped(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("systemd"))


# -- the GTK bookmarks (the sidebar of Nautilus, Thunar, PCManFM) ---------------------------

def bookmarks_file() -> Path:
    return Path(platformdirs.user_config_dir("gtk-3.0")) / "bookmarks"


def add_bookmark(mountpoint: Path, label: str = "Aion") -> bool:
    """One `URI label` line, added once; False if it was there already."""
    from ..thumbs.standard import file_uri

    path = bookmarks_file()
    uri = file_uri(mountpoint)
    lines = path.read_text().splitlines() if path.exists() else []
    if any(line.split(" ", 1)[0] == uri for line in lines):
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join([*lines, f"{uri} {label}"]) + "\n")
    return True


def remove_bookmark(mountpoint: Path) -> bool:
    from ..thumbs.standard import file_uri

    path = bookmarks_file()
    if not path.exists():
        return False
    uri = file_uri(mountpoint)
    lines = path.read_text().splitlines()
    kept = [line for line in lines if line.split(" ", 1)[0] != uri]
    if kept == lines:
        return False
    path.write_text("".join(f"{line}\n" for line in kept))
    return True
