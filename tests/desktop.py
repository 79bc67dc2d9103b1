"""A real desktop for tests and benchmarks: Xvfb, a real file manager (pcmanfm), screenshots.

Every process here is started in a session of its own and ended with its
whole group at the end (Xvfb, dbus-run-session, pcmanfm and what they start):
nothing but what we started is killed.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from PIL import Image, ImageGrab

#: pcmanfm's window as its config below sets it, and the part that shows the icons
WINDOW = (1000, 760)
ICONS = (170, 80, 980, 720)  # left, top, right, bottom: right of the side pane


def available() -> bool:
    return all(shutil.which(t) for t in ("Xvfb", "pcmanfm", "dbus-run-session"))


#: where Debian 12 puts the thumbnailer daemon Thunar asks (D-Bus activated)
TUMBLERD = Path("/usr/lib/x86_64-linux-gnu/tumbler-1/tumblerd")


def has_thunar() -> bool:
    return shutil.which("thunar") is not None and TUMBLERD.exists()


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """End the session's whole group: its leader, and what outlives a SIGTERM to it
    (pcmanfm, busy saving its settings, stayed behind once its D-Bus session was gone)."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
    started = time.monotonic()
    while time.monotonic() - started < 5:  # (the group is ours alone: its own session)
        try:  # (bounded: a killed member stays visible as a zombie until reaped)
            os.killpg(proc.pid, signal.SIGKILL if time.monotonic() - started > 3 else 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)


@contextmanager
def xvfb() -> Iterator[str]:
    """A virtual screen; yields its DISPLAY."""
    read, write = os.pipe()
    # -noreset: no server reset when the last client leaves (a client arriving during
    # one cannot connect), as between two file-manager runs on one screen
    proc = subprocess.Popen(["Xvfb", "-displayfd", str(write), "-screen", "0", "1280x900x24",
                             "-nolisten", "tcp", "-noreset"], pass_fds=(write,), start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write)
    try:
        with os.fdopen(read) as f:
            number = f.readline().strip()
        assert number, "Xvfb did not start"
        yield f":{number}"
    finally:
        _stop(proc)


def desktop_env(home: Path, display: str, *, thumbnails: bool = True) -> dict[str, str]:
    """A user's environment of its own: HOME, XDG dirs, and pcmanfm's settings."""
    config = home / ".config"
    (config / "libfm").mkdir(parents=True, exist_ok=True)
    (config / "libfm" / "libfm.conf").write_text(
        "[config]\nthumbnail_local=1\nthumbnail_max=8192\n\n[ui]\nbig_icon_size=96\n"
        f"thumbnail_size=128\nshow_thumbnail={int(thumbnails)}\n")
    (config / "pcmanfm" / "default").mkdir(parents=True, exist_ok=True)
    (config / "pcmanfm" / "default" / "pcmanfm.conf").write_text(
        f"[ui]\nwin_width={WINDOW[0]}\nwin_height={WINDOW[1]}\nsplitter_pos=150\n"
        "side_pane_mode=1\nview_mode=0\nsort_type=0\nsort_by=2\n")
    return {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(config),
            "XDG_CACHE_HOME": str(home / ".cache"), "XDG_DATA_HOME": str(home / ".local/share"),
            "DISPLAY": display, "NO_AT_BRIDGE": "1", "GTK_A11Y": "none"}


@contextmanager
def _in_session(command: list[str], env: dict[str, str], log: Path) -> Iterator[None]:
    """`command` in a D-Bus session of its own (and its process group, stopped after)."""
    with open(log, "ab") as out:
        proc = subprocess.Popen(["dbus-run-session", "--", *command], env=env, stdout=out,
                                stderr=out, start_new_session=True)
    try:
        yield
    finally:
        _stop(proc)


def file_manager(folder: Path, env: dict[str, str], log: Path) -> AbstractContextManager[None]:
    """pcmanfm showing `folder`."""
    return _in_session(["pcmanfm", "--no-desktop", str(folder)], env, log)


def thunar(folder: Path, env: dict[str, str], log: Path) -> AbstractContextManager[None]:
    """Thunar showing `folder` (tumblerd is started by D-Bus activation in its session,
    with the same XDG_CACHE_HOME)."""
    return _in_session(["thunar", str(folder)], env, log)


def has_nautilus() -> bool:
    return shutil.which("nautilus") is not None


def nautilus(folder: Path, env: dict[str, str], log: Path) -> AbstractContextManager[None]:
    """Nautilus (GNOME Files) showing `folder`; its settings in a key file under the
    test's HOME, with thumbnails of every file (its default is local files only, and
    what counts as local differs between versions)."""
    script = ("gsettings set org.gnome.nautilus.preferences show-image-thumbnails "
              "'always' 2>/dev/null; exec nautilus --new-window " + shlex.quote(str(folder)))
    return _in_session(["sh", "-c", script], {**env, "GSETTINGS_BACKEND": "keyfile"}, log)


def has_dolphin() -> bool:
    return shutil.which("dolphin") is not None


def dolphin(folder: Path, env: dict[str, str], log: Path) -> AbstractContextManager[None]:
    """Dolphin (KDE) showing `folder` (its previews come from KIO's thumbnail workers,
    which it starts)."""
    return _in_session(["dolphin", "--new-window", str(folder)],
                       {**env, "QT_QPA_PLATFORM": "xcb"}, log)


#: the file managers the tests and benchmarks drive: how to show a folder in each,
#: and whether this machine has it (make test installs them)
FILE_MANAGERS: dict[str, tuple[Callable[[Path, dict[str, str], Path],
                                        AbstractContextManager[None]],
                               Callable[[], bool]]] = {
    "pcmanfm": (file_manager, available),
    "thunar": (thunar, has_thunar),
    "nautilus": (nautilus, has_nautilus),
    "dolphin": (dolphin, has_dolphin),
}


def screenshot(display: str) -> Image.Image:
    return ImageGrab.grab(xdisplay=display)


def variety(img: Image.Image, box: tuple[int, int, int, int] = ICONS) -> int:
    """Distinct colours (5 bits a channel) in `box` (pcmanfm's icon area). Thumbnails
    of 200 different photos bring thousands; the theme's generic image icon, the
    same in every cell, a few hundred, however colourful it is."""
    colours = img.crop(box).convert("RGB").getcolors(1 << 24) or []
    return len({(r >> 3, g >> 3, b >> 3) for _, (r, g, b) in colours})


def wait_for_picture(display: str, predicate: object, timeout: float = 60) -> tuple[
        Image.Image, float]:
    """Screenshots until `predicate(img)`; the last one and the seconds it took."""
    started = time.monotonic()
    while True:
        img = screenshot(display)
        if predicate(img) or time.monotonic() - started > timeout:  # type: ignore[operator]
            return img, time.monotonic() - started
        time.sleep(0.25)
