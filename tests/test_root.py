"""A fresh mount's root: complete on its first listing, or said to be partial.

Files at the root are known only once every folder was listed (list items
carry no folder id, the API has no root filter). A `find` or an
`rsync --delete` of the mount to a backup started right after the first
mount used to see the folders but not the root's files, and the rsync
deleted them from the backup. The first listing of the root now hurries the
first crawl and waits for it (up to 10 s, when the plan can end it in that
time); past that, or at once when it cannot, it is served partial, and the log and `aionfs status` say so.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from aionfs.api import AionClient, UploadItem
from tests.conftest import EmulatorProcess
from tests.mounting import VIEWS, Mount, api_call, mount

pytestmark = pytest.mark.skipif(not os.path.exists("/dev/fuse"), reason="needs /dev/fuse")

FOLDERS, PER_FOLDER, AT_ROOT = 12, 5, 12


class _Key:
    def __init__(self, key: str) -> None:
        self.key = key


def _library(emulator: EmulatorProcess, plan: str = "professional") -> str:
    key = emulator.new_tenant(plan=plan, rpm=0)

    async def make(c: AionClient) -> None:
        for f in range(FOLDERS):
            folder = await c.create_folder(f"Folder {f:02}")
            _, results = await c.upload_batch(
                [UploadItem(f"f{f:02}_{i}.txt", f"{f} {i}\n".encode(), "text/plain")
                 for i in range(PER_FOLDER)])
            await c.move_files([r.image_id for r in results if r.image_id], folder.id)
        loose = [UploadItem(f"root_{i:02}.txt", f"root {i}\n".encode(), "text/plain")
                 for i in range(AT_ROOT)]
        for at in range(0, AT_ROOT, 10):  # (FREE's batch size)
            await c.upload_batch(loose[at:at + 10])

    api_call(emulator, _Key(key), make)
    emulator.patch_tenant(key, rpm=None)
    return key


def _files(root: Path) -> set[str]:
    out = set()
    for d, dirs, names in os.walk(root):
        if Path(d) == root:
            dirs[:] = [x for x in dirs if x not in VIEWS]
        out |= {str(Path(d, n).relative_to(root)) for n in names}
    return out


def _status(m: Mount) -> dict[str, object]:
    return m.status()["sync"]  # type: ignore[no-any-return]


def test_find_and_rsync_delete_right_after_the_first_mount_see_every_file(
        emulator: EmulatorProcess, tmp_path: Path) -> None:
    key = _library(emulator)
    emulator.set_faults(key, "latency:100ms")  # a crawl of 12 folders takes seconds
    backup = tmp_path / "backup"
    backup.mkdir()
    (backup / "root_00.txt").write_text("root 0\n")  # an earlier backup's copy
    m = mount(emulator, key, tmp_path / "m", tmp_path / "c")
    try:
        found = _files(m.path)  # at once: no waiting for the crawl by the test
        subprocess.run(["rsync", "-a", "--delete", "--exclude", "/search/", "--exclude",
                        "/text/", "--exclude", "/colors/", "--exclude", "/tags/",
                        "--exclude", "/by-date/", f"{m.path}/", f"{backup}/"],
                       check=True, timeout=120)
        sync = _status(m)
    finally:
        m.unmount()
        emulator.set_faults(key, "")
    assert len(found) == FOLDERS * PER_FOLDER + AT_ROOT, sorted(found)[:5]
    assert (backup / "root_00.txt").read_text() == "root 0\n"
    assert len(_files(backup)) == FOLDERS * PER_FOLDER + AT_ROOT
    assert sync.get("root") == "complete"


@pytest.mark.daemon_log(r"the root is shown before the first crawl placed its files")
def test_a_root_the_plan_cannot_complete_in_time_is_served_and_said_partial(
        emulator: EmulatorProcess, tmp_path: Path) -> None:
    """On FREE the first crawl of 12 folders needs more than a minute of the plan:
    the root is served with its folders (without waiting for a crawl that cannot end
    in time), and the log and status say that its files are not all shown yet, and
    what the crawl still needs."""
    key = _library(emulator, plan="free")
    m = mount(emulator, key, tmp_path / "m", tmp_path / "c", options=())
    try:
        names = set(os.listdir(m.path))
        assert {f"Folder {f:02}" for f in range(FOLDERS)} <= names
        sync = _status(m)
        log = next((tmp_path / "c").glob("*/aionfs.log")).read_text()
    finally:
        m.unmount()
    assert sync["root"] == "partial", sync
    crawl = sync["crawl"]  # what is left, and what the plan needs for it
    assert crawl["folders"] == FOLDERS and crawl["files_known"] >= 0, crawl
    assert crawl["requests_left"] >= FOLDERS - crawl["folders_listed"], crawl
    assert crawl["eta_seconds"] > 0, crawl  # FREE: 10 requests a minute
    assert "the root is shown before the first crawl placed its files" in log
