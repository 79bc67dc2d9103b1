"""Mounting from tests: a daemon we start, wait for, and always unmount."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import trio

from aionfs.api import AionClient
from tests.conftest import EmulatorProcess, make_client

T = TypeVar("T")
#: the virtual folders at the root of every mount
VIEWS = {"search", "text", "colors", "tags", "by-date"}


class HasKey(Protocol):
    key: str


@dataclass
class Mount:
    path: Path
    cache: Path
    env: dict[str, str]
    pid: int

    def status(self) -> dict[str, Any]:
        """`aionfs status --json` of this mount."""
        import json

        res = subprocess.run([sys.executable, "-m", "aionfs", "status", str(self.path),
                              "--json"], env=self.env, capture_output=True, text=True,
                             timeout=30, check=True)
        return dict(json.loads(res.stdout))

    def flush(self, timeout: float = 60) -> None:
        """`aionfs flush`: everything the mount would upload is uploaded now (the
        write-back delay skipped). The positive marker a check that something was
        *not* uploaded waits on: had it been queued, it would be in the workspace."""
        subprocess.run([sys.executable, "-m", "aionfs", "flush", str(self.path),
                        "--timeout", str(timeout)], env=self.env, capture_output=True,
                       text=True, timeout=timeout + 30, check=True)

    def unmount(self) -> None:
        if os.path.ismount(self.path):
            subprocess.run(["fusermount3", "-u", "-z", str(self.path)], check=False)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                os.kill(self.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)
        os.kill(self.pid, 9)  # only the daemon this test started


#: what most tests mount with: no client rate limit, changes seen at once, a quick EIO
TEST_OPTIONS = ("--rpm", "0", "--poll-interval", "0.3", "--revalidate-interval", "1",
                "--read-timeout", "2", "--cache-size", "64M")


def mount(emulator: EmulatorProcess, key: str, where: Path, cache: Path,
          *extra: str, options: tuple[str, ...] = TEST_OPTIONS,
          env: dict[str, str] | None = None) -> Mount:
    """`options=()` mounts as a user would (the plan learnt, default intervals)."""
    env = {**(env or os.environ), "AIONVISION_API_KEY": key,
           "AIONVISION_BASE_URL": emulator.base_url}
    with contextlib.suppress(FileExistsError):  # (a dead mount left there answers ENOTCONN)
        os.mkdir(where)
    res = subprocess.run([sys.executable, "-m", "aionfs", "mount", str(where), "--cache-dir",
                          str(cache), *options, *extra], env=env, capture_output=True,
                         text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    pid = int(re.search(r"daemon pid (\d+)", res.stdout)[1])  # type: ignore[index]
    return Mount(where, cache, env, pid)


def api_call(emulator: EmulatorProcess, library: HasKey,
             fn: Callable[[AionClient], Awaitable[T]]) -> T:
    """One API call from a (synchronous, file-using) test."""
    async def go() -> T:
        async with make_client(emulator, library.key) as c:
            return await fn(c)
    return trio.run(go)


def wait_for(predicate: Callable[[], bool], timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def expect_errno(code: int, fn: Callable[[], object]) -> None:
    """`fn` fails with exactly this errno."""
    import pytest

    with pytest.raises(OSError) as info:
        fn()
    assert info.value.errno == code, (info.value, fn)


def folder_path(folders: dict[str, Any], fid: str | None) -> str:
    """A folder's path ('Jobs/2024') from the API's flat folder list (by id)."""
    parts = []
    while fid:
        parts.append(folders[fid].name)
        fid = folders[fid].parent_id
    return "/".join(reversed(parts))


def workspace(emulator: EmulatorProcess, key: str) -> dict[str, tuple[str, str]]:
    """Every file of the workspace: 'folder path/name' → (id, sha256 of its bytes).

    A name met twice (a file stored twice) appears again with a '#2' suffix."""
    async def go() -> dict[str, tuple[str, str]]:
        async with make_client(emulator, key) as c:
            folders = {f.id: f for f in await c.folder_tree()}

            def path(fid: str | None) -> str:
                return folder_path(folders, fid)

            where: dict[str, str] = {}
            for fid in folders:
                async for item in c.iter_files(folder_id=fid):
                    where[item.id] = path(fid)
            out: dict[str, tuple[str, str]] = {}
            async for item in c.iter_files():
                name = f"{where.get(item.id, '')}/{item.title or item.filename}".lstrip("/")
                while name in out:
                    name += "#2"
                out[name] = (item.id, hashlib.sha256(await c.download_bytes(item.id)
                                                     ).hexdigest())
            return out
    return trio.run(go)
