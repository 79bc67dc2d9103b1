"""The scale section of `make bench` (issue 17): a library of N files (default 200,000;
`--scale 1000000` for the million-file run documented in docs/store-and-sync.md).

Each figure is printed beside its goal or a baseline measured in the same run:
sync time, requests and peak RSS against the raw list requests; a fresh mount's first
listings while its crawl runs; cold and warm `find` against a native copy of the tree;
the daemon's RSS after the find, after reading 1,000 files and after polling; the
store's size on disk per file.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .mount import Row, _drop_caches, _find, _native_copy, _timed, _unmount

FILES_PER_FOLDER = 500


def _rss(pid: int) -> tuple[float, float]:
    """(current, peak) resident MB of a process, from /proc."""
    status = Path(f"/proc/{pid}/status").read_text()
    now = int(re.search(r"VmRSS:\s+(\d+)", status)[1])  # type: ignore[index]
    peak = int(re.search(r"VmHWM:\s+(\d+)", status)[1])  # type: ignore[index]
    return now / 1024, peak / 1024


def _env(emu: Any, key: str) -> dict[str, str]:
    return {**os.environ, "AIONVISION_API_KEY": key, "AIONVISION_BASE_URL": emu.base_url,
            "AIONFS_PLAN": "enterprise"}


def _sync(emu: Any, key: str, cache: str) -> tuple[float, int, float]:
    """`aionfs sync --full` as a child: seconds, requests, peak RSS (MB, sampled)."""
    with tempfile.TemporaryFile() as out:
        t = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "aionfs", "sync", "--full", "--rpm", "0",
                                 "--cache-dir", cache], env=_env(emu, key), stdout=out,
                                stderr=subprocess.DEVNULL)
        peak = 0.0
        while proc.poll() is None:
            with contextlib.suppress(OSError, TypeError):
                peak = max(peak, _rss(proc.pid)[1])
            time.sleep(0.1)
        seconds = time.perf_counter() - t
        assert proc.returncode == 0, "aionfs sync --full failed"
        out.seek(0)
        text = out.read().decode()
    return seconds, int(text.split(" with ")[1].split(" requests")[0]), peak


def _mount(emu: Any, key: str, where: Path, cache: str, *extra: str) -> int:
    where.mkdir(exist_ok=True)
    res = subprocess.run([sys.executable, "-m", "aionfs", "mount", str(where), "--cache-dir",
                          cache, "--rpm", "0", "--hide-views", *extra], env=_env(emu, key),
                         capture_output=True, text=True, check=True)
    return int(re.search(r"daemon pid (\d+)", res.stdout)[1])  # type: ignore[index]


def _status(where: Path) -> dict[str, Any]:
    import json

    out = subprocess.run([sys.executable, "-m", "aionfs", "status", "--json", str(where)],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)  # type: ignore[no-any-return]


def _requests(emu: Any, key: str) -> int:
    return len(emu.requests(key))


def _first_use(row: Row, emu: Any, key: str, tmp: Path) -> None:
    """A fresh mount (empty store) of the big library: the root and a never-opened
    folder listed while the crawl has barely started."""
    mnt, cache = tmp / "fresh", str(tmp / "fresh-cache")
    t = time.perf_counter()
    pid = _mount(emu, key, mnt, cache)
    mounted = time.perf_counter() - t
    try:
        t = time.perf_counter()
        root = os.listdir(mnt)
        root_s = time.perf_counter() - t
        folders = sorted(n for n in root if n.startswith("Bulk "))
        assert folders, "the fresh mount's root shows no folder"
        t = time.perf_counter()
        names = os.listdir(mnt / folders[len(folders) // 2])
        folder_s = time.perf_counter() - t
        status = _status(mnt)
        crawl = status["sync"].get("crawl") or {}
        print(f"{'fresh mount: mount command':<34} {mounted:>12.2f} s")
        print(f"{'fresh mount: first ls of the root':<34} {root_s:>12.2f} s ({len(root)} "
              f"entries, root {status['sync'].get('root')})")
        print(f"{'fresh mount: ls of a new folder':<34} {folder_s:>12.2f} s ({len(names)} "
              f"files; crawl {crawl.get('folders_listed', '?')} of "
              f"{crawl.get('folders', '?')} folders)  goal: a few requests, at once")
    finally:
        _unmount(mnt, pid)


def bench_scale(row: Row, emu: Any, files: int) -> None:
    folders = max(1, files // FILES_PER_FOLDER)
    key = emu.new_tenant(plan="enterprise", rpm=0)
    t = time.perf_counter()
    emu.bulk(key, files=files, folders=folders)
    print(f"  (seeded {files:,} files in {folders:,} folders in "
          f"{time.perf_counter() - t:.1f} s)", flush=True)
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        _first_use(row, emu, key, tmp)
        cache = str(tmp / "cache")
        before = _requests(emu, key)
        seconds, requests, peak = _sync(emu, key, cache)
        on_wire = _requests(emu, key) - before
        floor = files // 100 + folders + 1
        row(f"sync --full, {files:,} files", files / seconds, "records/s", 20_000,
            "goal")
        print(f"{'':<34} {seconds:>12.1f} s, {requests:,} requests ({on_wire:,} on the wire; "
              f"floor {floor:,}), peak RSS {peak:,.0f} MB (goal <= 200 MB)")
        store = Path(cache)
        size = sum(p.stat().st_size for p in store.rglob("metadata.sqlite3*"))
        print(f"{'store on disk':<34} {size / 1e6:>12,.1f} MB ({size / files:,.0f} bytes a file)")
        mnt, native = tmp / "mnt", tmp / "native"
        pid = _mount(emu, key, mnt, cache, "--poll-interval", "2")
        try:
            _native_copy(mnt, native)
            _unmount(mnt, pid)
            _drop_caches()
            pid = _mount(emu, key, mnt, cache, "--poll-interval", "2")
            cold = _timed(lambda: _find(mnt))
            warm = _timed(lambda: _find(mnt))
            base = _timed(lambda: _find(native))
            row("find cold (store warm)", cold, "entries/s", 50_000, "goal")
            row("find warm", warm, "entries/s", 250_000, "goal")
            print(f"{'':<34} native find {base:,.0f} entries/s")
            print(f"{'daemon RSS after find':<34} {_rss(pid)[0]:>12,.0f} MB (goal <= 200 MB)")
            paths = [os.path.join(d, f) for d, _, fs in os.walk(mnt) for f in fs[:5]][:1000]
            for p in paths:
                with open(p, "rb") as f:
                    f.read()
            print(f"{'daemon RSS after 1,000 reads':<34} {_rss(pid)[0]:>12,.0f} MB")
            asked = _status(mnt)["api"]["requests"]
            time.sleep(60)
            asked = _status(mnt)["api"]["requests"] - asked
            now, hwm = _rss(pid)
            print(f"{'daemon RSS after 60 s of polling':<34} {now:>12,.0f} MB ({asked} requests "
                  f"polling every 2 s; peak {hwm:,.0f} MB, goal <= 200 MB)")
        finally:
            _unmount(mnt, pid)
