"""Real file managers opening a folder of 200 photos on the mount, seeded vs not.

Each file manager Debian 12 provides here (PCManFM, Thunar with tumblerd,
Nautilus, Dolphin with KIO's thumbnail workers) under Xvfb, with its own HOME,
opening the folder for the first time on a fresh mount, then again after the
mount was unmounted and mounted anew (the same caches); the photos weigh what
a camera's JPEGs weigh (1600x1200 with grain), and the emulator adds 50 ms to
each request, as a real network would. Not seeded: the mount runs with
--no-thumbnails and the file manager draws thumbnails by reading the photos
through the mount. Seeded: the mount writes the thumbnails from one small
variant each (or the listing's presigned URL) while the file manager's
opening of the folder waits. Figures: bytes and requests the emulator served
while the window opened, and the seconds from starting the file manager until
its window shows the photos (the screen has settled, with the thousands of
colours of photos rather than a generic icon).
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from tests import desktop

from .mount import Row, _mount, _unmount

PHOTOS = 200
#: the whole screen: each file manager's window has its own size and layout
SCREEN = (0, 0, 1280, 900)


def _upload(emu: Any, key: str) -> None:
    import trio

    from aionfs.api import AionClient, ApiSettings
    from aionfs.api.client import UploadItem
    from tests.test_filemanager import photo

    async def go() -> None:
        settings = ApiSettings.from_env(api_key=key, base_url=emu.base_url, environ={},
                                        plan="enterprise")
        async with AionClient(settings, unlimited=True) as c:
            folder = await c.create_folder("Site")
            for start in range(0, PHOTOS, 100):
                _, results = await c.upload_batch([UploadItem(
                    f"DSC_{i:04}.jpg", photo(i, (1600, 1200), grain=True), "image/jpeg")
                                                   for i in range(start, start + 100)])
                await c.move_files([r.image_id for r in results if r.image_id], folder.id)

    trio.run(go)


def _served(entries: list[dict[str, Any]]) -> tuple[int, int]:
    return len(entries), sum(int(e.get("bytes") or 0) for e in entries)


def _measure(emu: Any, key: str, folder: Path, env: dict[str, str], log: Path,
             app: Callable[..., AbstractContextManager[None]]) -> dict[str, float]:
    """One opening of the folder on a fresh screen (an old window's pixels would stay
    on the framebuffer): requests and bytes served, seconds to pictures."""
    mark = len(emu.requests(key))
    emu.set_faults(key, "latency:50ms")
    try:
        with desktop.xvfb() as display, app(folder, {**env, "DISPLAY": display}, log):
            started = time.monotonic()
            samples: list[tuple[float, int]] = []
            while True:  # (seconds, colour variety) until the window has settled
                samples.append((time.monotonic() - started,
                                desktop.variety(desktop.screenshot(display), SCREEN)))
                elapsed, now = samples[-1]
                recent = [c for t, c in samples if t >= elapsed - 3]
                if elapsed > 120 or (elapsed > 4 and now > 2000 and
                                     max(recent) - min(recent) <= 0.02 * now):
                    break
                time.sleep(0.2)
            settled = samples[-1][1]
            seconds = next(t for t, c in samples if c >= 0.98 * settled)
            time.sleep(2)  # what it still reads once the window looks done
    finally:
        emu.set_faults(key, "")
    requests, served = _served(emu.requests(key)[mark:])
    return {"seconds": seconds, "requests": requests, "bytes": served}


def _open(emu: Any, key: str, tmp: Path, name: str, seeded: bool
          ) -> list[dict[str, float]]:
    """The first opening of the folder on a fresh mount, then one after a remount."""
    app = desktop.FILE_MANAGERS[name][0]
    home = tmp / f"{name}-{'seeded' if seeded else 'plain'}"
    env = desktop.desktop_env(home, "")
    where, cache = tmp / "mnt", str(home / "aionfs")
    args = ["--thumbnail-wait", "60"] if seeded else ["--no-thumbnails"]
    saved = os.environ.get("XDG_CACHE_HOME")
    # the daemon writes thumbnails where the file manager looks: one user
    os.environ["XDG_CACHE_HOME"] = env["XDG_CACHE_HOME"]
    try:
        figures = []
        for i in range(2):
            pid, _env = _mount(emu, key, where, cache, *args)
            try:
                figures.append(_measure(emu, key, where / "Site", env, home / f"{i}.log",
                                        app))
            finally:
                _unmount(where, pid)
        return figures
    finally:
        if saved is None:
            os.environ.pop("XDG_CACHE_HOME", None)
        else:
            os.environ["XDG_CACHE_HOME"] = saved


def bench_file_manager(row: Row, emu: Any) -> None:
    if not desktop.available():
        print("file manager                       skipped: needs Xvfb and pcmanfm")
        return
    key = emu.new_tenant(plan="enterprise", rpm=0)
    _upload(emu, key)
    with tempfile.TemporaryDirectory() as t:
        for name, (_app, installed) in desktop.FILE_MANAGERS.items():
            if not installed():
                print(f"fm {name:<31} skipped: not installed (make testdeps installs it)")
                continue
            seeded = _open(emu, key, Path(t), name, True)
            plain = _open(emu, key, Path(t), name, False)
            for i, when in enumerate(("first open", "after remount")):
                ours, base = seeded[i], plain[i]
                row(f"fm {name} {when}: bytes", ours["bytes"] / 1e3, "kB",
                    base["bytes"] / 1e3, "not seeded", higher_is_better=False)
                row(f"fm {name} {when}: requests", ours["requests"], "requests",
                    base["requests"], "not seeded", higher_is_better=False)
                row(f"fm {name} {when}: to pictures", ours["seconds"], "s",
                    base["seconds"], "not seeded", higher_is_better=False)
