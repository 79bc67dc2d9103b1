"""`make bench`: figures for the client and the emulator, each beside a baseline.

    python -m tests.bench [--quick] [--requests | --reads | --writes | --file-managers
                           | --scale [FILES] | --floor]

0. floor      (tests/bench/floor.py) what any FUSE filesystem costs here: a pipe round
              trip between two processes (two CPUs, one CPU), a FUSE round trip of a
              pyfuse3 filesystem that does nothing, and `cp -r` of 2,000 notes and of
              500 photos into it (plain, and with the kernel's writeback cache) beside
              the native copy (also printed first by --reads and --writes)

1. decode     list pages decoded into typed models (msgspec) vs json.loads into dicts
2. overhead   one API request through AionClient vs a raw httpx call, same emulator
3. listing    emulator list pages of 100 (demo library): pages/s and records/s
4. download   a 20 MB file through the client (302 + storage) vs reading the blob file
5. ingest     file records into the metadata store vs a bare executemany of the same rows
6. full sync  of a 100,000-file workspace (`aionfs sync --full`, unlimited rate): time,
              requests, peak RSS vs the same list requests made with raw httpx
7. readdir    entries/s listing a 10,000-file folder from the store vs os.scandir of a
              native directory with as many files
8. mount      (tests/bench/mount.py) cold and cached reads of a 50 MB file, random
              reads, and `ls -lR` / `find` / os.walk+stat of the 100,000-file library,
              cold and warm, against native copies; the daemon's peak RSS; a cold
              folder of 500 photos read through beside plain httpx, and beside rclone
              mount (tests/bench/reads.py, rclone.py)
9. file mgr   (tests/bench/filemanager.py) PCManFM, Thunar, Nautilus and Dolphin under
              Xvfb opening 200 photos on a fresh mount and after a remount: bytes,
              requests and seconds to pictures, seeded vs not seeded
10. requests  (tests/bench/requests.py) a new user's session on FREE and PROFESSIONAL:
              API requests per action beside each floor (docs/requests.md), errors, and
              the FREE session's wall time beside the time its requests need at 10/min

11. scale     (tests/bench/scale.py) a library of 200,000 files (`--scale N` alone: N files;
              the million-file run is in docs/store-and-sync.md): a fresh mount's first
              listings while its crawl runs, `sync --full` (records/s, requests, peak
              RSS), cold and warm `find`, the daemon's RSS after the find, 1,000 reads
              and a minute of polling, the store's bytes per file

Each line prints the figure, the baseline measured in the same run, and the ratio.
"""

from __future__ import annotations

import hashlib
import io
import json
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import trio
from PIL import Image

from aionfs.api import AionClient, ApiSettings
from aionfs.api.client import decode
from aionfs.api.models import FilePage
from tests.conftest import start_emulator, stop_emulator

QUICK = "--quick" in sys.argv


def row(name: str, figure: float, unit: str, baseline: float, base_name: str,
        higher_is_better: bool = True) -> None:
    ratio = figure / baseline if baseline else float("nan")
    better = "" if higher_is_better else " (lower is better)"
    print(f"{name:<34} {figure:>12,.1f} {unit:<10} baseline {base_name}: {baseline:>12,.1f}"
          f"   ratio {ratio:.2f}{better}")


def synthetic_pages(template: dict, pages: int) -> list[bytes]:
    """Pages shaped exactly like the emulator's, with fresh ids and titles."""
    rng = random.Random(1)
    out = []
    for _ in range(pages):
        files = []
        for item in template["files"]:
            f = dict(item)
            f["id"] = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            f["title"] = f"Photo {rng.randrange(10**6)}"
            files.append(f)
        while len(files) < 100:
            files.extend(files[: 100 - len(files)])
        out.append(json.dumps({"files": files[:100], "total_count": 100000,
                               "has_more": True}).encode())
    return out


def bench_decode(template: dict) -> None:
    pages = synthetic_pages(template, 200 if QUICK else 1000)
    records = 100 * len(pages)
    t = time.perf_counter()
    for body in pages:
        decode(body, FilePage)
    typed = records / (time.perf_counter() - t)
    t = time.perf_counter()
    for body in pages:
        json.loads(body)
    plain = records / (time.perf_counter() - t)
    row("decode file records (typed)", typed, "records/s", plain, "json.loads dicts")
    assert typed >= 50_000, f"decode rate {typed:,.0f}/s is below the 50,000/s goal"


async def bench_overhead(emu_base: str, key: str) -> None:
    n = 200 if QUICK else 1000
    settings = ApiSettings.from_env(api_key=key, base_url=emu_base, environ={},
                                    plan="enterprise")
    async with AionClient(settings, unlimited=True) as c:
        await c.folder_tree()
        t = time.perf_counter()
        for _ in range(n):
            await c.folder_tree()
        ours = (time.perf_counter() - t) / n * 1000
    async with httpx.AsyncClient(base_url=emu_base + "/",
                                 headers={"Authorization": f"Bearer {key}"}) as raw:
        await raw.get("folders")
        t = time.perf_counter()
        for _ in range(n):
            (await raw.get("folders")).raise_for_status()
        base = (time.perf_counter() - t) / n * 1000
    row("GET /folders via AionClient", ours, "ms/req", base, "raw httpx",
        higher_is_better=False)


async def bench_listing(emu_base: str, key: str) -> dict:
    settings = ApiSettings.from_env(api_key=key, base_url=emu_base, environ={},
                                    plan="enterprise")
    async with AionClient(settings, unlimited=True) as c:
        t = time.perf_counter()
        pages = records = 0
        rounds = 3 if QUICK else 10
        for _ in range(rounds):
            async for page in c.iter_file_pages(page_size=100):
                pages += 1
                records += len(page.files)
        elapsed = time.perf_counter() - t
    async with httpx.AsyncClient(base_url=emu_base + "/",
                                 headers={"Authorization": f"Bearer {key}"}) as raw:
        t = time.perf_counter()
        for _ in range(rounds):
            (await raw.get("folders")).raise_for_status()
        small = (time.perf_counter() - t) / rounds
        template = (await raw.get("user-files", params={"limit": 100})).json()
    row("emulator list pages (100 each)", pages / elapsed, "pages/s", 1 / small,
        "GET /folders")
    print(f"{'':<34} {records / elapsed:>12,.0f} records/s")
    return template  # type: ignore[no-any-return]


async def bench_download(emu_base: str, key: str, data_dir: Path) -> None:
    side = 1200 if QUICK else 2600
    img = Image.frombytes("RGB", (side, side), random.Random(3).randbytes(side * side * 3))
    buf = io.BytesIO()
    img.save(buf, "PNG", compress_level=0)
    data = buf.getvalue()
    mb = len(data) / 1e6
    settings = ApiSettings.from_env(api_key=key, base_url=emu_base, environ={},
                                    plan="enterprise")
    async with AionClient(settings, unlimited=True) as c:
        up = await c.upload_file(data, "noise.png")
        t = time.perf_counter()
        got = await c.download_bytes(up.image_id)
        ours = mb / (time.perf_counter() - t)
        url = (await c.presigned_url(up.image_id)).url
    assert got == data
    async with httpx.AsyncClient() as raw:
        t = time.perf_counter()
        body = (await raw.get(url)).content
        plain = mb / (time.perf_counter() - t)
    assert body == data
    row(f"download {mb:.0f} MB via client", ours, "MB/s", plain, "raw httpx GET")
    blob = data_dir / "blobs" / hashlib.sha256(data).hexdigest()[:2] / hashlib.sha256(
        data).hexdigest()
    t = time.perf_counter()
    direct = await trio.Path(blob).read_bytes()
    disk = mb / (time.perf_counter() - t)
    assert direct == data
    row(f"emulator storage {mb:.0f} MB", plain, "MB/s", disk, "read blob file")


def bench_ingest(template: dict) -> None:
    import sqlite3

    from aionfs.api.models import FilePage
    from aionfs.store import Store
    from aionfs.store.db import FILE_COLUMNS, file_row

    n = 20_000 if QUICK else 100_000
    pages = synthetic_pages(template, n // 100)
    rows = [file_row(f) for body in pages for f in decode(body, FilePage).files]
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "m.sqlite3")
        t = time.perf_counter()
        for i in range(0, len(rows), 1000):  # sync applies a listing per transaction
            with store.transaction():
                store.upsert_files(rows[i:i + 1000])
        ours = len(rows) / (time.perf_counter() - t)
        store.close()
        db = sqlite3.connect(Path(tmp) / "bare.sqlite3", isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"CREATE TABLE t ({', '.join(FILE_COLUMNS)})")
        t = time.perf_counter()
        for i in range(0, len(rows), 1000):
            db.execute("BEGIN")
            db.executemany(f"INSERT INTO t VALUES ({','.join('?' * len(FILE_COLUMNS))})",
                           [tuple(r[c] for c in FILE_COLUMNS) for r in rows[i:i + 1000]])
            db.execute("COMMIT")
        bare = len(rows) / (time.perf_counter() - t)
        db.close()
    row("ingest into the store (1k/tx)", ours, "records/s", bare,
        "executemany, no indexes")


async def bench_full_sync(emu: Any, cache: str) -> str:
    import os
    n = 20_000 if QUICK else 100_000
    folders = 20 if QUICK else 100
    key = emu.new_tenant(plan="enterprise", rpm=0)
    t = time.perf_counter()
    emu.bulk(key, files=n, folders=folders)
    print(f"  (seeded {n:,} files in {folders} folders in {time.perf_counter() - t:.1f}s)")
    env = {**os.environ, "AIONVISION_API_KEY": key, "AIONVISION_BASE_URL": emu.base_url,
           "AIONFS_PLAN": "enterprise"}
    def run_sync() -> tuple[str, float]:
        """The sync as a child process; its peak RSS read from /proc (VmHWM).

        Not from rusage: ru_maxrss would count the pages of this (large)
        benchmark process that the child shares between fork and exec.
        """
        import re
        import subprocess

        with tempfile.TemporaryFile() as out:
            proc = subprocess.Popen([sys.executable, "-m", "aionfs", "sync", "--full", "--rpm",
                                     "0", "--cache-dir", cache], env=env, stdout=out,
                                    stderr=subprocess.DEVNULL)
            peak = 0
            while proc.poll() is None:
                try:
                    status = Path(f"/proc/{proc.pid}/status").read_text()
                    peak = max(peak, int(re.search(r"VmHWM:\s+(\d+)", status)[1]))  # type: ignore[index]
                except (OSError, TypeError):
                    pass
                time.sleep(0.05)
            assert proc.returncode == 0
            out.seek(0)
            return out.read().decode(), peak / 1024

    t = time.perf_counter()
    stdout, rss_mb = await trio.to_thread.run_sync(run_sync)
    ours = time.perf_counter() - t
    requests = int(stdout.split(" with ")[1].split(" requests")[0])
    async with httpx.AsyncClient(base_url=emu.base_url + "/",
                                 headers={"Authorization": f"Bearer {key}"}) as raw:
        t = time.perf_counter()
        tree = (await raw.get("folders")).json()["folders"]
        made = 1
        for query in [{"folder_id": f["id"]} for f in tree] + [{}]:
            offset = 0
            while True:
                page = (await raw.get("user-files", params={
                    **query, "limit": 100, "offset": offset, "sort_by": "created_at",
                    "sort_order": "asc"})).json()
                made += 1
                offset += len(page["files"])
                if not page["has_more"]:
                    break
        base = time.perf_counter() - t
    row(f"full sync of {n:,} files", ours, "s", base, f"{made} raw list requests",
        higher_is_better=False)
    print(f"{'':<34} {requests:>12,} requests, peak RSS {rss_mb:,.0f} MB (goal < 60 s, "
          "< 200 MB)")
    return key


def bench_readdir() -> None:
    import os

    from aionfs.store import Store

    n = 10_000
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "m.sqlite3")
        with store.transaction():
            store.upsert_folders([{"id": "big", "name": "Big", "parent_id": None,
                                   "file_count": n, "created_at": "2025", "updated_at": "2025"}])
            rows = []
            for i in range(n):
                rows.append({"id": f"f{i:05d}", "title": f"Photo {i}", "filename": f"{i}.jpg",
                             "size": 1000 + i, "media_type": "image", "format": "jpeg",
                             "content_type": "image/jpeg", "width": 1, "height": 1,
                             "tags": "[]", "description": None, "visible_text": None,
                             "description_status": None, "variant_status": None,
                             "page_count": None, "source_url": None, "domain": None,
                             "created_at": f"2025-01-01T00:00:{i:05d}", "content_created_at": None})
            store.upsert_files(rows)
            store.place_files([r["id"] for r in rows], "big")
            store.rename_dir("big")
        inode = store.dir_inode("big")
        rounds = 10
        t = time.perf_counter()
        for _ in range(rounds):
            entries = list(store.list_dir_with_files(inode))
        ours = rounds * len(entries) / (time.perf_counter() - t)
        native = Path(tmp) / "native"
        native.mkdir()
        for i in range(n):
            (native / f"Photo {i}.jpg").write_bytes(b"")
        t = time.perf_counter()
        for _ in range(rounds):
            with os.scandir(native) as it:
                listed = [(e.name, e.stat()) for e in it]
        base = rounds * len(listed) / (time.perf_counter() - t)
        store.close()
    row("readdir 10,000 entries (store)", ours, "entries/s", base, "os.scandir+stat native")


def _big_file() -> bytes:
    side = 2048 if QUICK else 4096
    img = Image.frombytes("RGB", (side, side), random.Random(8).randbytes(side * side * 3))
    buf = io.BytesIO()
    img.save(buf, "PNG", compress_level=0)
    return buf.getvalue()


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        print(f"seeding the demo emulator in {tmp} …", flush=True)
        emu = start_emulator(data_dir, "--demo", "--plan", "enterprise", "--rpm", "0",
                             "--processing-delay", "0")
        try:
            print(f"{'benchmark':<34} {'figure':>12} {'unit':<10}")
            if "--requests" in sys.argv:  # only the request table (a few minutes of FREE)
                from .requests import bench_requests

                await trio.to_thread.run_sync(bench_requests, row, emu)
                return
            from .floor import bench_floor

            if "--floor" in sys.argv:  # only what any FUSE filesystem costs here
                await trio.to_thread.run_sync(bench_floor, row)
                return
            if "--writes" in sys.argv:  # only the copies into the mount and the uploads
                from .mount import bench_upload_memory, bench_writes

                await trio.to_thread.run_sync(bench_floor, row)
                await trio.to_thread.run_sync(bench_writes, row, emu)
                await trio.to_thread.run_sync(bench_upload_memory, row, emu)
                return
            if "--scale" in sys.argv:  # only the big library (issue 17)
                from .scale import bench_scale

                at = sys.argv.index("--scale") + 1
                files = int(sys.argv[at]) if at < len(sys.argv) else 200_000
                await trio.to_thread.run_sync(bench_scale, row, emu, files)
                return
            if "--file-managers" in sys.argv:  # only the file managers (issue 18)
                from .filemanager import bench_file_manager

                await trio.to_thread.run_sync(bench_file_manager, row, emu)
                return
            if "--reads" in sys.argv:  # only the cold reads, and beside rclone mount
                from .rclone import bench_rclone
                from .reads import bench_cold_folder

                await trio.to_thread.run_sync(bench_floor, row)
                await trio.to_thread.run_sync(bench_cold_folder, row, emu)
                await trio.to_thread.run_sync(bench_rclone, row, emu)
                return
            template = await bench_listing(emu.base_url, emu.api_key)
            bench_decode(template)
            await bench_overhead(emu.base_url, emu.api_key)
            await bench_download(emu.base_url, emu.api_key, data_dir)
            bench_ingest(template)
            bench_readdir()
            from .mount import bench_reads, bench_views, bench_walks, bench_writes

            big = await trio.to_thread.run_sync(_big_file)
            key = emu.new_tenant(plan="enterprise", rpm=0)
            settings = ApiSettings.from_env(api_key=key, base_url=emu.base_url, environ={},
                                            plan="enterprise")
            async with AionClient(settings, unlimited=True) as c:
                await c.upload_file(big, "big.png")
            await trio.to_thread.run_sync(bench_floor, row)
            await trio.to_thread.run_sync(bench_reads, row, emu, key, big, "big.png")
            from .rclone import bench_rclone
            from .reads import bench_cold_folder

            await trio.to_thread.run_sync(bench_cold_folder, row, emu)
            await trio.to_thread.run_sync(bench_rclone, row, emu)
            await trio.to_thread.run_sync(bench_views, row, emu)
            from .filemanager import bench_file_manager

            await trio.to_thread.run_sync(bench_file_manager, row, emu)
            await trio.to_thread.run_sync(bench_writes, row, emu, 100 if QUICK else 500,
                                          400 if QUICK else 2000)
            from .mount import bench_upload_memory

            await trio.to_thread.run_sync(bench_upload_memory, row, emu, 8 if QUICK else 40)
            with tempfile.TemporaryDirectory() as cache:
                key = await bench_full_sync(emu, cache)
                await trio.to_thread.run_sync(bench_walks, row, emu, key, cache)
            from .requests import bench_requests

            await trio.to_thread.run_sync(bench_requests, row, emu)
            from .scale import bench_scale

            await trio.to_thread.run_sync(bench_scale, row, emu, 50_000 if QUICK else 200_000)
        finally:
            stop_emulator(emu)


if __name__ == "__main__":
    trio.run(main)
