"""Plans end to end: the FREE plan's budget, and the plan learnt from the service.

The FREE plan (10 requests a minute) is the default for a new user.

A user's operation never fails for want of request budget while the API
answers: it waits its turn in the limiter (before background work), and
only an API that does not answer gets EIO. The test reads more never-read
files than one minute of the plan allows, with the mount's read timeout far
shorter than the wait, and expects every byte and no error.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from aionfs.api import AionClient
from aionfs.store import Store
from tests.conftest import EmulatorProcess
from tests.mounting import VIEWS, Mount, mount
from tests.workflow import Session, make_library

pytestmark = pytest.mark.skipif(not os.path.exists("/dev/fuse"), reason="needs /dev/fuse")


def test_reads_on_the_free_plan_wait_for_budget_and_never_fail(emulator: EmulatorProcess,
                                                               tmp_path: Path) -> None:
    key = emulator.new_tenant(plan="free", rpm=None)  # the service enforces 10 a minute
    emulator.bulk(key, files=14, folders=1)
    # list items' URLs are not the originals here: each first read costs a request
    emulator.url_policy(key, list_full_url="large")
    m = mount(emulator, key, tmp_path / "m", tmp_path / "c", "--plan", "free", "--rpm", "10",
              "--poll-interval", "30", "--revalidate-interval", "600", "--read-timeout", "2")
    try:
        files = []
        for d, dirs, names in os.walk(m.path):  # the tree; the virtual folders too, once
            files += [Path(d, n) for n in names if Path(d) == m.path
                      or Path(d).relative_to(m.path).parts[0] not in VIEWS]
            if Path(d) != m.path:
                dirs[:] = [x for x in dirs if Path(d).relative_to(m.path).parts[0] not in VIEWS]
        assert len(files) == 14
        started = time.monotonic()
        for path in files:  # each first read costs a download request
            assert len(path.read_bytes()) == path.stat().st_size > 0
        waited = time.monotonic() - started
    finally:
        m.unmount()
    # more requests than a minute of the plan allows: reads waited (far longer than the
    # 2 s read timeout) for budget, and none failed; the service never had to refuse one
    assert waited > 10, waited
    seen = emulator.requests(key)
    answers = [e["status"] for e in seen]
    assert 429 not in answers, [(round(e["t"] - seen[0]["t"], 2), e["kind"], e["path"][-30:],
                                 e["status"]) for e in seen if e["kind"] == "api"]
    log = next((tmp_path / "c").glob("*/aionfs.log")).read_text()
    assert log.count("wait for the plan's request budget") >= 1
    assert "EIO" not in log


@pytest.mark.parametrize("plan", ["free", "professional"])
def test_the_plan_is_learnt_from_the_service_and_remembered(emulator: EmulatorProcess,
                                                            tmp_path: Path, plan: str) -> None:
    """Without --plan the mount asks the service (GET /usage/summary) and works within
    the answer; status says where the plan came from; a flag still wins."""
    key = emulator.new_tenant(plan=plan)

    def status(m: Mount) -> dict[str, Any]:
        res = subprocess.run([sys.executable, "-m", "aionfs", "status", str(m.path), "--json"],
                             env=m.env, capture_output=True, text=True, timeout=30)
        assert res.returncode == 0, res.stderr
        return json.loads(res.stdout)  # type: ignore[no-any-return]

    m = mount(emulator, key, tmp_path / "m", tmp_path / "c")
    try:
        assert status(m)["plan"] == {"name": plan, "from": "the service"}
    finally:
        m.unmount()
    m = mount(emulator, key, tmp_path / "m", tmp_path / "c", "--plan", "starter")
    try:
        assert status(m)["plan"] == {"name": "starter", "from": "command line"}
    finally:
        m.unmount()
    store = Store(next((tmp_path / "c").glob("*/metadata.sqlite3")))
    try:
        assert store.get_meta("plan") == plan  # remembered for a start without the service
    finally:
        store.close()


async def test_the_client_reads_the_plan_name(client: AionClient) -> None:
    assert await client.plan_name() == "professional"


def test_a_new_users_session_on_the_free_plan_has_no_error_and_spends_the_floor(
        emulator: EmulatorProcess, tmp_path: Path) -> None:
    """A new user on FREE (the service enforcing 10 requests a minute; the mount
    given no plan and no option): mount, browse, `cp -r` the folder out, open it in
    a file manager, `cp -r` 30 photos in, search, colors, tags, rename, delete. No
    error anywhere, and each action within its floor of API requests
    (docs/requests.md)."""
    lib = make_library(emulator, "free", photos=30)
    s = Session(emulator, lib, tmp_path, "free")
    try:
        s.step("mount (first crawl)", s.mount_floor(), s.do_mount)
        s.step("browse the tree", 0, s.browse)
        s.step("cp -r the 30 photos out", 0, lambda: s.copy_out(tmp_path / "out"))
        s.step("open the folder in a file manager", 0, s.open_in_file_manager)
        s.step("cp -r 30 photos in", s.copy_floor(30), lambda: s.copy_in(30, tmp_path / "src"))
        s.step("search", 1, s.search)
        s.step("colors", 2, s.colors)
        s.step("tags", 0, s.tags)
        s.step("rename", 1, s.rename)
        s.step("delete", 1, s.delete)
        log = next((tmp_path / "c").glob("*/aionfs.log")).read_text()
    finally:
        s.unmount()
    report = "\n".join(f"{st.action}: {st.requests} requests (floor {st.floor}), "
                       f"{st.seconds:.1f} s {st.errors} {st.calls}" for st in s.steps)
    assert all(not st.errors for st in s.steps), report
    assert all(st.within for st in s.steps), report
    assert 429 not in [e["status"] for e in emulator.requests(lib.key)], report
    assert " ERROR " not in log and "EIO" not in log, log
