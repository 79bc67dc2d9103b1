"""A randomized model test of saving through the mount, with kill -9 anywhere.

Random sequences of what applications do to a few documents — write anew,
append, save over (temp file + rename), rename, unlink, truncate, fsync,
utimens — interleaved with pauses (so uploads are anywhere in their steps)
and `kill -9` of the daemon followed by a remount with another write-back
delay. An in-memory model holds what a POSIX filesystem would show. Every
operation completes before the next (a close that returned is the contract),
so a kill never changes the model. Checked after every remount and at the
end: the mount shows exactly the model (names, bytes, the mtimes utimens
set); once the queue drains, the workspace holds exactly one file per
document with the model's bytes, nothing else (no clash copies, no
scratch files, nothing cut off).
"""

from __future__ import annotations

import functools
import hashlib
import os
import random
import signal
import time
from pathlib import Path

import pytest

from aionfs.daemon.control import daemon_alive
from tests.conftest import EmulatorProcess
from tests.mounting import Mount, mount, wait_for, workspace
from tests.test_writes import drained

pytestmark = pytest.mark.skipif(not os.path.exists("/dev/fuse"), reason="needs /dev/fuse")

NAMES = ("a.txt", "b.txt", "c.md")
DELAYS = ("0", "0.3", "1", "3")
FOLDER = "M"


class Model:
    """What a POSIX filesystem shows after the same operations."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.mtimes: dict[str, int] = {}  # set by utimens, until the bytes change

    def wrote(self, name: str, data: bytes) -> None:
        self.files[name] = data
        self.mtimes.pop(name, None)


def _write(path: Path, data: bytes, flags: int, sync: bool = False) -> None:
    fd = os.open(path, flags, 0o644)
    try:
        os.write(fd, data)
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)


def _step(rng: random.Random, root: Path, model: Model, log: list[str]) -> None:
    """One random operation, applied to the mount and the model alike."""
    existing = sorted(model.files)
    name = rng.choice(NAMES)
    data = f"{name} {rng.random()}\n".encode() * rng.randrange(1, 200)
    kind = rng.choice(["write", "write", "save_over", "save_over", "append", "rename",
                       "unlink", "truncate", "fsync", "utime"])
    if kind in ("append", "rename", "unlink", "truncate", "utime") and not existing:
        kind = "write"
    if kind in ("append", "rename", "unlink", "truncate", "utime"):
        name = rng.choice(existing)
    path = root / name
    log.append(f"{kind} {name}")
    if kind == "write":
        _write(path, data, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        model.wrote(name, data)
    elif kind == "fsync":
        _write(path, data, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, sync=True)
        model.wrote(name, data)
    elif kind == "save_over":  # what GIO, LibreOffice, sed -i and many editors do
        temp = root / f".{name}.{rng.randrange(1 << 20):05x}.tmp"
        _write(temp, data, os.O_WRONLY | os.O_CREAT | os.O_EXCL, sync=rng.random() < 0.5)
        os.rename(temp, path)
        model.wrote(name, data)
    elif kind == "append":
        _write(path, data, os.O_WRONLY | os.O_APPEND)
        model.wrote(name, model.files[name] + data)
    elif kind == "rename":
        target = rng.choice([n for n in NAMES if n != name])
        log[-1] += f" {target}"
        os.rename(path, root / target)
        model.files[target] = model.files.pop(name)
        model.mtimes.pop(target, None)
        if name in model.mtimes:
            model.mtimes[target] = model.mtimes.pop(name)
    elif kind == "unlink":
        os.unlink(path)
        del model.files[name]
        model.mtimes.pop(name, None)
    elif kind == "truncate":  # never to 0: the service takes no empty documents
        size = rng.randrange(1, len(model.files[name]) + 20)
        os.truncate(path, size)
        model.wrote(name, model.files[name][:size].ljust(size, b"\0"))
    elif kind == "utime":
        mtime = rng.randrange(10**9, 2 * 10**9) * 10**9
        os.utime(path, ns=(mtime, mtime))
        model.mtimes[name] = mtime


def _check_mount(root: Path, model: Model, log: list[str]) -> None:
    shown = sorted(n for n in os.listdir(root) if not n.startswith("."))
    assert shown == sorted(model.files), " | ".join(log)
    for name, data in model.files.items():
        assert (root / name).read_bytes() == data, (name, " | ".join(log))
    for name, mtime in model.mtimes.items():
        assert os.stat(root / name).st_mtime_ns == mtime, (name, " | ".join(log))


#: more seeds for a longer hunt: AIONFS_MODEL_SEEDS=1-40 pytest tests/test_save_model.py
_SEEDS = os.environ.get("AIONFS_MODEL_SEEDS", "1-3").partition("-")


@pytest.mark.daemon_log(r"whose writing never finished \(no close\) may be cut off")
@pytest.mark.parametrize("seed", range(int(_SEEDS[0]), int(_SEEDS[2] or _SEEDS[0]) + 1))
def test_random_saves_with_kill_9_match_a_posix_model(emulator: EmulatorProcess,
                                                      tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    key = emulator.new_tenant(plan="enterprise")
    where, cache = tmp_path / "mnt", tmp_path / "cache"

    def start() -> Mount:
        return mount(emulator, key, where, cache, "--write-back-delay", rng.choice(DELAYS))

    m = start()
    model, log = Model(), []
    try:
        (m.path / FOLDER).mkdir()
        root = m.path / FOLDER
        for _ in range(45):
            try:
                _step(rng, root, model, log)
            except OSError as exc:
                raise AssertionError(f"{exc} after: {' | '.join(log)}") from exc
            roll = rng.random()
            if roll < 0.25:
                time.sleep(rng.uniform(0, 1.5))  # uploads progress: the next kill lands anywhere
            elif roll < 0.35:
                log.append("kill -9")
                dead = m.pid
                os.kill(dead, signal.SIGKILL)  # only the daemon this test started
                wait_for(functools.partial(_gone, dead))
                m = start()  # over the dead mount: detected and detached by `aionfs mount`
                _check_mount(root, model, log)
        _check_mount(root, model, log)
        wait_for(lambda: drained(m), timeout=90)
        _check_mount(root, model, log)
    finally:
        m.unmount()
    time.sleep(0.5)
    got = workspace(emulator, key)
    want = {f"{FOLDER}/{n}": hashlib.sha256(d).hexdigest() for n, d in model.files.items()}
    assert {k: v[1] for k, v in got.items()} == want, " | ".join(log)


def _gone(pid: int) -> bool:
    """Exited (a zombie not yet reaped counts: its files are closed)."""
    return not daemon_alive(pid)
