"""Watched folders: files that appear locally are uploaded once, however they appear."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import EmulatorProcess
from tests.media import image_bytes
from tests.mounting import Mount, mount, wait_for, workspace

pytestmark = pytest.mark.skipif(not os.path.exists("/dev/fuse"), reason="needs /dev/fuse")


class Watcher:
    """`aionfs watch` as a process we started (and stop)."""

    def __init__(self, env: dict[str, str], cache: Path, *args: str) -> None:
        self.log = cache / "watch.log"
        cache.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "aionfs", "watch", *args, "--cache-dir", str(cache),
                 "--rpm", "0", "--settle", "0.5"], env=env, stdout=log, stderr=log)

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(30)

    def text(self) -> str:
        return self.log.read_text()


@pytest.fixture
def tenant(emulator: EmulatorProcess) -> str:
    return emulator.new_tenant()


@pytest.fixture
def env(emulator: EmulatorProcess, tenant: str) -> dict[str, str]:
    return {**os.environ, "AIONVISION_API_KEY": tenant, "AIONVISION_BASE_URL": emulator.base_url}


@pytest.fixture
def watcher(env: dict[str, str], tmp_path: Path) -> Iterator[Watcher]:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    w = Watcher(env, tmp_path / "cache", str(inbox), "--to", "Inbox/Scans", "--tags", "scan,new")
    try:
        yield w
    finally:
        w.stop(signal.SIGKILL)


def names(emulator: EmulatorProcess, tenant: str) -> list[str]:
    return sorted(workspace(emulator, tenant))


def test_files_are_uploaded_once_however_they_appear(watcher: Watcher, tmp_path: Path,
                                                     emulator: EmulatorProcess,
                                                     tenant: str) -> None:
    inbox = tmp_path / "inbox"
    photo = image_bytes((200, 40, 40))
    # moved in, whole
    outside = tmp_path / "outside.jpg"
    outside.write_bytes(photo)
    os.rename(outside, inbox / "moved in.jpg")
    # written slowly: open for minutes at a scanner's pace, pauses longer than --settle
    with open(inbox / "slow.pdf", "wb") as f:
        for i in range(4):
            f.write(b"%PDF-1.4\n" if i == 0 else f"% page {i}\n".encode() * 500)
            f.flush()
            time.sleep(1.6)  # unchanged for longer than two looks at --settle 0.5
        assert "slow.pdf" not in " ".join(names(emulator, tenant))  # not while open
        f.write(b"%%EOF\n")
    # a browser's partial download, renamed when done; a temp name, renamed after writing
    (inbox / "report.pdf.part").write_bytes(b"%PDF-1.4\n% partial\n")
    time.sleep(1.5)
    os.rename(inbox / "report.pdf.part", inbox / "report.pdf")
    (inbox / "scan0001.tmp").write_bytes(b"%PDF-1.4\n% the scanner's temp file\n")
    os.rename(inbox / "scan0001.tmp", inbox / "Invoice.pdf")
    # a subfolder, and what the workspace refuses
    (inbox / "2026").mkdir()
    (inbox / "2026" / "site.png").write_bytes(image_bytes((10, 120, 10), fmt="PNG"))
    (inbox / "setup.exe").write_bytes(b"MZ not for the library")
    expected = {"Inbox/Scans/moved in.jpg", "Inbox/Scans/slow.pdf", "Inbox/Scans/report.pdf",
                "Inbox/Scans/Invoice.pdf", "Inbox/Scans/2026/site.png"}
    wait_for(lambda: set(names(emulator, tenant)) >= expected, timeout=60)
    time.sleep(2)  # nothing more comes
    got = workspace(emulator, tenant)
    assert sorted(got) == sorted(expected)
    import hashlib

    assert got["Inbox/Scans/moved in.jpg"][1] == hashlib.sha256(photo).hexdigest()
    assert got["Inbox/Scans/slow.pdf"][1] == hashlib.sha256(
        (inbox / "slow.pdf").read_bytes()).hexdigest()
    assert "setup.exe skipped: the workspace does not take this type" in watcher.text()
    # the tags came along
    from tests.mounting import api_call

    class K:
        key = tenant

    item = api_call(emulator, K(), lambda c: c.get_file(got["Inbox/Scans/Invoice.pdf"][0]))
    assert sorted(item.tags) == ["new", "scan"]
    # renaming a file already uploaded is not a new upload
    os.rename(inbox / "Invoice.pdf", inbox / "Invoice 2026-11.pdf")
    (inbox / "late.txt").write_text("a marker written after the rename\n")
    wait_for(lambda: "Inbox/Scans/late.txt" in names(emulator, tenant), timeout=30)
    assert len(workspace(emulator, tenant)) == len(expected) + 1


def test_a_restart_loses_nothing_and_repeats_nothing(env: dict[str, str], tmp_path: Path,
                                                     emulator: EmulatorProcess,
                                                     tenant: str) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    cache = tmp_path / "cache"
    first = Watcher(env, cache, str(inbox), "--to", "Camera")
    try:
        for i in range(12):
            (inbox / f"IMG_{i:04}.jpg").write_bytes(image_bytes((i * 20, 90, 200 - i * 10)))
        wait_for(lambda: len(workspace(emulator, tenant)) >= 3, timeout=60)
    finally:
        first.stop(signal.SIGKILL)  # anywhere in the middle
    for i in range(12, 16):  # while nothing watches
        (inbox / f"IMG_{i:04}.jpg").write_bytes(image_bytes((i * 20, 30, 60)))
    second = Watcher(env, cache, str(inbox), "--to", "Camera")
    try:
        want = {f"Camera/IMG_{i:04}.jpg" for i in range(16)}
        wait_for(lambda: set(workspace(emulator, tenant)) >= want, timeout=90)
        time.sleep(2)
        assert sorted(workspace(emulator, tenant)) == sorted(want)  # no '#2': no duplicate
    finally:
        assert second.stop() == 0


def test_delete_after_upload_removes_only_what_the_workspace_has(
        env: dict[str, str], tmp_path: Path, emulator: EmulatorProcess, tenant: str) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    w = Watcher(env, tmp_path / "cache", str(inbox), "--delete-after-upload")
    try:
        (inbox / "a.jpg").write_bytes(image_bytes((1, 2, 3)))
        (inbox / "b.partial.crdownload").write_bytes(b"still downloading")
        wait_for(lambda: not (inbox / "a.jpg").exists(), timeout=60)
        assert names(emulator, tenant) == ["a.jpg"]
        assert (inbox / "b.partial.crdownload").exists()  # never taken, never removed
    finally:
        w.stop()


def test_one_uploader_per_workspace(env: dict[str, str], tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    w = Watcher(env, tmp_path / "cache", str(inbox))
    try:
        wait_for(lambda: "watching" in w.text(), timeout=30)
        time.sleep(1)
        other = subprocess.run([sys.executable, "-m", "aionfs", "watch", str(inbox),
                                "--cache-dir", str(tmp_path / "cache"), "--rpm", "0"],
                               env=env, capture_output=True, text=True, timeout=30)
        assert other.returncode == 1 and "is already uploading for this workspace" in \
            other.stderr
    finally:
        w.stop()


def test_the_mount_runs_the_profiles_watches_and_shows_the_files_at_once(
        emulator: EmulatorProcess, tenant: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    scans, camera = tmp_path / "scans", tmp_path / "camera"
    scans.mkdir()
    camera.mkdir()
    home = tmp_path / "config"
    (home / "aionfs").mkdir(parents=True)
    (home / "aionfs" / "config.toml").write_text(
        f'[[profiles.default.watch]]\ndir = "{scans}"\nto = "Scans"\n')
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home))
    m: Mount = mount(emulator, tenant, tmp_path / "mnt", tmp_path / "cache",
                     "--write-back-delay", "60")
    try:
        (scans / "contract.pdf").write_bytes(b"%PDF-1.4\n% signed\n")
        wait_for(lambda: (m.path / "Scans" / "contract.pdf").exists(), timeout=30)
        assert (m.path / "Scans" / "contract.pdf").read_bytes() == b"%PDF-1.4\n% signed\n"
        # `aionfs watch` while the mount runs: the mount takes the watch on
        res = subprocess.run([sys.executable, "-m", "aionfs", "watch", str(camera), "--to",
                              "Camera", "--cache-dir", str(tmp_path / "cache")], env=m.env,
                             capture_output=True, text=True, timeout=30)
        assert res.returncode == 0, res.stderr
        assert "now watches" in res.stdout
        (camera / "pole.jpg").write_bytes(image_bytes((5, 5, 200)))
        wait_for(lambda: (m.path / "Camera" / "pole.jpg").exists(), timeout=30)
        status = json.loads(subprocess.run(
            [sys.executable, "-m", "aionfs", "status", str(m.path), "--json"], env=m.env,
            capture_output=True, text=True, check=True).stdout)
        assert sorted(w["dir"] for w in status["watches"]) == sorted([str(scans), str(camera)])
        flushed = subprocess.run([sys.executable, "-m", "aionfs", "flush", str(m.path)],
                                 env=m.env, capture_output=True, text=True, timeout=120)
        assert flushed.returncode == 0, flushed.stderr
        assert sorted(workspace(emulator, tenant)) == ["Camera/pole.jpg", "Scans/contract.pdf"]
    finally:
        m.unmount()
