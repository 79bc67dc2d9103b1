"""`aionfs sync` and `aionfs ls` as processes: progress, summary, kill -9 and resume."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import trio

from aionfs.store import Store
from tests.conftest import EmulatorProcess, make_client
from tests.sync_helpers import assert_same, remote_shape


def env_for(emulator: EmulatorProcess, key: str) -> dict[str, str]:
    return {**os.environ, "AIONVISION_API_KEY": key, "AIONVISION_BASE_URL": emulator.base_url,
            "AIONFS_PLAN": "enterprise"}


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "aionfs", *args], env=env,
                          capture_output=True, text=True, timeout=300)


def store_file(cache: Path) -> Path:
    (path,) = cache.glob("*/metadata.sqlite3")
    return path


async def test_sync_summary_and_ls(emulator: EmulatorProcess, tmp_path: Path) -> None:
    key = emulator.new_tenant(plan="enterprise")
    emulator.bulk(key, files=250, folders=3)
    env = env_for(emulator, key)
    res = cli(env, "sync", "--cache-dir", str(tmp_path))
    assert res.returncode == 0, res.stderr
    assert "250 added" in res.stdout and "requests" in res.stdout
    assert os.environ.get("AIONVISION_API_KEY", key) not in res.stdout + res.stderr
    listing = cli(env, "ls", "--cache-dir", str(tmp_path))
    assert listing.returncode == 0
    names = listing.stdout.splitlines()
    assert {"Bulk 0000/", "Bulk 0001/", "Bulk 0002/"} <= set(names)
    inside = cli(env, "ls", "-l", "--cache-dir", str(tmp_path), "Bulk 0001")
    assert inside.returncode == 0 and "bulk" in inside.stdout and ".jpg" in inside.stdout
    missing = cli(env, "ls", "--cache-dir", str(tmp_path), "No such")
    assert missing.returncode == 1 and "no such file or folder" in missing.stderr
    again = cli(env, "sync", "--cache-dir", str(tmp_path))  # a poll: cheap
    assert again.returncode == 0 and "0 added" in again.stdout


async def test_kill_mid_crawl_then_resume(emulator: EmulatorProcess, tmp_path: Path) -> None:
    key = emulator.new_tenant(plan="enterprise")
    emulator.bulk(key, files=600, folders=40)
    emulator.set_faults(key, "latency:15ms")
    env = env_for(emulator, key)
    proc = subprocess.Popen([sys.executable, "-m", "aionfs", "sync", "--full", "--cache-dir",  # noqa: ASYNC220
                             str(tmp_path)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        crawled = 0
        while time.monotonic() < deadline and crawled < 8:
            await trio.sleep(0.05)
            try:
                db = sqlite3.connect(store_file(tmp_path), timeout=0.1)
                crawled = db.execute("SELECT count(*) FROM crawl").fetchone()[0]
                db.close()
            except (ValueError, sqlite3.OperationalError):
                continue
        assert crawled >= 8, "the crawl did not get going"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    emulator.set_faults(key, "")
    since = len(emulator.requests(key))
    res = cli(env, "sync", "--cache-dir", str(tmp_path))  # resumes the open crawl
    assert res.returncode == 0, res.stderr
    resumed = [e for e in emulator.requests(key)[since:]
               if e["kind"] == "api" and "folder_id=" in e["query"]]
    assert len(resumed) <= 40 - 8 + 1  # folders crawled before the kill are not listed again
    store = Store(store_file(tmp_path))
    try:
        assert store.get_meta("crawl_open") is None
        async with make_client(emulator, key) as client:
            assert_same(store, await remote_shape(client))
    finally:
        store.close()
