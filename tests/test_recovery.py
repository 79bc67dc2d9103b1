"""Recovering from a daemon that died: its mount is detached, nothing is lost.

After `kill -9` (or a crash, or systemd's watchdog) the kernel keeps the mount,
and a stat of the mountpoint may still answer from the attribute cache; the
next `aionfs mount` (systemd's restart) must see the mount is dead, detach it
and mount again, with the pending uploads resumed. A live mount, or one that
does not answer, is never detached.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from aionfs.api import AionClient
from aionfs.daemon import mount as daemon_mount
from aionfs.daemon.control import daemon_alive
from aionfs.daemon.mount import MountError, check_mountpoint, mount_at
from tests.conftest import EmulatorProcess, start_emulator, stop_emulator
from tests.mounting import Mount, api_call, mount, wait_for, workspace

pytestmark = pytest.mark.skipif(not os.path.exists("/dev/fuse"), reason="needs /dev/fuse")


def mounts_at(path: Path) -> list[str]:
    """The devices (major:minor) mounted at `path`, bottom first, from mountinfo."""
    out = []
    with open("/proc/self/mountinfo", "rb") as f:
        for line in f:
            fields = os.fsdecode(line).split()
            if daemon_mount._unescape(fields[4]) == str(path):
                out.append(fields[2])
    return out


def mounted_devices() -> set[str]:
    with open("/proc/self/mountinfo") as f:
        return {line.split()[2] for line in f}


@pytest.fixture
def tenant(emulator: EmulatorProcess) -> str:
    return emulator.new_tenant(plan="enterprise")


@pytest.fixture
def cleanup() -> Iterator[list[Mount]]:
    """Mounts to take down after the test, whatever happened: live ones are unmounted
    (their daemon waited for), dead ones detached."""
    mounts: list[Mount] = []
    yield mounts
    for m in reversed(mounts):
        if daemon_alive(m.pid):
            m.unmount()
    for m in mounts:
        for _ in range(5):
            if not mounts_at(m.path):
                break
            subprocess.run(["fusermount3", "-u", "-z", str(m.path)], check=False,
                           capture_output=True)


def remount(m: Mount, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "aionfs", "mount", str(m.path), "--cache-dir",
                           str(m.cache), "--rpm", "0", "--poll-interval", "0.3",
                           "--read-timeout", "2", "--cache-size", "64M", *extra],
                          env=m.env, capture_output=True, text=True, timeout=60)


def test_mount_again_after_kill_9_detaches_the_dead_mount_and_resumes_uploads(
        emulator: EmulatorProcess, tenant: str, tmp_path: Path, cleanup: list[Mount]) -> None:
    remote = b"a photo's bytes, already in the library\n" * 1000
    api_call(emulator, SimpleNamespace(key=tenant),
             lambda c: c.upload_file(remote, "site.txt"))
    m = mount(emulator, tenant, tmp_path / "mnt", tmp_path / "cache", "--write-back-delay", "30")
    cleanup.append(m)
    # What a desktop session leaves behind: attributes cached for the root and a deep
    # folder, a file open for reading, an upload waiting for its write-back delay.
    deep = m.path / "Inspections" / "2026" / "Site B" / "North"
    deep.mkdir(parents=True)
    pending = deep / "notes.txt"
    data = b"written just before the crash\n" * 100
    pending.write_bytes(data)
    wait_for(lambda: os.getxattr(pending, "user.aion.sync_state") == b"pending")
    for p in (m.path, m.path / "Inspections", deep, pending):
        os.stat(p)
    reader = open(m.path / "site.txt", "rb")  # noqa: SIM115 (open across the crash)
    try:
        assert reader.read(100) == remote[:100]
        dead_dev = mounts_at(m.path)[-1]

        os.kill(m.pid, signal.SIGKILL)  # the daemon this test started
        wait_for(lambda: not daemon_alive(m.pid), 10)
        with pytest.raises(OSError) as info:
            os.statvfs(m.path)
        assert info.value.errno in (errno.ENOTCONN, errno.ECONNABORTED)
        assert mounts_at(m.path) == [dead_dev]

        started = time.monotonic()
        res = remount(m, "--write-back-delay", "0.2")
        took = time.monotonic() - started
        assert res.returncode == 0, res.stderr
        assert took < 15, took
        assert res.stderr.count("left mounted by an aionfs daemon that is gone") == 1, res.stderr
        again = Mount(m.path, m.cache, m.env, int(res.stdout.split("daemon pid ")[1].split(",")[0]))
        cleanup.append(again)
        # The dead mount is gone from the mount table; the new one answers.
        assert dead_dev not in mounted_devices()
        assert len(mounts_at(m.path)) == 1 and mounts_at(m.path)[0] != dead_dev
        os.statvfs(m.path)
        assert (m.path / "site.txt").read_bytes() == remote
        # The pending file is still there, and is uploaded into its folders.
        assert pending.read_bytes() == data
        want = hashlib.sha256(data).hexdigest()
        wait_for(lambda: os.getxattr(pending, "user.aion.sync_state") == b"synced", 20)
        files = workspace(emulator, tenant)
        assert files["Inspections/2026/Site B/North/notes.txt"][1] == want, files
        assert [k for k in files if k.endswith("notes.txt")] == [
            "Inspections/2026/Site B/North/notes.txt"]
        # What was open on the dead mount answers from the page cache or fails (ENOTCONN);
        # it never hangs.
        try:
            reader.seek(30_000)
            assert reader.read(100) == remote[30_000:30_100]
        except OSError as exc:
            assert exc.errno in (errno.ENOTCONN, errno.ECONNABORTED)
    finally:
        with contextlib.suppress(OSError):  # its flush fails too (ENOTCONN)
            reader.close()
    # And the new mount unmounts cleanly.
    res = subprocess.run([sys.executable, "-m", "aionfs", "unmount", str(m.path)], env=m.env,
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert mounts_at(m.path) == []


def test_mounting_over_a_live_mount_refuses_and_leaves_it_alone(
        emulator: EmulatorProcess, tenant: str, tmp_path: Path, cleanup: list[Mount]) -> None:
    m = mount(emulator, tenant, tmp_path / "my mount", tmp_path / "cache")  # a space: escaped
    cleanup.append(m)
    os.stat(m.path)
    res = remount(m)
    assert res.returncode != 0
    assert f"already a mountpoint: aionfs (daemon pid {m.pid}) serves it" in res.stderr, (
        res.stderr)
    assert "aionfs unmount" in res.stderr
    assert "gone" not in res.stderr
    assert daemon_alive(m.pid) and len(mounts_at(m.path)) == 1
    assert {"search", "tags"} <= set(os.listdir(m.path))


def test_a_mount_that_does_not_answer_is_neither_waited_for_nor_detached(
        emulator: EmulatorProcess, tenant: str, tmp_path: Path, cleanup: list[Mount],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A stopped daemon whose pidfile is lost (as a foreign FUSE daemon would be):
    only the statfs probe can tell, and it gives up in time."""
    m = mount(emulator, tenant, tmp_path / "mnt", tmp_path / "cache")
    cleanup.append(m)
    os.stat(m.path)
    monkeypatch.setattr(daemon_mount, "mounted_store", lambda mountpoint: (None, None))
    os.kill(m.pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        with pytest.raises(MountError) as info:
            check_mountpoint(m.path, probe_timeout=0.5)
        assert time.monotonic() - started < 5
        assert "does not answer" in str(info.value)
        assert len(mounts_at(m.path)) == 1
    finally:
        os.kill(m.pid, signal.SIGCONT)
    os.statvfs(m.path)  # alive again, and still mounted
    assert mount_at(m.path) is not None and mount_at(m.path).aionfs  # type: ignore[union-attr]


# -- `aionfs demo` and Ctrl-C ---------------------------------------------------------------


class Demo:
    """`aionfs demo` in a process group of its own, as a terminal runs it: Ctrl-C is
    os.killpg(SIGINT), reaching every process of the group."""

    def __init__(self, where: Path, data: Path, env: dict[str, str]) -> None:
        self.where = where
        self.errlog = open(data.parent / "demo-stderr.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "aionfs", "demo", "--mountpoint", str(where), "--data",
             str(data)], stdout=subprocess.PIPE, stderr=self.errlog, text=True, env=env,
            start_new_session=True)
        self.lines: list[str] = []
        self.tips = threading.Event()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def ready(self, timeout: float = 30) -> bool:
        """The tips are printed (it is mounted and Ctrl-C is handled): True; the demo
        exited or timed out: False."""
        deadline = time.monotonic() + timeout
        while not self.tips.wait(0.1):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                return False
        return True

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)
            if "Press Ctrl-C" in line:
                self.tips.set()

    def children(self) -> list[int]:
        """The processes the demo started (the emulator; the mount's own daemon is in
        a session of its own, not a child)."""
        out = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    stat = Path(f"/proc/{entry}/stat").read_text()
                except OSError:
                    continue
                if int(stat.rpartition(")")[2].split()[1]) == self.proc.pid:
                    out.append(int(entry))
        return out

    def ctrl_c(self) -> None:
        os.killpg(self.proc.pid, signal.SIGINT)

    def stderr(self) -> str:
        return (Path(self.errlog.name)).read_text()

    def close(self, started: list[int]) -> None:
        """Whatever happened: the demo, the emulator it started, the mount are gone."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        for pid in started:  # the emulator this demo started, if it outlived the demo
            if daemon_alive(pid):
                os.kill(pid, signal.SIGKILL)
        for _ in range(3):
            if not mounts_at(self.where):
                break
            subprocess.run(["fusermount3", "-u", "-z", str(self.where)], check=False,
                           capture_output=True)
        self.reader.join(10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self.errlog.close()


@pytest.fixture
def demo_data(tmp_path: Path) -> tuple[Path, str]:
    """A demo data dir seeded with a small library (the demo seeds once per dir),
    and the API key of its workspace."""
    data = tmp_path / "data"
    data.mkdir()
    emu = start_emulator(data, "--demo", "--demo-images", "4", "--plan", "professional")
    stop_emulator(emu)
    return data, emu.api_key


def start_demo(tmp_path: Path, data: Path, write_back_delay: float) -> Demo:
    config = tmp_path / "config" / "aionfs"
    config.mkdir(parents=True)
    (config / "config.toml").write_text(
        f"[profiles.default]\nwrite_back_delay = {write_back_delay}\n")
    env = {**os.environ, "XDG_CONFIG_HOME": str(config.parent)}
    return Demo(tmp_path / "Aion", data, env)


def library(data: Path, key: str, name: str) -> str | None:
    """The sha256 of a file of the demo's workspace (None if it has none by that
    name), from what its emulator keeps in its data dir: started again to ask it."""
    emu = start_emulator(data, "--plan", "professional")
    folder, _, title = name.rpartition("/")

    async def find(c: AionClient) -> str | None:
        folder_id = next(f.id for f in await c.folder_tree() if f.name == folder)
        for item in [i async for i in c.iter_files(folder_id=folder_id)]:
            if (item.title or item.filename) == title:
                return hashlib.sha256(await c.download_bytes(item.id)).hexdigest()
        return None
    try:
        return api_call(emu, SimpleNamespace(key=key), find)
    finally:
        stop_emulator(emu)


def test_ctrl_c_in_the_demo_uploads_what_was_saved_then_stops_everything(
        tmp_path: Path, demo_data: tuple[Path, str]) -> None:
    data, key = demo_data
    demo = start_demo(tmp_path, data, write_back_delay=2)
    started: list[int] = []
    try:
        assert demo.ready(), demo.stderr()
        assert mount_at(demo.where) is not None
        started = demo.children()
        assert len(started) == 1, started  # the emulator
        daemon, _ = daemon_mount.mounted_store(demo.where)
        assert daemon is not None
        saved = b"saved right before Ctrl-C\n" * 200
        (demo.where / "Inspections" / "saved.txt").write_bytes(saved)
        stopped = time.monotonic()
        demo.ctrl_c()  # the upload is still waiting for its write-back delay
        assert demo.proc.wait(20) == 0, demo.stderr()
        assert time.monotonic() - stopped < 15
        assert mounts_at(demo.where) == []
        assert not daemon_alive(daemon)
        assert not any(daemon_alive(pid) for pid in started), started
    finally:
        demo.close(started)
    assert library(data, key, "Inspections/saved.txt") == hashlib.sha256(saved).hexdigest()


def test_a_second_ctrl_c_in_the_demo_unmounts_without_waiting_for_uploads(
        tmp_path: Path, demo_data: tuple[Path, str]) -> None:
    data, key = demo_data
    demo = start_demo(tmp_path, data, write_back_delay=60)
    started: list[int] = []
    try:
        assert demo.ready(), demo.stderr()
        started = demo.children()
        (demo.where / "Inspections" / "later.txt").write_bytes(b"uploaded at the next start\n")
        stopped = time.monotonic()
        demo.ctrl_c()
        wait_for(lambda: "waiting for 1 upload" in demo.stderr(), 10)
        demo.ctrl_c()
        assert demo.proc.wait(15) == 0, demo.stderr()
        assert time.monotonic() - stopped < 15
        assert mounts_at(demo.where) == []
        assert not any(daemon_alive(pid) for pid in started), started
    finally:
        demo.close(started)
    assert library(data, key, "Inspections/later.txt") is None
    # The file stayed queued: the next demo (with a short write-back delay) uploads it.
    shutil.rmtree(tmp_path / "config")
    demo = start_demo(tmp_path, data, write_back_delay=0.2)
    started = []
    try:
        assert demo.ready(), demo.stderr()
        started = demo.children()
        assert (demo.where / "Inspections" / "later.txt").read_bytes() == (
            b"uploaded at the next start\n")
        demo.ctrl_c()
        assert demo.proc.wait(20) == 0, demo.stderr()
    finally:
        demo.close(started)
    assert library(data, key, "Inspections/later.txt") == hashlib.sha256(
        b"uploaded at the next start\n").hexdigest()
