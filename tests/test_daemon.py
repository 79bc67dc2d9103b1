"""The daemon on a workstation: control socket, systemd notify, SIGHUP, units."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from aionfs.daemon.control import find_daemon
from aionfs.daemon.service import SHIPPED_ORIGIN, render_unit
from tests.conftest import EmulatorProcess
from tests.media import image_bytes
from tests.mounting import Mount, api_call, mount, wait_for

pytestmark = pytest.mark.skipif(not os.path.exists("/dev/fuse"), reason="needs /dev/fuse")
REPO = Path(__file__).resolve().parent.parent


class Key:
    def __init__(self, key: str) -> None:
        self.key = key


def aionfs(*args: str, env: dict[str, str], timeout: float = 60
           ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "aionfs", *args], env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def tenant(emulator: EmulatorProcess) -> str:
    return emulator.new_tenant()


@pytest.fixture
def mounted(emulator: EmulatorProcess, tenant: str, tmp_path: Path) -> Iterator[Mount]:
    m = mount(emulator, tenant, tmp_path / "mnt", tmp_path / "cache", "--poll-interval",
              "3600", "--revalidate-interval", "3600", "--write-back-delay", "3600")
    try:
        yield m
    finally:
        m.unmount()


def test_status_comes_from_the_running_daemon(mounted: Mount) -> None:
    res = aionfs("status", str(mounted.path), "--json", env=mounted.env)
    assert res.returncode == 0, res.stderr
    report = json.loads(res.stdout)
    assert report["mount"]["state"] == "mounted" and report["mount"]["pid"] == mounted.pid
    assert report["api"]["reachable"] is True
    assert report["api"]["key"].startswith("aion_…") and mounted.env["AIONVISION_API_KEY"] \
        not in res.stdout
    assert report["sync"]["last_sync"] is not None
    assert set(report["cache"]) == {"used", "capacity", "pinned_files", "download_requests",
                                    "kept_urls", "listed_urls", "streamed"}
    assert report["cache"]["capacity"] == 64 << 20
    assert report["rate_limit"]["per_minute"] is None  # --rpm 0: no limit
    text = aionfs("status", str(mounted.path), env=mounted.env)
    assert "api:        reachable" in text.stdout and "uploads:" in text.stdout
    sock = find_daemon(mountpoint=mounted.path)
    assert sock is not None and stat.S_IMODE(os.stat(sock.socket).st_mode) == 0o600


def test_flush_uploads_at_once_despite_the_write_back_delay(mounted: Mount) -> None:
    for i in range(3):
        (mounted.path / f"note {i}.txt").write_text(f"flushed {i}\n")
    time.sleep(1)
    assert os.getxattr(mounted.path / "note 0.txt", "user.aion.sync_state") == b"pending"
    res = aionfs("flush", str(mounted.path), env=mounted.env, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "all uploads done (3 sent)" in res.stdout
    for i in range(3):
        assert os.getxattr(mounted.path / f"note {i}.txt", "user.aion.sync_state") == b"synced"


@pytest.mark.daemon_log(r"upload of broken\.txt failed")
def test_flush_reports_what_fails(mounted: Mount) -> None:
    (mounted.path / "broken.txt").write_bytes(b"\xff\xfe not text")  # the service refuses it
    res = aionfs("flush", str(mounted.path), env=mounted.env, timeout=120)
    assert res.returncode == 1 and "1 uploads failed" in res.stderr


def test_sync_now_picks_up_a_remote_change_at_once(mounted: Mount,
                                                   emulator: EmulatorProcess) -> None:
    """The mount polls hourly here; `sync --now` makes it look now."""
    os.listdir(mounted.path)
    api_call(emulator, Key(mounted.env["AIONVISION_API_KEY"]),
             lambda c: c.upload_file(image_bytes((3, 4, 5)), "from the web.jpg"))
    res = aionfs("sync", "--now", "--cache-dir", str(mounted.cache), env=mounted.env)
    assert res.returncode == 0, res.stderr
    assert "1 added" in res.stdout
    assert "from the web.jpg" in os.listdir(mounted.path)


def test_sync_now_without_a_mount_says_so(emulator: EmulatorProcess, tenant: str,
                                          tmp_path: Path) -> None:
    env = {**os.environ, "AIONVISION_API_KEY": tenant, "AIONVISION_BASE_URL": emulator.base_url}
    res = aionfs("sync", "--now", "--cache-dir", str(tmp_path), env=env)
    assert res.returncode == 1 and "no mount of this workspace is running" in res.stderr
    res = aionfs("flush", "--cache-dir", str(tmp_path), env=env)
    assert res.returncode == 1 and "no aionfs mount is running" in res.stderr


def test_a_stranger_on_the_control_socket_gets_a_clear_error(mounted: Mount) -> None:
    daemon = find_daemon(mountpoint=mounted.path)
    assert daemon is not None
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(str(daemon.socket))
        s.sendall(b'{"command": "format-disk"}\n')
        answer = json.loads(s.makefile().readline())
    assert "unknown command 'format-disk'" in answer["error"]
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(str(daemon.socket))
        s.sendall(b"not json\n")
        assert "bad request" in json.loads(s.makefile().readline())["error"]
    # the daemon is still fine
    assert aionfs("status", str(mounted.path), env=mounted.env).returncode == 0


class NotifySocket:
    """A datagram socket standing in for systemd's NOTIFY_SOCKET."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.messages: list[tuple[float, dict[str, str]]] = []

    def wait(self, key: str, timeout: float = 30) -> dict[str, str]:
        deadline = time.monotonic() + timeout
        for _, m in self.messages:
            if key in m:
                return m
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                break
            fields = dict(line.split("=", 1) for line in data.decode().splitlines())
            self.messages.append((time.monotonic(), fields))
            if key in fields:
                return fields
        raise AssertionError(f"no {key} within {timeout}s: {self.messages}")

    def collect(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while True:
            try:
                self.wait("NOTHING", max(0.01, deadline - time.monotonic()))
            except AssertionError:
                return

    def close(self) -> None:
        self.sock.close()


def test_notify_protocol_ready_watchdog_stopping(emulator: EmulatorProcess, tenant: str,
                                                 tmp_path: Path) -> None:
    """READY=1 only once the mount answers, WATCHDOG=1 at half of WATCHDOG_USEC,
    STATUS= a line for people, STOPPING=1 on SIGTERM, then a clean exit."""
    where = tmp_path / "mnt"
    where.mkdir()
    notify = NotifySocket(tmp_path / "notify.sock")
    env = {**os.environ, "AIONVISION_API_KEY": tenant, "AIONVISION_BASE_URL": emulator.base_url,
           "NOTIFY_SOCKET": str(notify.path), "WATCHDOG_USEC": "1000000"}
    proc = subprocess.Popen([sys.executable, "-m", "aionfs", "mount", str(where), "--foreground",
                             "--cache-dir", str(tmp_path / "cache"), "--rpm", "0"],
                            env=env, stderr=subprocess.PIPE, text=True)
    try:
        ready = notify.wait("READY")
        assert os.path.ismount(where)  # the mount answered before READY was sent
        assert ready["READY"] == "1" and ready["MAINPID"] == str(proc.pid)
        assert ready["STATUS"].startswith(f"mounted {where}: ")
        notify.collect(3.0)
        pings = [t for t, m in notify.messages if "WATCHDOG" in m]
        assert len(pings) >= 4, notify.messages
        gaps = [b - a for a, b in zip(pings, pings[1:], strict=False)]
        assert all(0.25 < g < 1.0 for g in gaps), gaps  # every ~0.5 s, well inside 1 s
        proc.send_signal(signal.SIGTERM)
        assert notify.wait("STOPPING")["STOPPING"] == "1"
        assert proc.wait(30) == 0, proc.stderr.read() if proc.stderr else ""
        assert not os.path.ismount(where)
    finally:
        notify.close()
        if proc.poll() is None:
            subprocess.run(["fusermount3", "-u", "-z", str(where)], check=False)
            proc.kill()
            proc.wait(10)
        if proc.stderr is not None:
            proc.stderr.close()


@pytest.mark.daemon_log(r"SIGHUP: the configuration was not reloaded")
def test_sighup_reloads_the_profile(emulator: EmulatorProcess, tenant: str, tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """What can change while mounted changes; the rest is named; a broken file is refused
    and the mount keeps its settings; flags still beat the file."""
    home = tmp_path / "config"
    (home / "aionfs").mkdir(parents=True)
    conf = home / "aionfs" / "config.toml"
    conf.write_text("[profiles.default]\nwrite_back_delay = 3600\n")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home))
    m = mount(emulator, tenant, tmp_path / "mnt", tmp_path / "cache", "--poll-interval", "3600")
    log = next((tmp_path / "cache").glob("*/aionfs.log"))
    try:
        (m.path / "late.txt").write_text("uploaded once the delay is reloaded\n")
        time.sleep(1.5)
        assert os.getxattr(m.path / "late.txt", "user.aion.sync_state") == b"pending"
        conf.write_text("[profiles.default]\nwrite_back_delay = 0.5\nrank_names = true\n"
                        "poll_interval = 1\n")
        os.kill(m.pid, signal.SIGHUP)
        wait_for(lambda: os.getxattr(m.path / "late.txt", "user.aion.sync_state") == b"synced",
                 timeout=30)
        text = log.read_text()
        assert "write_back_delay 3600.0 → 0.5" in text and "rank_names needs a remount" in text
        assert "poll_interval" not in text.split("configuration reloaded", 1)[1]  # a flag
        conf.write_text("[profiles.default]\nwrite_back_delay = 'often'\n")
        os.kill(m.pid, signal.SIGHUP)
        wait_for(lambda: "the configuration was not reloaded" in log.read_text())
        assert aionfs("status", str(m.path), env=m.env).returncode == 0  # still serving
    finally:
        m.unmount()


def _verify(unit_text: str, name: str, tmp_path: Path) -> None:
    unit = tmp_path / name
    unit.write_text(unit_text)
    res = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True,
                         text=True, cwd=tmp_path)
    assert res.returncode == 0 and not res.stdout.strip() and not res.stderr.strip(), (
        res.stdout + res.stderr)


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
def test_shipped_units_verify_and_match_what_service_install_writes(tmp_path: Path) -> None:
    exe = shutil.which("aionfs") or str(Path(sys.executable).with_name("aionfs"))
    for name, template in (("aionfs.service", False), ("aionfs@.service", True)):
        shipped = (REPO / "systemd" / name).read_text()
        assert shipped == render_unit("%h/.local/bin/aionfs", template=template,
                                      origin=SHIPPED_ORIGIN), f"{name}: run make units"
        assert "AIONVISION_API_KEY" not in shipped and "aion_" not in shipped
        _verify(shipped.replace("%h/.local/bin/aionfs", exe), name, tmp_path)
        assert "Type=notify" in shipped and "WatchdogSec=" in shipped
        assert "NoNewPrivileges" not in shipped and "PrivateTmp" not in shipped


def test_service_install_writes_the_unit_and_uninstall_removes_it(
        emulator: EmulatorProcess, tmp_path: Path) -> None:
    home = tmp_path / "config"
    env = {**os.environ, "XDG_CONFIG_HOME": str(home), "AIONVISION_BASE_URL": emulator.base_url}
    env.pop("AIONVISION_API_KEY", None)
    (home / "aionfs").mkdir(parents=True)
    (home / "aionfs" / "config.toml").write_text(
        f'[profiles.work]\nmountpoint = "{tmp_path / "Aion"}"\n')
    res = aionfs("service", "install", "--profile", "work", env=env)
    assert res.returncode == 1 and "run 'aionfs login' first" in res.stderr
    key = emulator.new_tenant()
    login = subprocess.run([sys.executable, "-m", "aionfs", "login", "--profile", "work"],
                           env=env, input=key + "\n", capture_output=True, text=True)
    assert login.returncode == 0, login.stderr
    bookmarks = home / "gtk-3.0" / "bookmarks"
    bookmarks.parent.mkdir(parents=True)
    bookmarks.write_text("file:///srv/photos Photos\n")  # the user's own: kept
    res = aionfs("service", "install", "--profile", "work", "--bookmark", env=env)
    assert res.returncode == 0, res.stderr
    assert bookmarks.read_text() == f"file:///srv/photos Photos\nfile://{tmp_path}/Aion Aion\n"
    assert aionfs("service", "install", "--profile", "work", "--bookmark", env=env
                  ).returncode == 0
    assert bookmarks.read_text().count("/Aion Aion") == 1  # once
    unit = home / "systemd" / "user" / "aionfs@.service"
    assert f"wrote {unit}" in res.stdout
    assert "systemctl --user enable --now aionfs@work.service" in res.stdout
    text = unit.read_text()
    assert key not in text and "--profile %i" in text
    if shutil.which("systemd-analyze"):
        _verify(text, "aionfs@.service", tmp_path)
    res = aionfs("service", "uninstall", "--profile", "work", env=env)
    assert res.returncode == 0 and f"removed {unit}" in res.stdout and not unit.exists()
    assert bookmarks.read_text() == "file:///srv/photos Photos\n"


def test_a_deep_runtime_dir_still_gets_a_control_socket(emulator: EmulatorProcess, tenant: str,
                                                        tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A socket path over sun_path's 108 bytes (a long $XDG_CACHE_HOME) must not stop
    the mount, nor `aionfs status` from reaching it."""
    deep = tmp_path / ("a-rather-long-directory-name-" * 3) / "cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(deep))
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    m = mount(emulator, tenant, tmp_path / "mnt", tmp_path / "cache")
    try:
        daemon = find_daemon(mountpoint=m.path)
        assert daemon is not None and len(str(daemon.socket)) > 108
        res = aionfs("status", str(m.path), "--json", env=m.env)
        assert res.returncode == 0, res.stderr
        assert json.loads(res.stdout)["mount"]["state"] == "mounted"
    finally:
        m.unmount()
