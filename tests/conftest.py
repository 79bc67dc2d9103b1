"""Shared fixtures: one real emulator server per test session, a workspace per test.

The emulator runs as a subprocess (`aionfs emulator --port 0 --json`) on
127.0.0.1. Tests get isolation from tenants instead of servers: each test
creates its own workspace (API key) through the emulator's admin routes, so
one server serves the whole session and tests never see each other's data.
Every request of the `client` fixture and every answer it gets are checked
against the vendored OpenAPI subset.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from aionfs.api import AionClient, ApiSettings
from aionfs.api.contract import Contract
from aionfs.api.retry import RetryPolicy

CONTRACT = Contract()

# Whatever configuration the machine's user has must not reach the tests (or the
# daemons they start): a config dir of the session's own, empty.
_CONFIG_HOME = __import__("tempfile").mkdtemp(prefix="aionfs-test-config-")
os.environ["XDG_CONFIG_HOME"] = _CONFIG_HOME
# Nor may the mounts' seeded thumbnails land in the user's own cache.
os.environ["XDG_CACHE_HOME"] = __import__("tempfile").mkdtemp(prefix="aionfs-test-cache-")


@dataclass
class EmulatorProcess:
    proc: subprocess.Popen[str]
    base_url: str
    api_key: str
    data_dir: Path
    started: list[str] = field(default_factory=list)

    @property
    def root(self) -> str:
        return self.base_url.rsplit("/api/v2", 1)[0]

    def new_tenant(self, plan: str = "professional", rpm: int | None = 0,
                   quota: int | None = None, processing_delay: float = 0.0) -> str:
        r = httpx.post(f"{self.root}/_emulator/tenants",
                       json={"plan": plan, "rpm": rpm, "quota": quota,
                             "processing_delay": processing_delay})
        r.raise_for_status()
        return r.json()["api_key"]  # type: ignore[no-any-return]

    def patch_tenant(self, key: str, **fields: Any) -> None:
        r = httpx.patch(f"{self.root}/_emulator/tenant", json=fields,
                        headers={"Authorization": f"Bearer {key}"})
        r.raise_for_status()

    def set_faults(self, key: str, spec: str, seed: int = 0) -> None:
        r = httpx.put(f"{self.root}/_emulator/tenant/faults", json={"spec": spec, "seed": seed},
                      headers={"Authorization": f"Bearer {key}"})
        r.raise_for_status()

    def url_policy(self, key: str, **fields: Any) -> None:
        """How the workspace's URLs are presigned: lifetime (s), list_full_url."""
        r = httpx.patch(f"{self.root}/_emulator/tenant/urls", json=fields,
                        headers={"Authorization": f"Bearer {key}"})
        r.raise_for_status()

    def bulk(self, key: str, files: int, folders: int) -> None:
        r = httpx.post(f"{self.root}/_emulator/tenant/bulk", json={"files": files,
                                                                   "folders": folders},
                       headers={"Authorization": f"Bearer {key}"}, timeout=600)
        r.raise_for_status()

    def requests(self, key: str, since: int = 0) -> list[dict[str, Any]]:
        """The workspace's request log (API and storage), from its `since`-th entry:
        `since = len(emulator.requests(key))` marks a point to count from."""
        r = httpx.get(f"{self.root}/_emulator/requests", params={"since": 0},
                      headers={"Authorization": f"Bearer {key}"})
        r.raise_for_status()
        return r.json()["entries"][since:]  # type: ignore[no-any-return]


def start_emulator(data_dir: Path, *args: str) -> EmulatorProcess:
    cmd = [sys.executable, "-m", "aionfs", "--log-level", "warning", "emulator",
           "--data", str(data_dir), "--port", "0", "--json", *args]
    # stderr goes to a file: a pipe nobody reads would block a chatty server.
    with open(data_dir / "stderr.log", "ab") as errlog:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=errlog, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        proc.wait(5)
        proc.stdout.close()
        err = (data_dir / "stderr.log").read_text()
        raise RuntimeError(f"emulator failed to start: {err}")
    banner = json.loads(line)
    return EmulatorProcess(proc=proc, base_url=banner["base_url"], api_key=banner["api_key"],
                           data_dir=data_dir)


def stop_emulator(emu: EmulatorProcess) -> str:
    """SIGTERM the process we started, wait, and return its stderr."""
    if emu.proc.poll() is None:
        emu.proc.send_signal(signal.SIGTERM)
        try:
            emu.proc.wait(10)
        except subprocess.TimeoutExpired:
            emu.proc.kill()
            emu.proc.wait(5)
    if emu.proc.stdout is not None:
        emu.proc.stdout.close()
    return (emu.data_dir / "stderr.log").read_text()


@pytest.fixture(scope="session")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorProcess]:
    emu = start_emulator(tmp_path_factory.mktemp("emulator"), "--processing-delay", "0",
                         "--semantic-latency", "0", "--plan", "professional")
    yield emu
    stderr = stop_emulator(emu)
    assert "Traceback" not in stderr, f"the emulator logged a crash:\n{stderr}"


def contract_hooks() -> dict[str, list[Any]]:
    async def on_request(request: httpx.Request) -> None:
        body = await request.aread()
        CONTRACT.check_request(request.method, str(request.url),
                               request.headers.get("content-type", ""), body)

    async def on_response(response: httpx.Response) -> None:
        await response.aread()
        CONTRACT.check_response(response.request.method, str(response.request.url),
                                response.status_code,
                                response.headers.get("content-type", ""), response.content)

    return {"request": [on_request], "response": [on_response]}


def make_client(emulator: EmulatorProcess, key: str, *, plan: str = "professional",
                rpm: int | None = None, unlimited: bool = True,
                retry: RetryPolicy | None = None) -> AionClient:
    settings = ApiSettings.from_env(api_key=key, base_url=emulator.base_url, environ={},
                                    plan=plan, requests_per_minute=rpm)
    return AionClient(settings, event_hooks=contract_hooks(), unlimited=unlimited,
                      retry=retry or RetryPolicy(base_delay=0.05, max_delay=1.0))


@pytest.fixture
def tenant_key(emulator: EmulatorProcess) -> str:
    return emulator.new_tenant()


@pytest.fixture
async def client(emulator: EmulatorProcess, tenant_key: str) -> AsyncIterator[AionClient]:
    async with make_client(emulator, tenant_key) as c:
        yield c


@pytest.fixture(autouse=True)
def _no_real_api_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never pick up a developer's real key or server."""
    for var in ("AIONVISION_API_KEY", "AIONVISION_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    os.environ.setdefault("NO_COLOR", "1")


#: what a daemon's log may say at WARNING or above without failing its test:
#: `@pytest.mark.daemon_log(r"pattern", ...)` on tests that provoke it on purpose
LOG_PROBLEM = re.compile(r"^\S+ \S+ (WARNING|ERROR|CRITICAL) |^Traceback ")


def daemon_logs(root: Path) -> list[Path]:
    """The daemon logs of the caches directly under a test's tmp_path (cache dir,
    then one directory per workspace), never walking into a mountpoint."""
    found = []
    for first in _dirs(root):
        for second in _dirs(first):
            log = second / "aionfs.log"
            if log.is_file():
                found.append(log)
    return found


def _dirs(path: Path) -> list[Path]:
    try:
        entries = list(os.scandir(path))
    except OSError:
        return []
    return [Path(e.path) for e in entries
            if e.is_dir(follow_symlinks=False) and not os.path.ismount(e.path)]


@pytest.fixture(autouse=True)
def _daemon_logs_hold_no_surprise(request: pytest.FixtureRequest) -> Iterator[None]:
    """After a test that mounted: every WARNING/ERROR line (and traceback) of its
    daemons' logs is one the test declared with @pytest.mark.daemon_log."""
    yield
    tmp = request.node.funcargs.get("tmp_path")
    if tmp is None:
        return
    allowed = [re.compile(p) for mark in request.node.iter_markers("daemon_log")
               for p in mark.args]
    surprises = []
    for log in daemon_logs(tmp):
        for line in log.read_text(errors="replace").splitlines():
            if LOG_PROBLEM.search(line) and not any(p.search(line) for p in allowed):
                surprises.append(f"{log.parent.parent.name}/…/aionfs.log: {line[:300]}")
    if surprises:
        pytest.fail("the daemon logged what this test does not expect (declare it with "
                    "@pytest.mark.daemon_log if it is the point):\n" + "\n".join(surprises),
                    pytrace=False)
