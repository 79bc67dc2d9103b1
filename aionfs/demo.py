"""`aionfs demo`: the emulator with its demo library, mounted, until Ctrl-C.

Both run as child processes of this one (the emulator, then the mount
daemon); Ctrl-C or SIGTERM unmounts and stops the emulator.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

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
    emulator = subprocess.Popen(
        [sys.executable, "-m", "aionfs", "--log-level", "warning", "emulator", "--data",
         str(data), "--demo", "--port", "0", "--json", "--plan", "professional",
         "--processing-delay", "1"], stdout=subprocess.PIPE, text=True)
    assert emulator.stdout is not None
    line = emulator.stdout.readline()
    if not line:
        print("aionfs demo: the emulator did not start", file=sys.stderr)
        return 1
    banner = json.loads(line)
    env = {**os.environ, "AIONVISION_BASE_URL": banner["base_url"],
           "AIONVISION_API_KEY": banner["api_key"]}
    mounted = subprocess.run(
        [sys.executable, "-m", "aionfs", "mount", str(mountpoint), "--plan", "professional",
         "--poll-interval", "10", "--cache-dir", str(data / "client-cache")], env=env)
    if mounted.returncode != 0:
        emulator.terminate()
        emulator.wait(10)
        return 1
    print(TIPS.format(mnt=mountpoint, base=banner["base_url"], key=banner["api_key"]),
          flush=True)
    stop = {"now": False}

    def on_signal(signum: int, frame: object) -> None:
        stop["now"] = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        while not stop["now"] and emulator.poll() is None:
            time.sleep(0.5)
    finally:
        print("unmounting…", flush=True)
        subprocess.run([sys.executable, "-m", "aionfs", "unmount", str(mountpoint)], env=env)
        emulator.terminate()
        emulator.wait(15)
        emulator.stdout.close()
    return 0

