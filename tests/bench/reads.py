"""Cold reads of a folder of photos: no API request per file, at the storage's speed.

500 photos of about 1 MB on the emulator (unlimited rate), a fresh mount, the
first crawl over; then every photo read once in sequence, as `cat` or
`tar -c` does. Figures: the folder's throughput beside a plain httpx download
of the same objects in sequence (one keep-alive client, the URLs the listing
gives, no API request either), the time to the first 64 KiB of each cold file
(p50 and max) beside the same for the plain download, and the API requests
the reads cost (floor 0, docs/requests.md).
"""

from __future__ import annotations

import contextlib
import io
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import trio
from PIL import Image

from aionfs.api import AionClient, ApiSettings, UploadItem

from .mount import Row, _drop_caches, _mount, _read_through, _unmount

PHOTOS = 500


def _photo(i: int) -> bytes:
    rng = random.Random(i)
    # 1600×1200, about 1 MB (0.9–1.1): noise enlarged, as detailed as a photo
    img = Image.frombytes("RGB", (600, 450), rng.randbytes(600 * 450 * 3)).resize((1600, 1200))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=85)
    return buf.getvalue()


async def _upload(emu: Any, key: str, n: int) -> None:
    settings = ApiSettings.from_env(api_key=key, base_url=emu.base_url, environ={},
                                    plan="enterprise")
    async with AionClient(settings, unlimited=True) as c:
        folder = await c.create_folder("Photos")
        for at in range(0, n, 100):
            items = [UploadItem(f"P{i:04}.jpg", _photo(i), "image/jpeg")
                     for i in range(at, min(n, at + 100))]
            _, results = await c.upload_batch(items)
            await c.move_files([r.image_id for r in results if r.image_id], folder.id)


def _listed(folder: Path, n: int) -> list[Path]:
    """The folder's files once the fresh mount shows all `n` (each stat'ed once)."""
    paths: list[Path] = []
    for _ in range(600):
        try:
            paths = sorted(folder.iterdir())
            if len(paths) == n:
                break
        except OSError:
            pass
        time.sleep(0.1)
    for p in paths:
        p.stat()
    return paths


def read_in_order(paths: list[Path]) -> tuple[list[float], int, float]:
    """Each file read through once, in this order, as `tar -c` does: the seconds to
    each one's first 64 KiB, the bytes, and the seconds for all."""
    firsts, total = [], 0
    t0 = time.perf_counter()
    for p in paths:
        first, _ = _read_through(p)
        firsts.append(first)
        total += p.stat().st_size
    return firsts, total, time.perf_counter() - t0


def _plain(emu: Any, key: str, into: Path | None = None) -> tuple[list[float], float, int]:
    """The baseline: the listing's URLs downloaded in sequence with plain httpx, the
    bytes dropped, or (`into`) each saved as a file there, as a download is (and as
    a cache must: it keeps what it fetched)."""
    with httpx.Client(base_url=emu.base_url + "/",
                      headers={"Authorization": f"Bearer {key}"}) as api:
        urls, offset = [], 0
        while True:
            page = api.get("user-files", params={"limit": 100, "offset": offset}).json()
            urls += [f["full_url"] for f in page["files"]]
            offset += 100
            if not page["has_more"]:
                break
    firsts, total = [], 0
    t0 = time.perf_counter()
    with httpx.Client() as blob:
        for i, url in enumerate(urls):
            t = time.perf_counter()
            with blob.stream("GET", url) as resp, \
                    (open(into / str(i), "wb") if into else contextlib.nullcontext()) as out:
                first = True
                for chunk in resp.iter_bytes(65536):
                    if first:
                        firsts.append(time.perf_counter() - t)
                        first = False
                    if out is not None:
                        out.write(chunk)
                    total += len(chunk)
    return firsts, time.perf_counter() - t0, total


def bench_cold_folder(row: Row, emu: Any, n: int = PHOTOS, rounds: int = 3) -> None:
    """The folder read through a fresh mount, beside the plain downloads, `rounds`
    times alternating: single runs of the same code on these 2 cores range over
    0.72-0.93x of the plain download, wider than the gap to the goal, so the
    figures are the rounds' medians (each round's ratio printed too)."""
    key = emu.new_tenant(plan="enterprise", rpm=0)
    trio.run(_upload, emu, key, n)
    ours_s: list[float] = []
    dropped_s: list[float] = []
    kept_s: list[float] = []
    firsts: list[float] = []
    plain_firsts: list[float] = []
    api = 0
    total = plain_total = 0
    with tempfile.TemporaryDirectory() as tmp:
        mnt = Path(tmp) / "mnt"
        folder = mnt / "Photos"
        for i in range(rounds):
            pid, _env = _mount(emu, key, mnt, str(Path(tmp) / f"cache{i}"))
            try:
                paths = _listed(folder, n)
                _drop_caches()
                mark = len(emu.requests(key))
                got, total, secs = read_in_order(paths)
                api += sum(1 for e in emu.requests(key, mark) if e["kind"] == "api")
            finally:
                _unmount(mnt, pid)
            firsts += got
            ours_s.append(secs)
            _drop_caches()
            got, secs, plain_total = _plain(emu, key)
            plain_firsts += got
            dropped_s.append(secs)
            with tempfile.TemporaryDirectory() as saved:
                _drop_caches()
                kept_s.append(_plain(emu, key, into=Path(saved))[1])
            print(f"  (round {i + 1}: {total / 1e6 / ours_s[-1]:.0f} MB/s; plain "
                  f"{plain_total / 1e6 / dropped_s[-1]:.0f} dropped, "
                  f"{plain_total / 1e6 / kept_s[-1]:.0f} saved: "
                  f"{dropped_s[-1] / ours_s[-1]:.2f}x, {kept_s[-1] / ours_s[-1]:.2f}x)",
                  flush=True)
        # single cold files, in random order (nothing to fetch ahead): a fresh mount
        pid, _env = _mount(emu, key, mnt, str(Path(tmp) / "cache-singles"))
        try:
            shuffled = _listed(folder, n)
            random.Random(3).shuffle(shuffled)
            _drop_caches()
            singles = [_read_through(p)[0] for p in shuffled[:100]]
        finally:
            _unmount(mnt, pid)
    mb = total / 1e6
    ours = statistics.median(ours_s)
    row(f"cold read of {n} photos ({mb:.0f} MB), median of {rounds}", mb / ours, "MB/s",
        plain_total / 1e6 / statistics.median(dropped_s),
        "plain httpx in sequence, bytes dropped")
    row("  the same", mb / ours, "MB/s", plain_total / 1e6 / statistics.median(kept_s),
        "plain httpx in sequence, saved as files")
    row("  first 64 KiB of a cold file, p50", statistics.median(firsts) * 1000, "ms",
        statistics.median(plain_firsts) * 1000, "plain httpx", higher_is_better=False)
    row("  first 64 KiB of a cold file, max", max(firsts) * 1000, "ms",
        max(plain_firsts) * 1000, "plain httpx", higher_is_better=False)
    row("  API requests for the reads", api, "requests", 0, "floor", higher_is_better=False)
    row("first 64 KiB, single cold files, p50", statistics.median(singles) * 1000, "ms",
        statistics.median(plain_firsts) * 1000, "plain httpx", higher_is_better=False)
    row("first 64 KiB, single cold files, max", max(singles) * 1000, "ms",
        max(plain_firsts) * 1000, "plain httpx", higher_is_better=False)
