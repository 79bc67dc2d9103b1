"""`user.aion.colors` on a real mount: one request per image, once ever.

`getfattr -d` (list the names, read each) over a folder, again, and again after
a remount with the same cache dir: only the first pass may ask the service
(GET /colors/images/{id}), once per image; a known "no colors" is remembered
too, and an analysis still running is not asked again within COLORS_RETRY.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
import trio

from tests.conftest import EmulatorProcess, make_client
from tests.media import image_bytes
from tests.mounting import Mount, expect_errno, mount, wait_for

pytestmark = pytest.mark.skipif(not os.path.exists("/dev/fuse"), reason="needs /dev/fuse")

COLORS = "user.aion.colors"


def getfattr_d(directory: Path) -> dict[str, dict[str, bytes]]:
    """What `getfattr -d` reads for each file of a directory: every listed name."""
    out: dict[str, dict[str, bytes]] = {}
    for name in sorted(os.listdir(directory)):
        path = directory / name
        values = {}
        for attr in os.listxattr(path):
            try:
                values[attr] = os.getxattr(path, attr)
            except OSError as exc:  # listed for an image not asked yet, and it has none
                assert exc.errno == errno.ENODATA and attr == COLORS, (name, attr, exc)
        out[name] = values
    return out


def color_requests(emulator: EmulatorProcess, key: str) -> list[str]:
    return [r["path"] for r in emulator.requests(key) if "/colors/images/" in r["path"]]


def mount_and_wait(emulator: EmulatorProcess, key: str, tmp_path: Path, folder: str,
                   count: int) -> Mount:
    m = mount(emulator, key, tmp_path / "mnt", tmp_path / "cache")
    try:
        wait_for(lambda: len(os.listdir(m.path / folder)) == count, timeout=20)
    except BaseException:
        m.unmount()
        raise
    return m


def upload_folder(emulator: EmulatorProcess, key: str) -> dict[str, str]:
    """A folder 'Shots' of three images and a document: name → id."""
    async def go() -> dict[str, str]:
        async with make_client(emulator, key) as c:
            folder = await c.create_folder("Shots")
            ids = {}
            for name, data in (("red.jpg", image_bytes((200, 30, 30))),
                               ("blue.png", image_bytes((30, 60, 220), fmt="PNG")),
                               ("sand.jpg", image_bytes((196, 168, 124), accent=(40, 40, 40))),
                               ("notes.txt", b"no colors in here\n")):
                up = await c.upload_file(data, name)
                await c.move_files([up.image_id], folder.id)
                ids[name] = up.image_id
            return ids
    return trio.run(go)


def test_colors_cost_one_request_per_image_once_ever(emulator: EmulatorProcess,
                                                     tmp_path: Path) -> None:
    key = emulator.new_tenant()
    ids = upload_folder(emulator, key)
    images = {n: i for n, i in ids.items() if not n.endswith(".txt")}
    m = mount_and_wait(emulator, key, tmp_path, "Shots", 4)
    try:
        first = getfattr_d(m.path / "Shots")
        assert {n for n, v in first.items() if COLORS in v} == set(images)
        assert first["red.jpg"][COLORS].startswith(b"#")
        assert sorted(color_requests(emulator, key)) == sorted(
            f"/api/v2/colors/images/{i}" for i in images.values())
        assert getfattr_d(m.path / "Shots") == first
        assert len(color_requests(emulator, key)) == len(images)
    finally:
        m.unmount()
    m = mount_and_wait(emulator, key, tmp_path, "Shots", 4)
    try:
        assert getfattr_d(m.path / "Shots") == first
        assert getfattr_d(m.path / "Shots") == first
    finally:
        m.unmount()
    assert len(color_requests(emulator, key)) == len(images)


def test_known_none_is_remembered_and_not_listed(emulator: EmulatorProcess,
                                                 tmp_path: Path) -> None:
    """The emulator's bulk files are images without a color analysis ("completed",
    no colors): asked once each, then ENODATA and left out of the names, for good."""
    key = emulator.new_tenant()
    emulator.bulk(key, files=3, folders=0)
    m = mount(emulator, key, tmp_path / "mnt", tmp_path / "cache")
    try:
        wait_for(lambda: len(os.listdir(m.path)) >= 3 + 5, timeout=20)  # + the views
        names = [n for n in os.listdir(m.path) if n.startswith("Bulk photo")]
        assert len(names) == 3
        for name in names:
            assert COLORS in os.listxattr(m.path / name)  # not asked yet: maybe
            expect_errno(errno.ENODATA, lambda n=name: os.getxattr(m.path / n, COLORS))
            assert COLORS not in os.listxattr(m.path / name)  # known: none
            expect_errno(errno.ENODATA, lambda n=name: os.getxattr(m.path / n, COLORS))
        assert len(color_requests(emulator, key)) == 3
    finally:
        m.unmount()
    m = mount(emulator, key, tmp_path / "mnt", tmp_path / "cache")
    try:
        for name in names:
            assert COLORS not in os.listxattr(m.path / name)
            expect_errno(errno.ENODATA, lambda n=name: os.getxattr(m.path / n, COLORS))
    finally:
        m.unmount()
    assert len(color_requests(emulator, key)) == 3


def test_an_analysis_still_running_is_not_asked_again_at_once(emulator: EmulatorProcess,
                                                               tmp_path: Path) -> None:
    """Processing for ten minutes: the first read asks (and learns "processing"),
    the next ones within COLORS_RETRY do not; a remount may ask once more."""
    key = emulator.new_tenant(processing_delay=600)

    async def go() -> str:
        async with make_client(emulator, key) as c:
            return (await c.upload_file(image_bytes((30, 160, 60)), "leaf.jpg")).image_id
    trio.run(go)
    for n in (1, 2):
        m = mount(emulator, key, tmp_path / "mnt", tmp_path / "cache")
        try:
            wait_for(lambda mp=m: (mp.path / "leaf.jpg").exists(), timeout=20)
            for _ in range(3):
                expect_errno(errno.ENODATA, lambda mp=m: os.getxattr(mp.path / "leaf.jpg",
                                                                     COLORS))
                assert COLORS in os.listxattr(m.path / "leaf.jpg")  # may come: listed
        finally:
            m.unmount()
        assert len(color_requests(emulator, key)) == n
