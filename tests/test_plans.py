"""The FREE plan (10 requests a minute, the default for a new user), end to end.

A user's operation never fails for want of request budget while the API
answers: it waits its turn in the limiter (before background work), and
only an API that does not answer gets EIO. The test reads more never-read
files than one minute of the plan allows, with the mount's read timeout far
shorter than the wait, and expects every byte and no error.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests.conftest import EmulatorProcess
from tests.mounting import VIEWS, mount

pytestmark = pytest.mark.skipif(not os.path.exists("/dev/fuse"), reason="needs /dev/fuse")


def test_reads_on_the_free_plan_wait_for_budget_and_never_fail(emulator: EmulatorProcess,
                                                               tmp_path: Path) -> None:
    key = emulator.new_tenant(plan="free", rpm=None)  # the service enforces 10 a minute
    emulator.bulk(key, files=14, folders=1)
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
    answers = [e["status"] for e in emulator.requests(key)]
    assert 429 not in answers
    log = next((tmp_path / "c").glob("*/aionfs.log")).read_text()
    assert log.count("wait for the plan's request budget") >= 1
    assert "EIO" not in log
