"""The virtual folders on a real mount: search/, text/, colors/, tags/, by-date/."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import trio

from aionfs.api import AionClient
from tests.conftest import EmulatorProcess, make_client
from tests.media import image_bytes
from tests.mounting import VIEWS, Mount, api_call, expect_errno, mount, wait_for

pytestmark = pytest.mark.skipif(not os.path.exists("/dev/fuse"), reason="needs /dev/fuse")


@dataclass
class Lib:
    key: str
    ids: dict[str, str]


@pytest.fixture(scope="module")
def lib(emulator: EmulatorProcess) -> Lib:
    key = emulator.new_tenant(plan="enterprise")

    async def build() -> dict[str, str]:
        async with make_client(emulator, key) as c:
            site = await c.create_folder("Site")
            ids = {"site": site.id}
            specs = [("roof.jpg", image_bytes((200, 30, 30), (96, 64)), ["roof", "red"], site.id),
                     ("sky.png", image_bytes((30, 60, 220), (96, 64), "PNG"), ["sky"], None),
                     ("beam.jpg", image_bytes((150, 100, 50), (96, 64)), ["roof", "wood"],
                      site.id),
                     ("notes.txt", b"cracked concrete near the north pillar\n", ["doc"], None)]
            for name, data, tags, folder in specs:
                up = await c.upload_file(data, name, tags=tags)
                ids[name] = up.image_id
                if folder:
                    await c.move_files([up.image_id], folder)
            return ids

    return Lib(key, trio.run(build))


@pytest.fixture
def mounted(emulator: EmulatorProcess, lib: Lib, tmp_path: Path) -> Iterator[Mount]:
    m = mount(emulator, lib.key, tmp_path / "mnt", tmp_path / "cache", "--query-ttl", "1")
    try:
        wait_for(lambda: (m.path / "sky.png").exists() and (m.path / "notes.txt").exists())
        yield m
    finally:
        m.unmount()


def ids_in(directory: Path) -> list[str]:
    """The files of a directory, in the order it lists them, as API ids."""
    return [os.getxattr(directory / name, "user.aion.id").decode()
            for name in os.listdir(directory)]


def call(emulator: EmulatorProcess, lib: Lib, fn: Callable[[AionClient], Any]) -> Any:
    return api_call(emulator, lib, fn)


def test_each_view_lists_what_the_api_answers(mounted: Mount, lib: Lib,
                                             emulator: EmulatorProcess) -> None:
    m = mounted.path
    assert set(os.listdir(m)) >= VIEWS
    for query in ("red roof", "wood sky"):
        res = call(emulator, lib, lambda c, q=query: c.search_images(q, limit=500))
        assert res.result_ids and ids_in(m / "search" / query) == res.result_ids
    page = call(emulator, lib, lambda c: c.list_files(search="concrete"))
    assert [f.id for f in page.files] == ids_in(m / "text/concrete") == [lib.ids["notes.txt"]]

    families = call(emulator, lib, lambda c: c.color_families())
    assert sorted(os.listdir(m / "colors")) == sorted(f.name for f in families)
    warm = call(emulator, lib, lambda c: c.color_search(color_family="warm", limit=200))
    assert ids_in(m / "colors/warm") == [r.image_id for r in warm.results]
    near = call(emulator, lib, lambda c: c.color_search(hex_code="#c81e1e",
                                                        delta_e_threshold=20, limit=200))
    assert [r.image_id for r in near.results] == [lib.ids["roof.jpg"]]
    for spelling in ("#c81e1e~20", "c81e1e~20", "C81E1E~20"):
        assert ids_in(m / "colors" / spelling) == [lib.ids["roof.jpg"]]

    assert sorted(os.listdir(m / "tags")) == ["doc", "red", "roof", "sky", "wood"]
    assert sorted(ids_in(m / "tags/roof")) == sorted([lib.ids["roof.jpg"], lib.ids["beam.jpg"]])
    assert ids_in(m / "tags/roof/wood") == [lib.ids["beam.jpg"]]  # AND
    assert os.listdir(m / "tags/roof/sky") == []
    assert not any((m / "tags/roof" / n).is_dir() for n in os.listdir(m / "tags/roof"))

    now = datetime.now().astimezone()
    month = m / "by-date" / f"{now:%Y}" / f"{now:%m}"
    assert os.listdir(m / "by-date") == [f"{now:%Y}"]
    assert sorted(ids_in(month)) == sorted(v for k, v in lib.ids.items() if "." in k)

    # The entries are the library's files: same inode, bytes and xattrs.
    tree, view = m / "Site/roof.jpg", m / "tags/red/roof.jpg"
    assert os.stat(tree).st_ino == os.stat(view).st_ino
    assert tree.read_bytes() == view.read_bytes()
    assert {k: os.getxattr(tree, k) for k in os.listxattr(tree)} == \
        {k: os.getxattr(view, k) for k in os.listxattr(view)}
    assert os.stat(tree).st_nlink == 2 + 2  # the tree, by-date/, and its two tags


def test_find_meets_each_file_a_bounded_number_of_times(mounted: Mount, lib: Lib) -> None:
    os.mkdir(mounted.path / "search/roof")
    out = subprocess.run(["find", str(mounted.path), "-type", "f"], capture_output=True,
                         text=True, check=True).stdout.split("\n")
    seen = Counter(os.stat(p).st_ino for p in out if p)
    families = len(os.listdir(mounted.path / "colors"))
    for name in ("Site/roof.jpg", "sky.png", "notes.txt"):
        st = os.stat(mounted.path / name)
        # the tree, by-date/, each tag, each saved search, each color family at most
        assert seen[st.st_ino] <= st.st_nlink + 1 + families, name
    du = subprocess.run(["du", "-s", "--block-size=1", str(mounted.path)], capture_output=True,
                        text=True, check=True).stdout.split()[0]
    tree = subprocess.run(["du", "-s", "--block-size=1", *[str(mounted.path / n) for n in (
        "Site", "sky.png", "notes.txt")]], capture_output=True, text=True, check=True).stdout
    assert int(du) <= sum(int(line.split()[0]) for line in tree.splitlines()) + 64 * 4096
    os.rmdir(mounted.path / "search/roof")


def test_saved_searches_persist_and_refresh(emulator: EmulatorProcess, lib: Lib,
                                            tmp_path: Path) -> None:
    first = mount(emulator, lib.key, tmp_path / "m", tmp_path / "c", "--query-ttl", "1")
    try:
        assert os.listdir(first.path / "search") == []
        os.mkdir(first.path / "search/blue sky")
        with pytest.raises(FileExistsError):
            os.mkdir(first.path / "search/blue sky")
        os.mkdir(first.path / "text/pillar")
        assert os.listdir(first.path / "search") == ["blue sky"]
        assert ids_in(first.path / "search/blue sky") == [lib.ids["sky.png"]]
        extra = call(emulator, lib, lambda c: c.upload_file(
            image_bytes((20, 40, 230), (40, 40), "PNG"), "sky2.png", tags=["sky"]))
        try:
            wait_for(lambda: extra.image_id in ids_in(first.path / "search/blue sky"),
                     timeout=30)
        finally:
            call(emulator, lib, lambda c: c.delete_file(extra.image_id))
    finally:
        first.unmount()
    second = mount(emulator, lib.key, tmp_path / "m", tmp_path / "c")
    try:
        assert os.listdir(second.path / "search") == ["blue sky"]
        assert os.listdir(second.path / "text") == ["pillar"]
        os.rmdir(second.path / "search/blue sky")
        with pytest.raises(FileNotFoundError):
            os.rmdir(second.path / "search/blue sky")
        assert os.listdir(second.path / "search") == []
    finally:
        second.unmount()


@pytest.mark.daemon_log(r"copying into a tag folder failed \(EPERM\)")
def test_tag_folders_add_and_remove_tags_and_nothing_else(mounted: Mount, lib: Lib,
                                                          emulator: EmulatorProcess) -> None:
    m, sky = mounted.path, lib.ids["sky.png"]
    before = call(emulator, lib, lambda c: c.get_file(sky))
    os.link(m / "sky.png", m / "tags/roof/sky.png")  # ln FILE tags/roof/
    assert call(emulator, lib, lambda c: c.get_file(sky)).tags == ["sky", "roof"]
    assert "sky.png" in os.listdir(m / "tags/roof")
    os.unlink(m / "tags/roof/sky.png")  # removes the tag, not the file
    assert call(emulator, lib, lambda c: c.get_file(sky)).tags == ["sky"]
    assert (m / "sky.png").exists()
    os.rename(m / "sky.png", m / "tags/wood/sky.png")  # mv FILE tags/wood/
    assert call(emulator, lib, lambda c: c.get_file(sky)).tags == ["sky", "wood"]
    assert (m / "sky.png").exists() and "sky.png" in os.listdir(m)
    assert os.getxattr(m / "sky.png", "user.aion.tags") == b"sky,wood"
    os.unlink(m / "tags/wood/sky.png")
    assert call(emulator, lib, lambda c: c.get_file(sky)).tags == ["sky"]
    original = (m / "sky.png").read_bytes()
    shutil.copyfile(m / "sky.png", m / "tags/red/sky.png")  # cp FILE tags/red/
    assert call(emulator, lib, lambda c: c.get_file(sky)).tags == ["sky", "red"]
    assert os.stat(m / "tags/red/sky.png").st_ino == os.stat(m / "sky.png").st_ino
    os.unlink(m / "tags/red/sky.png")
    # Bytes that are no library file are refused, and change nothing.
    expect_errno(errno.EPERM, lambda: (m / "tags/red/elsewhere.png").write_bytes(b"x"))
    with pytest.raises(OSError) as info, open(m / "tags/red/sky.png", "wb") as f:
        f.write(b"not the picture")
    assert info.value.errno == errno.EPERM
    assert (m / "sky.png").read_bytes() == original
    assert "sky.png" not in os.listdir(m / "tags/red")
    after = call(emulator, lib, lambda c: c.get_file(sky))
    assert after.tags == ["sky"]
    assert (after.title, after.size_bytes, after.upload_description) == (
        before.title, before.size_bytes, before.upload_description)
    assert "sky.png" in os.listdir(m)  # still where it was



def test_bad_input_gets_a_clear_errno(mounted: Mount) -> None:
    m = mounted.path
    for name in ("#12345", "#ggg", "beef", "#fff~200", "#fff~x", "earthy tone", ".hidden"):
        expect_errno(errno.ENOENT, lambda n=name: os.listdir(m / "colors" / n))
    expect_errno(errno.ENOENT, lambda: os.listdir(m / "search/.hidden"))
    expect_errno(errno.ENAMETOOLONG, lambda: os.listdir(m / "search" / ("x" * 300)))
    expect_errno(errno.ENOENT, lambda: os.listdir(m / "tags/no-such-tag"))
    expect_errno(errno.ENOENT, lambda: os.listdir(m / "by-date/1999"))
    writes = [lambda: os.open(m / "search/roof/new.txt", os.O_CREAT | os.O_WRONLY),
              lambda: os.open(m / "tags/roof/new.txt", os.O_CREAT | os.O_WRONLY),
              lambda: os.mkdir(m / "tags/newtag"),
              lambda: os.mkdir(m / "by-date/1999"),
              lambda: os.mkdir(m / "search/roof/sub"),
              lambda: os.rmdir(m / "colors/warm"),
              lambda: os.unlink(m / "text/concrete/notes.txt"),
              lambda: os.rename(m / "text/concrete/notes.txt", m / "notes2.txt")]
    for attempt in writes:
        expect_errno(errno.EPERM, attempt)
    assert (m / "notes.txt").exists() and os.listdir(m / "Site")  # healthy, nothing lost


@pytest.mark.daemon_log(
    r"failed \(attempt \d/\d",
    r"text \S+ failed \(",
    r"sync failed, keeping the cached library",
    r"listing a virtual folder failed \(EIO\)")
def test_offline_views_serve_earlier_results(mounted: Mount, lib: Lib,
                                             emulator: EmulatorProcess) -> None:
    m = mounted.path
    listed = ids_in(m / "text/pillar")
    assert listed == [lib.ids["notes.txt"]]
    time.sleep(1.2)  # past the TTL: the next listing asks the API again
    emulator.set_faults(lib.key, "down:1")
    try:
        assert ids_in(m / "text/pillar") == listed
        started = time.monotonic()
        expect_errno(errno.EIO, lambda: os.listdir(m / "text/never asked before"))
        assert time.monotonic() - started < 15
        assert ids_in(m / "tags/roof")  # served from the store
    finally:
        emulator.set_faults(lib.key, "")
    log = next(mounted.cache.glob("*/aionfs.log")).read_text()
    assert "serving the results from" in log


def test_repeated_listings_within_the_ttl_cost_no_requests(emulator: EmulatorProcess, lib: Lib,
                                                           tmp_path: Path) -> None:
    m = mount(emulator, lib.key, tmp_path / "m", tmp_path / "c", "--query-ttl", "600",
              "--rank-names", "--hide-views")
    try:
        assert not VIEWS & set(os.listdir(m.path))  # hidden from crawlers,
        assert "roof" in os.listdir(m.path / "tags")  # still there by path
        names = os.listdir(m.path / "search/roof")
        assert names and names[0].startswith("001 ")
        os.listdir(m.path / "colors")  # the families: asked once, then kept
        since = len(emulator.requests(lib.key))
        for _ in range(5):
            assert os.listdir(m.path / "search/roof") == names
            os.listdir(m.path / "colors")
        spent = [r for r in emulator.requests(lib.key)[since:] if "/agents/" in r["path"]
                 or "/colors/" in r["path"]]
        assert spent == []
    finally:
        m.unmount()


def test_virtual_folders_the_kernel_forgot_are_forgotten_here_too(mounted: Mount) -> None:
    """Every name looked up under search/ is a virtual folder; once the kernel
    drops them (memory pressure, here drop_caches), the daemon drops them too:
    its memory follows what the kernel holds, not every name ever asked."""
    for i in range(300):
        os.stat(mounted.path / "search" / f"query {i}")
    assert mounted.status()["inodes"]["virtual_folders"] >= 300
    try:
        Path("/proc/sys/vm/drop_caches").write_text("2")
    except OSError as exc:
        pytest.skip(f"cannot drop the kernel's caches: {exc}")
    wait_for(lambda: mounted.status()["inodes"]["virtual_folders"] < 20)
    assert (mounted.path / "search" / "query 7").is_dir()  # asked again: there again
