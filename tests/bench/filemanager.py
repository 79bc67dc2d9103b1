"""A real file manager opening a folder of 200 photos on the mount, seeded vs not.

PCManFM under Xvfb, with its own HOME; the photos weigh what a camera's
JPEGs weigh (1600x1200 with grain), and the emulator adds 50 ms to each
request, as a real network would. Not seeded: the mount runs with
--no-thumbnails and the file manager draws thumbnails by reading the photos
through the mount. Seeded: the folder was listed first and the mount wrote
the thumbnails from one small variant each. Figures: bytes and requests the
emulator served while the window opened (and, for the seeded run, what the
seeding itself cost), and the seconds from starting the file manager until
its window shows the photos (its icon area has settled, with the thousands
of colours of photos rather than a generic icon).
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

from tests import desktop

from .mount import Row, _mount, _unmount

PHOTOS = 200


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


def _open(emu: Any, key: str, display: str, tmp: Path, seeded: bool) -> dict[str, float]:
    env = desktop.desktop_env(tmp / ("seeded" if seeded else "plain"), display)
    where = tmp / "mnt"
    pid, mount_env = _mount(emu, key, where, str(tmp / ("c1" if seeded else "c2")),
                            *([] if seeded else ["--no-thumbnails"]))
    figures: dict[str, float] = {}
    try:
        folder = where / "Site"
        start = len(emu.requests(key))
        os.listdir(folder)
        if seeded:
            from aionfs.thumbs.standard import file_uri, is_current, thumbnail_path

            thumbs = Path(env["XDG_CACHE_HOME"]) / "thumbnails"
            deadline = time.monotonic() + 300
            names = os.listdir(folder)
            while time.monotonic() < deadline and not all(
                    is_current(thumbnail_path(thumbs, "normal", file_uri(folder / n)),
                               file_uri(folder / n), int(os.stat(folder / n).st_mtime))
                    for n in names):
                time.sleep(0.2)
        seeding = emu.requests(key)[start:]
        figures["seed_requests"], figures["seed_bytes"] = _served(seeding)
        mark = len(emu.requests(key))
        emu.set_faults(key, "latency:50ms")
        with desktop.file_manager(folder, env, tmp / "pcmanfm.log"):
            started = time.monotonic()
            samples: list[tuple[float, int]] = []
            while True:  # (seconds, colour variety) until the window has settled
                samples.append((time.monotonic() - started,
                                desktop.variety(desktop.screenshot(display))))
                elapsed, now = samples[-1]
                recent = [c for t, c in samples if t >= elapsed - 3]
                if elapsed > 120 or (elapsed > 4 and now > 2000 and
                                     max(recent) - min(recent) <= 0.02 * now):
                    break
                time.sleep(0.2)
            settled = samples[-1][1]
            figures["seconds"] = next(t for t, c in samples if c >= 0.98 * settled)
            time.sleep(2)  # what it still reads once the window looks done
        figures["requests"], figures["bytes"] = _served(emu.requests(key)[mark:])
    finally:
        emu.set_faults(key, "")
        _unmount(where, pid)
    return figures


def bench_file_manager(row: Row, emu: Any) -> None:
    if not desktop.available():
        print("file manager                       skipped: needs Xvfb and pcmanfm")
        return
    key = emu.new_tenant(plan="enterprise", rpm=0)
    _upload(emu, key)
    with tempfile.TemporaryDirectory() as t, desktop.xvfb() as display:
        tmp = Path(t)
        saved = os.environ.get("XDG_CACHE_HOME")
        try:
            # the daemon writes thumbnails where the file manager looks: one user
            os.environ["XDG_CACHE_HOME"] = str(tmp / "seeded" / ".cache")
            seeded = _open(emu, key, display, tmp, True)
            os.environ["XDG_CACHE_HOME"] = str(tmp / "plain" / ".cache")
            plain = _open(emu, key, display, tmp, False)
        finally:
            if saved is None:
                os.environ.pop("XDG_CACHE_HOME", None)
            else:
                os.environ["XDG_CACHE_HOME"] = saved
    row(f"fm open {PHOTOS} photos: bytes", seeded["bytes"] / 1e3, "kB", plain["bytes"] / 1e3,
        "not seeded", higher_is_better=False)
    row(f"fm open {PHOTOS} photos: requests", seeded["requests"], "requests",
        plain["requests"], "not seeded", higher_is_better=False)
    row(f"fm open {PHOTOS} photos: to pictures", seeded["seconds"], "s", plain["seconds"],
        "not seeded", higher_is_better=False)
    row(f"fm seeding {PHOTOS} photos: bytes", seeded["seed_bytes"] / 1e3, "kB",
        plain["bytes"] / 1e3, "fm reading originals", higher_is_better=False)
    row(f"fm seeding {PHOTOS} photos: requests", seeded["seed_requests"], "requests",
        plain["requests"], "fm reading originals", higher_is_better=False)
