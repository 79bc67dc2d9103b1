"""What any FUSE filesystem costs on this machine, whatever it does: the floor under
the per-file figures of the read and write benchmarks (docs/mount.md, writes.md).

- a round trip between two processes over pipes, as the scheduler places them
  (on two CPUs) and both pinned to one CPU: what waking another CPU costs here;
- a FUSE round trip (a getxattr answered "no such attribute" at once) of a
  pyfuse3 filesystem that does nothing (tests/bench/nullfs.py);
- `cp -r` of small notes into that filesystem, beside the native copy: the
  best any pyfuse3 filesystem can do for small files here;
- `cp -r` of the write benchmark's 500 photos into it, plain and with the
  kernel's writeback cache, beside native copies made just before and after
  (each after a `sync`; the page cache dropped once at the start, as the
  write benchmark does): the best any pyfuse3 filesystem can do for large
  files here. `cp` copies natively with `copy_file_range`, inside the
  kernel; into FUSE it reads into its own buffer and writes it through.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .mount import _drop_caches, _images, _native_median, _notes, _run_timed, _unmount

Row = Any


def _pipe_round_trip(n: int = 20000, one_cpu: bool = False) -> float:
    """Microseconds per ping-pong of one byte between this process and a child."""
    down, up = os.pipe(), os.pipe()
    if one_cpu:
        before = os.sched_getaffinity(0)
        os.sched_setaffinity(0, {min(before)})
    pid = os.fork()
    if pid == 0:
        while (b := os.read(down[0], 1)) != b"q":
            os.write(up[1], b)
        os._exit(0)
    try:
        t = time.perf_counter()
        for _ in range(n):
            os.write(down[1], b"x")
            os.read(up[0], 1)
        return (time.perf_counter() - t) / n * 1e6
    finally:
        os.write(down[1], b"q")
        os.waitpid(pid, 0)
        for fd in (*down, *up):
            os.close(fd)
        if one_cpu:
            os.sched_setaffinity(0, before)


def _fuse_round_trip(path: Path, n: int = 20000) -> float:
    """Microseconds per getxattr the filesystem answers (ENODATA: never cached)."""
    t = time.perf_counter()
    for _ in range(n):
        try:
            os.getxattr(path, "user.nothing")
        except OSError as exc:
            if exc.errno != errno.ENODATA:
                raise
    return (time.perf_counter() - t) / n * 1e6


def _nullfs(mnt: Path, *flags: str) -> subprocess.Popen[str]:
    mnt.mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "tests.bench.nullfs", str(mnt), *flags],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        for _ in range(100):  # the mount is up once its root is a FUSE mount
            if os.path.ismount(mnt):
                break
            time.sleep(0.05)
    except BaseException:
        _unmount(mnt, proc.pid)
        raise
    return proc


def bench_floor(row: Row, notes: int = 2000, photos: int = 500) -> None:
    pipe = _pipe_round_trip()
    pipe_one = _pipe_round_trip(one_cpu=True)
    _drop_caches()  # from a small page cache, as the write benchmark (bench_writes)
    with tempfile.TemporaryDirectory() as tmp:
        mnt, txt = Path(tmp) / "mnt", Path(tmp) / "notes"
        _notes(txt, notes)
        native = _native_median(["cp", "-r", str(txt)], Path(tmp) / "native")
        proc = _nullfs(mnt)
        try:
            (mnt / "probe").write_bytes(b"")
            fuse = _fuse_round_trip(mnt / "probe")
            copied = _run_timed(["cp", "-r", str(txt), str(mnt / "Notes")])
        finally:
            _unmount(mnt, proc.pid)
        src = Path(tmp) / "photos"
        mb = sum(p.stat().st_size for p in _images(src, photos)) / 1e6
        large = []
        for flags in ((), ("--writeback-cache",)):
            where = Path(tmp) / f"mnt{len(flags)}"
            proc = _nullfs(where, *flags)
            try:
                before = _run_timed(["cp", "-r", str(src), f"{tmp}/n{len(flags)}a"], settle=True)
                into = _run_timed(["cp", "-r", str(src), str(where / "Photos")], settle=True)
                after = _run_timed(["cp", "-r", str(src), f"{tmp}/n{len(flags)}b"], settle=True)
            finally:
                _unmount(where, proc.pid)
            large.append((into, (before + after) / 2))
    row("pipe round trip, two processes", pipe, "µs", pipe_one, "both on one CPU",
        higher_is_better=False)
    row("FUSE round trip of a filesystem doing nothing", fuse, "µs", pipe,
        "pipe round trip", higher_is_better=False)
    row(f"cp -r of {notes} notes into it returns", copied, "s", native, "native cp -r",
        higher_is_better=False)
    for (into, base), how in zip(large, ("", ", writeback cache"), strict=True):
        row(f"cp -r of {photos} photos ({mb:.0f} MB) into it{how}", into, "s", base,
            "native cp -r, before/after", higher_is_better=False)
