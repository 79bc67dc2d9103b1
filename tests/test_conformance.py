"""`aionfs doctor --api` against the emulator: every operation aionfs relies on is
called once and each answer held to the vendored spec; a deliberately wrong answer
is named as such; the write test leaves nothing behind; a small plan is not sent
into its rate limit."""

from __future__ import annotations

import os
import re
from pathlib import Path
from types import SimpleNamespace

from tests.conftest import EmulatorProcess
from tests.media import image_bytes
from tests.mounting import api_call
from tests.test_config import aionfs, config_home, write_config  # noqa: F401 (a fixture)


def _env(config_home: Path, emulator: EmulatorProcess, key: str) -> dict[str, str]:  # noqa: F811
    mnt = config_home / "mnt"
    mnt.mkdir(exist_ok=True)
    write_config(config_home, f'[profiles.default]\nmountpoint = "{mnt}"\n')
    return {**os.environ, "XDG_CONFIG_HOME": str(config_home),
            "AIONVISION_BASE_URL": emulator.base_url, "AIONVISION_API_KEY": key}


def _table(stdout: str) -> dict[str, tuple[str, str]]:
    """operation → (status, result) from the printed table."""
    rows = {}
    for line in stdout.splitlines():
        m = re.match(r"^((?:GET|POST|PATCH|DELETE) \S+)\s+(\S+)\s+(\d*)\s+(.*)$", line)
        if m:
            rows[m[1]] = (m[2], m[4])
    return rows


def test_doctor_api_finds_every_answer_conforming_and_names_a_wrong_one(
        config_home: Path, emulator: EmulatorProcess) -> None:  # noqa: F811
    key = emulator.new_tenant(plan="enterprise", rpm=0)
    lib = SimpleNamespace(key=key)
    folder = api_call(emulator, lib, lambda c: c.create_folder("Site"))
    up = api_call(emulator, lib, lambda c: c.upload_file(image_bytes(), "a.jpg"))
    api_call(emulator, lib, lambda c: c.move_files([up.image_id], folder.id))
    before = len(emulator.requests(key))
    res = aionfs("doctor", "--api", env=_env(config_home, emulator, key))
    rows = _table(res.stdout)
    assert res.returncode == 0, res.stdout
    for op in ("GET /api/v2/folders", "GET /api/v2/user-files",
               "GET /api/v2/user-files/{image_id}", "GET /api/v2/user-files/{image_id}/download",
               "GET /api/v2/folders/{folder_id}", "GET /api/v2/usage/summary",
               "GET /api/v2/uploads/quota-check", "GET /api/v2/colors/families",
               "POST /api/v2/agents/search/images"):
        assert rows.get(op, ("", ""))[1] == "conforms", (op, res.stdout)
    assert rows["GET /api/v2/user-files/{image_id}/download"][0] == "302"
    api_requests = [r for r in emulator.requests(key)[before:] if r["kind"] == "api"]
    assert len(api_requests) <= 15 + 2  # the probe's budget, and doctor's own two checks

    emulator.set_faults(key, "nonconforming:1")
    try:
        res = aionfs("doctor", "--api", env=_env(config_home, emulator, key))
    finally:
        emulator.set_faults(key, "")
    rows = _table(res.stdout)
    assert res.returncode == 1
    status, result = rows["GET /api/v2/folders"]
    assert status == "200" and result.startswith("differs:") and "folders" in result, result


def test_doctor_api_write_test_leaves_nothing_behind(
        config_home: Path, emulator: EmulatorProcess) -> None:  # noqa: F811
    key = emulator.new_tenant(plan="enterprise", rpm=0)
    lib = SimpleNamespace(key=key)
    site = api_call(emulator, lib, lambda c: c.create_folder("Site"))
    api_call(emulator, lib, lambda c: c.create_folder("Scans", site.id))
    res = aionfs("doctor", "--api", "--write-test", "Site/Scans",
                 env=_env(config_home, emulator, key))
    rows = _table(res.stdout)
    assert res.returncode == 0, res.stdout
    for op in ("POST /api/v2/user-files/upload/stream", "POST /api/v2/folders/move-files",
               "PATCH /api/v2/user-files/{image_id}", "DELETE /api/v2/user-files/{image_id}"):
        assert rows.get(op, ("", ""))[1] == "conforms", (op, res.stdout)
    left = api_call(emulator, lib, lambda c: c.list_files(limit=10))
    assert left.total_count == 0  # the test image is gone
    res = aionfs("doctor", "--api", "--write-test", "No/Such", env=_env(config_home, emulator,
                                                                        key))
    assert res.returncode == 1 and "no such folder" in res.stdout


def test_doctor_api_on_free_skips_what_the_minute_cannot_hold(
        config_home: Path, emulator: EmulatorProcess) -> None:  # noqa: F811
    key = emulator.new_tenant(plan="free")  # the service names FREE: 10 requests a minute
    lib = SimpleNamespace(key=key)
    folder = api_call(emulator, lib, lambda c: c.create_folder("Site"))
    up = api_call(emulator, lib, lambda c: c.upload_file(image_bytes(), "a.jpg"))
    api_call(emulator, lib, lambda c: c.move_files([up.image_id], folder.id))
    res = aionfs("doctor", "--api", env=_env(config_home, emulator, key))
    rows = _table(res.stdout)
    assert any(r[1].startswith("skipped") for r in rows.values()), res.stdout
    assert not any(r[0] == "429" for r in rows.values()), res.stdout
    assert res.returncode == 0, res.stdout
