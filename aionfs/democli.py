"""`aionfs demo`: the emulator with its demo library, mounted, until Ctrl-C.

Both are started from this one (the emulator, then `aionfs mount`, whose
daemon detaches), each in a session of its own: the terminal's Ctrl-C (a
SIGINT to the whole foreground process group) reaches only this process,
which stops them in order. The first Ctrl-C (or SIGTERM) unmounts once the uploads of
what was saved in the mount are done, while the emulator still answers;
a second one unmounts at once (what is left resumes at the next `aionfs
demo`); then the emulator stops.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import platformdirs

TIPS = """
The demo library is mounted at {mnt}

  ls {mnt}
  ls -l "{mnt}/Inspections/2025/Site A"
  getfattr -d "{mnt}/Welcome to the demo library.md"     # AI description, tags (apt install attr)
  sha256sum "{mnt}/Projects/Bridge/Reports/"*              # bytes fetched on demand
  ls {mnt}/tags {mnt}/colors/earth_tone {mnt}/by-date       # the virtual folders
  ls "{mnt}/search/rust on poles"                          # a semantic search, as a folder
  cp ~/Pictures/*.jpg {mnt}/Inspections/                   # uploaded in the background
  aionfs status {mnt}                                      # the upload queue
  xdg-open {mnt}                                          # in a file manager

In another shell, to use the aionfs commands on this library:

  export AIONVISION_BASE_URL={base}
  export AIONVISION_API_KEY={key}

Press Ctrl-C to unmount and stop.
"""


def run_demo(mountpoint: Path, data_dir: Path | None) -> int:
    data = data_dir or Path(platformdirs.user_data_dir("aionfs")) / "demo"
    data.mkdir(parents=True, exist_ok=True)
    mountpoint.mkdir(parents=True, exist_ok=True)
    print(f"starting the emulator (state in {data}; the first start seeds the library)…",
          flush=True)
    emulator: subprocess.Popen[str] | None = None
    mounter: subprocess.Popen[bytes] | None = None
    try:
        emulator = _start_emulator(data, _emulator_port(data))
        line = _banner(emulator)
        if not line:  # its port taken since the last start? Another one, remembered
            _stop(emulator)
            (data / PORT_FILE).unlink(missing_ok=True)
            emulator = _start_emulator(data, _emulator_port(data))
            line = _banner(emulator)
        if not line:
            print("aionfs demo: the emulator did not start", file=sys.stderr)
            return 1
        banner = json.loads(line)
        env = {**os.environ, "AIONVISION_BASE_URL": banner["base_url"],
               "AIONVISION_API_KEY": banner["api_key"]}
        mounter = subprocess.Popen(
            [sys.executable, "-m", "aionfs", "mount", str(mountpoint), "--plan", "professional",
             "--poll-interval", "10", "--cache-dir", str(data / "client-cache")], env=env,
            start_new_session=True)
        if mounter.wait() != 0:
            return 1
        return _serve_until_stopped(mountpoint, emulator, TIPS.format(
            mnt=mountpoint, base=banner["base_url"], key=banner["api_key"]))
    except KeyboardInterrupt:  # Ctrl-C while starting
        print("stopping…", file=sys.stderr, flush=True)
        return 130
    finally:
        with _signals_ignored():  # the cleanup itself is short, and must not be cut off
            if mounter is not None and mounter.poll() is None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    mounter.wait(60)  # it mounts or fails soon: then it is undone
            _unmount(mountpoint, drain=0.0)
            if emulator is not None:
                _stop(emulator)


#: the emulator's port, kept in the data dir
PORT_FILE = "demo-port"


def _emulator_port(data: Path) -> int:
    """The port the demo's emulator listens on: the same at every start of a data dir,
    because the mount's cache (with its queue of uploads not done yet) is named after
    the API's URL: a new port would leave them behind. Picked free at the first start."""
    saved = data / PORT_FILE
    with contextlib.suppress(OSError, ValueError):
        return int(saved.read_text())
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    saved.write_text(f"{port}\n")
    return port


def _start_emulator(data: Path, port: int) -> subprocess.Popen[str]:
    """The emulator, in a session of its own: the terminal's Ctrl-C is not for it."""
    return subprocess.Popen(
        [sys.executable, "-m", "aionfs", "--log-level", "warning", "emulator", "--data",
         str(data), "--demo", "--port", str(port), "--json", "--plan", "professional",
         "--processing-delay", "1"], stdout=subprocess.PIPE, text=True,
        start_new_session=True)


def _banner(emulator: subprocess.Popen[str]) -> str:
    """Its JSON banner line, once it has seeded the library ("" if it did not start)."""
    assert emulator.stdout is not None
    return emulator.stdout.readline()


def _serve_until_stopped(mountpoint: Path, emulator: subprocess.Popen[str], tips: str) -> int:
    """Print the tips, wait for Ctrl-C (or SIGTERM), then unmount, waiting for uploads;
    a second signal unmounts without waiting. The exit status."""
    from .daemon.mount import is_mounted

    signals = {"count": 0}

    def on_signal(signum: int, frame: FrameType | None) -> None:
        signals["count"] += 1
        if signals["count"] > 1:
            raise KeyboardInterrupt  # stops the wait for uploads (see mount.unmount)

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    print(tips, flush=True)  # "Press Ctrl-C": from now on it is handled here
    while not signals["count"] and emulator.poll() is None:
        if not is_mounted(mountpoint):  # unmounted from elsewhere
            print("the demo library was unmounted", file=sys.stderr, flush=True)
            return 0
        time.sleep(0.2)
    if emulator.poll() is not None:
        print("aionfs demo: the emulator stopped", file=sys.stderr, flush=True)
        return 1
    print("unmounting… (Ctrl-C again to unmount without waiting for uploads)",
          file=sys.stderr, flush=True)
    with contextlib.suppress(KeyboardInterrupt):  # a second signal, past the wait: at once
        _unmount(mountpoint, drain=600.0)
    return 0


def _unmount(mountpoint: Path, drain: float) -> None:
    """Unmount if mounted, waiting up to `drain` seconds for pending uploads (a Ctrl-C
    ends the wait)."""
    from .daemon.mount import MountError, is_mounted, unmount

    def progress(left: int) -> None:
        if left:
            print(f"waiting for {left} upload{'s' * (left != 1)}… (Ctrl-C unmounts now and "
                  "keeps them for the next start)", file=sys.stderr, flush=True)

    if not is_mounted(mountpoint):
        return
    try:
        left = unmount(mountpoint, timeout=30.0, drain=drain, progress=progress)
    except MountError as exc:
        print(f"aionfs demo: {exc}", file=sys.stderr, flush=True)
        return
    if left:
        print(f"{left} upload{'s' * (left != 1)} not finished: they resume at the next "
              "'aionfs demo'", file=sys.stderr, flush=True)


def _stop(emulator: subprocess.Popen[str]) -> None:
    if emulator.poll() is None:
        emulator.terminate()
        try:
            emulator.wait(15)
        except subprocess.TimeoutExpired:
            emulator.kill()
            emulator.wait(5)
    if emulator.stdout is not None:
        emulator.stdout.close()


@contextlib.contextmanager
def _signals_ignored() -> Iterator[None]:
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT,
                                                                     signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
