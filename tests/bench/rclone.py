"""aionfs beside rclone mount on the same photos (issue: reads at the speed of storage).

One library, two servers: the emulator (for aionfs) and a plain HTTP server of
the same files (rclone's `http` backend, `--vfs-cache-mode full`, as users run
it; a listing of `python -m http.server` carries no sizes, so rclone asks HEAD
per file while walking; with `--http-no-head` it sees every size as 0 and
reads nothing, so that is not an option here), 10 folders of photos and 12 at the root. Each mount fresh and cold:
`find`-like walk with stat right after mounting (files seen, seconds), then a
read of every file in walk order (as `tar -c` does): MB/s and the time to the
first 64 KiB of each file. Native: the same files on local disk, page cache
dropped. Needs Debian's rclone (`apt-get install rclone`); skipped without it.
"""

from __future__ import annotations

import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import trio

from aionfs.api import AionClient, ApiSettings, UploadItem

from .mount import Row, _drop_caches, _mount, _unmount
from .reads import _photo, read_in_order

FOLDERS, PER_FOLDER, AT_ROOT = 10, 30, 12


def _layout() -> dict[str, list[tuple[str, bytes]]]:
    out: dict[str, list[tuple[str, bytes]]] = {}
    n = 0
    for f in range(FOLDERS):
        out[f"Folder {f:02}"] = [(f"P{(n := n + 1):04}.jpg", _photo(n)) for _ in range(PER_FOLDER)]
    out[""] = [(f"R{i:02}.jpg", _photo(10_000 + i)) for i in range(AT_ROOT)]
    return out


async def _upload(emu: Any, key: str, layout: dict[str, list[tuple[str, bytes]]]) -> None:
    settings = ApiSettings.from_env(api_key=key, base_url=emu.base_url, environ={},
                                    plan="enterprise")
    async with AionClient(settings, unlimited=True) as c:
        for folder, files in layout.items():
            _, results = await c.upload_batch([UploadItem(n, d, "image/jpeg") for n, d in files])
            if folder:
                made = await c.create_folder(folder)
                await c.move_files([r.image_id for r in results if r.image_id], made.id)


def _walk(root: Path) -> list[Path]:
    files = []
    for d, dirs, names in os.walk(root):
        if Path(d) == root:
            dirs[:] = sorted(x for x in dirs if x not in ("search", "text", "colors", "tags",
                                                         "by-date"))
        else:
            dirs.sort()
        for n in sorted(names):
            p = Path(d, n)
            p.stat()
            files.append(p)
    return files


def _measure(root: Path) -> dict[str, float]:
    t = time.perf_counter()
    files = _walk(root)
    walk = time.perf_counter() - t
    t = time.perf_counter()
    for _ in range(3):
        for p in files:
            p.stat()
    stats = 3 * len(files) / (time.perf_counter() - t)
    firsts, total, read = read_in_order(files)
    return {"files": len(files), "walk": walk, "stats": stats, "mbps": total / 1e6 / read,
            "p50": statistics.median(firsts) * 1000, "max": max(firsts) * 1000}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bench_rclone(row: Row, emu: Any) -> None:
    if shutil.which("rclone") is None:
        print("  (rclone not installed: apt-get install rclone)")
        return
    layout = _layout()
    key = emu.new_tenant(plan="enterprise", rpm=0)
    trio.run(_upload, emu, key, layout)
    with tempfile.TemporaryDirectory() as tmp:
        native = Path(tmp) / "native"
        for folder, files in layout.items():
            (native / folder).mkdir(parents=True, exist_ok=True)
            for name, data in files:
                (native / folder / name).write_bytes(data)
        _drop_caches()
        figures = {"native": _measure(native)}

        port = _free_port()
        server = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind",
                                   "127.0.0.1", "--directory", str(native)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(200):  # listening before rclone lists it (an empty first
            try:                # listing would be cached as the tree)
                httpx.get(f"http://127.0.0.1:{port}/", timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                time.sleep(0.05)
        rmnt = Path(tmp) / "rclone"
        rmnt.mkdir()
        rclone = subprocess.Popen(
            ["rclone", "mount", ":http:", str(rmnt), "--http-url", f"http://127.0.0.1:{port}/",
             "--vfs-cache-mode", "full", "--cache-dir", str(Path(tmp) / "rcache"),
             "--read-only"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            for _ in range(200):
                if os.path.ismount(rmnt):
                    break
                time.sleep(0.05)
            _drop_caches()
            figures["rclone"] = _measure(rmnt)
        finally:
            subprocess.run(["fusermount3", "-u", "-z", str(rmnt)], check=False)
            rclone.terminate()
            rclone.wait(timeout=30)
            server.terminate()
            server.wait(timeout=30)

        amnt = Path(tmp) / "aionfs"
        _drop_caches()
        pid, _env = _mount(emu, key, amnt, str(Path(tmp) / "acache"))
        try:
            figures["aionfs"] = _measure(amnt)
        finally:
            _unmount(amnt, pid)
    a, r, n = figures["aionfs"], figures["rclone"], figures["native"]
    print(f"  native: {n}")
    print(f"  rclone: {r}")
    print(f"  aionfs: {a}")
    row("files seen by a walk at once", a["files"], "files", r["files"], "rclone")
    row("cold walk + stat right after mount", a["walk"], "s", r["walk"], "rclone",
        higher_is_better=False)
    row("stat rate (warm)", a["stats"], "stat/s", r["stats"], "rclone")
    row("cold read in walk order", a["mbps"], "MB/s", r["mbps"], "rclone")
    row("  first 64 KiB, p50", a["p50"], "ms", r["p50"], "rclone", higher_is_better=False)
    row("  first 64 KiB, max", a["max"], "ms", r["max"], "rclone", higher_is_better=False)
