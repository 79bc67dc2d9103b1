"""Where a cold read gets its bytes: URLs the store already holds, before the API.

A first read used to spend one API request (`GET /user-files/{id}/download`)
per file before a byte moved: on FREE, a folder of 20 photos was two minutes
of the plan. List items carry presigned URLs; the one a list item calls the
original (`full_url` of an image, `document_url` of a document) is read from
once its first answer proves it (total size and type equal the file's), and
a download URL got from the API is kept until it expires, so a re-read after
eviction or a remount costs nothing either. Every fallback (the listed URL
is a rendition, expired, refused) ends in the download endpoint, never EIO.
"""

from __future__ import annotations

import hashlib
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from aionfs.api import AionClient, UploadItem
from aionfs.cache.content import INDEX_EVERY, LISTED_REFUSALS, STREAM_AHEAD
from tests.conftest import EmulatorProcess
from tests.media import noise_jpeg
from tests.mounting import Mount, api_call, mount

pytestmark = pytest.mark.skipif(not os.path.exists("/dev/fuse"), reason="needs /dev/fuse")


class Lib:
    def __init__(self, key: str, sums: dict[str, str]) -> None:
        self.key, self.sums = key, sums  # name in Photos/ → sha256 of the original


def _library(emulator: EmulatorProcess) -> Lib:
    key = emulator.new_tenant(rpm=0)

    async def make(c: AionClient) -> dict[str, str]:
        folder = await c.create_folder("Photos")
        items = [UploadItem(f"IMG_{i:03}.jpg", noise_jpeg((1300, 900), seed=i), "image/jpeg")
                 for i in range(6)]
        items.append(UploadItem("report.pdf", b"%PDF-1.4\n" + os.urandom(3000) + b"\n%%EOF\n",
                                "application/pdf"))
        _, results = await c.upload_batch(items)
        ids = [r.image_id for r in results if r.image_id]
        assert len(ids) == len(items)
        await c.move_files(ids, folder.id)
        return {it.filename: hashlib.sha256(it.content).hexdigest() for it in items}

    return Lib(key, api_call(emulator, Lib(key, {}), make))


@pytest.fixture
def lib(emulator: EmulatorProcess) -> Lib:
    return _library(emulator)


@pytest.fixture
def mounted(emulator: EmulatorProcess, lib: Lib, tmp_path: Path) -> Iterator[Mount]:
    m = mount(emulator, lib.key, tmp_path / "m", tmp_path / "c")
    try:
        yield m
    finally:
        m.unmount()


def downloads(emulator: EmulatorProcess, key: str, since: int = 0) -> int:
    return sum(1 for e in emulator.requests(key, since) if e["path"].endswith("/download"))


def drop_page_cache() -> None:
    """The kernel keeps a read file's pages (keep_cache): make the next read reach
    the daemon, whose own cache has evicted the bytes."""
    try:
        Path("/proc/sys/vm/drop_caches").write_text("1")
    except OSError as exc:
        pytest.skip(f"cannot drop the page cache: {exc}")


def read_all(m: Mount, lib: Lib) -> None:
    for name, digest in lib.sums.items():
        data = (m.path / "Photos" / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == digest, f"{name}: not the original's bytes"


def test_cold_reads_take_the_listed_originals_with_no_api_request(
        emulator: EmulatorProcess, lib: Lib, mounted: Mount) -> None:
    before = len(emulator.requests(lib.key))
    read_all(mounted, lib)
    after = emulator.requests(lib.key, before)
    assert downloads(emulator, lib.key, before) == 0
    assert not [e for e in after if e["kind"] == "api" and "/user-files/" in e["path"]], \
        "a read asked the API about a file"
    assert sum(1 for e in after if e["kind"] == "blob") == len(lib.sums)


def test_a_reader_going_through_a_folder_in_order_finds_the_next_files_fetched(
        emulator: EmulatorProcess, lib: Lib, mounted: Mount) -> None:
    """`tar -c`, `cp -r`, `cat *`: once two files of a folder were read whole, in
    order, the next ones are fetched ahead (each storage round trip overlaps the
    reading of the file before); every byte is still the original's, and a reader
    that jumps around fetches nothing ahead."""
    import subprocess

    def streamed() -> int:
        return int(mounted.status()["cache"]["streamed"])

    names = sorted(lib.sums)
    for name in (names[4], names[1]):  # out of order: no pattern
        (mounted.path / "Photos" / name).read_bytes()
    assert streamed() == 0
    before = len(emulator.requests(lib.key))
    tar = subprocess.run(["tar", "-cf", "-", "-C", str(mounted.path), "Photos"],
                         capture_output=True, check=True, timeout=60).stdout
    # (each file fetched ahead counted once: not the two read before, nor tar's first)
    assert 2 <= streamed() <= len(lib.sums) - 3
    blobs = [e for e in emulator.requests(lib.key, before) if e["kind"] == "blob"]
    assert len(blobs) == len(lib.sums) - 2  # each file fetched once, ahead or not
    import io
    import tarfile

    with tarfile.open(fileobj=io.BytesIO(tar)) as t:
        for member in t.getmembers():
            if member.isfile():
                data = t.extractfile(member).read()  # type: ignore[union-attr]
                assert hashlib.sha256(data).hexdigest() == lib.sums[Path(member.name).name]


def test_list_urls_that_are_renditions_are_refused_and_then_not_tried(
        emulator: EmulatorProcess, lib: Lib, tmp_path: Path) -> None:
    """The other reading of the vendor's documents: a list item's full_url is the
    1024 px variant. Its answer does not prove the original, so no byte of it is
    kept: each image is read through the download endpoint, and after three
    refusals the listed URLs of images are not tried again."""
    emulator.url_policy(lib.key, list_full_url="large")
    m = mount(emulator, lib.key, tmp_path / "m", tmp_path / "c")
    try:
        before = len(emulator.requests(lib.key))
        read_all(m, lib)  # the original's bytes, not the variant's
        blobs = [e for e in emulator.requests(lib.key, before) if e["kind"] == "blob"]
    finally:
        m.unmount()
    images = len(lib.sums) - 1
    assert downloads(emulator, lib.key, before) == images  # the document's URL is the original
    refused = len(blobs) - len(lib.sums)  # renditions refused, then originals only
    # (files fetched ahead of the reader may be refused alongside the third)
    assert LISTED_REFUSALS <= refused <= LISTED_REFUSALS + STREAM_AHEAD, refused


def test_a_first_read_past_the_end_of_a_rendition_falls_back(
        emulator: EmulatorProcess, lib: Lib, mounted: Mount) -> None:
    """A reader that starts in the middle (a seek, `tail -c`): the listed URL is a
    smaller rendition, so storage answers 416 to the range; the read takes the
    download endpoint and gets the original's bytes."""
    emulator.url_policy(lib.key, list_full_url="large")
    before = len(emulator.requests(lib.key))
    mounted_file = mounted.path / "Photos" / "IMG_002.jpg"
    # the listing the mount holds predates the policy: list the folder again
    os.utime(mounted.path / "Photos")  # (no-op on the remote; poll relists within 1 s)
    time.sleep(2)
    size = mounted_file.stat().st_size
    fd = os.open(mounted_file, os.O_RDONLY)
    try:
        tail = os.pread(fd, 4096, size - 4096)
    finally:
        os.close(fd)
    whole = mounted_file.read_bytes()
    assert hashlib.sha256(whole).hexdigest() == lib.sums["IMG_002.jpg"]
    assert tail == whole[-4096:]
    answers = [e["status"] for e in emulator.requests(lib.key, before) if e["kind"] == "blob"]
    assert answers[0] == 416, answers  # the rendition could not give that range


def test_a_kept_download_url_serves_rereads_after_eviction_and_remount(
        emulator: EmulatorProcess, lib: Lib, tmp_path: Path) -> None:
    emulator.url_policy(lib.key, list_full_url="large")
    args = ("--cache-size", "1")  # bytes: every file is evicted once closed
    m = mount(emulator, lib.key, tmp_path / "m", tmp_path / "c", *args)
    try:
        read_all(m, lib)
        first = downloads(emulator, lib.key)
        assert first == len(lib.sums) - 1
        before = len(emulator.requests(lib.key))
        drop_page_cache()
        read_all(m, lib)  # evicted: fetched again, through the kept URLs
        assert downloads(emulator, lib.key) == first
        fetched = [e for e in emulator.requests(lib.key, before) if e["kind"] == "blob"]
        assert len(fetched) == len(lib.sums), str([v[:8] for v in lib.sums.values()]) + "\n".join(str((e["path"][9:17], e["range"], e["status"])) for e in fetched)
    finally:
        m.unmount()
    m = mount(emulator, lib.key, tmp_path / "m", tmp_path / "c", *args)
    try:
        read_all(m, lib)
    finally:
        m.unmount()
    assert downloads(emulator, lib.key) == first  # kept in the store across the remount


def test_expired_urls_fall_back_and_reads_never_fail(
        emulator: EmulatorProcess, lib: Lib, tmp_path: Path) -> None:
    """The service's URLs expire far sooner than their usual hour (2 s here): the
    URLs the listing brought, then the download URLs kept, are refused (403) by
    the time they are used. Reads ask the API for fresh ones and return the
    original's bytes, never EIO."""
    emulator.url_policy(lib.key, lifetime=2)
    m = mount(emulator, lib.key, tmp_path / "m", tmp_path / "c", "--cache-size", "1",
              "--revalidate-interval", "600", "--poll-interval", "60")  # no fresh listing
    try:
        before = len(emulator.requests(lib.key))
        time.sleep(2.5)  # the listing's URLs have expired
        read_all(m, lib)
        time.sleep(2.5)  # and so have the download URLs kept by those reads
        drop_page_cache()
        read_all(m, lib)  # (evicted: fetched again)
        log = next((tmp_path / "c").glob("*/aionfs.log")).read_text()
    finally:
        m.unmount()
    seen = emulator.requests(lib.key, before)
    refused = [e for e in seen if e["kind"] == "blob" and e["status"] == 403]
    assert len(refused) == 2 * len(lib.sums), "\n".join(
        str((e["kind"], e["path"][-30:], e["query"][-60:], e["status"])) for e in seen)
    assert downloads(emulator, lib.key, before) == 2 * len(lib.sums)
    assert "failed at byte" not in log


@pytest.mark.daemon_log(r"read of \S+ failed \(EIO\): no answer within 1s")
def test_a_files_first_bytes_are_served_while_the_rest_is_still_coming(
        emulator: EmulatorProcess, tmp_path: Path) -> None:
    """A viewer, `file` or a thumbnailer wants a file's first bytes: they are
    answered as soon as they have arrived, not once the whole first MiB has.
    Here storage stalls every answer halfway (5 s) and reads give up after 1 s:
    the start of a 1.9 MB file still reads (the bytes before the stall), and
    the whole file is the original once the rest has come."""
    key = emulator.new_tenant(rpm=0)
    content = b"%PDF-1.4\n" + os.urandom(1_900_000) + b"\n%%EOF\n"

    async def make(c: AionClient) -> None:
        folder = await c.create_folder("Docs")
        _, results = await c.upload_batch([UploadItem("big.pdf", content, "application/pdf")])
        await c.move_files([r.image_id for r in results if r.image_id], folder.id)

    api_call(emulator, Lib(key, {}), make)
    m = mount(emulator, key, tmp_path / "m", tmp_path / "c", "--read-timeout", "1")
    try:
        path = m.path / "Docs" / "big.pdf"
        assert path.stat().st_size == len(content)
        emulator.set_faults(key, "stall:5s,blob-only:1")
        fd = os.open(path, os.O_RDONLY)
        try:
            assert os.pread(fd, 65536, 0) == content[:65536]
        finally:
            os.close(fd)
        emulator.set_faults(key, "")
        deadline = time.monotonic() + 30
        while True:  # reads that end past the stall time out (EIO) until it is over
            try:
                assert path.read_bytes() == content
                break
            except OSError:
                assert time.monotonic() < deadline, "the rest of the file never came"
                time.sleep(0.5)
    finally:
        m.unmount()


def test_a_daemon_killed_after_reads_serves_the_originals_and_keeps_what_was_indexed(
        emulator: EmulatorProcess, lib: Lib, tmp_path: Path) -> None:
    """The cache index is written once a second, not per file: a daemon killed
    (kill -9) loses at most that second of it. Files read before it are served
    from the cache after the restart; files read just before the kill may be
    fetched again, and every byte is the original's either way."""
    names = sorted(lib.sums)
    m = mount(emulator, lib.key, tmp_path / "m", tmp_path / "c")
    try:
        for name in names[:3]:
            (m.path / "Photos" / name).read_bytes()
        time.sleep(2 * INDEX_EVERY + 0.5)
        for name in names[3:]:
            (m.path / "Photos" / name).read_bytes()
        os.kill(m.pid, signal.SIGKILL)  # the daemon this test started
    finally:
        m.unmount()
    again = mount(emulator, lib.key, tmp_path / "m", tmp_path / "c")
    try:
        before = len(emulator.requests(lib.key))
        read_all(again, lib)
        fetched = [e for e in emulator.requests(lib.key, before) if e["kind"] == "blob"]
        assert len(fetched) <= len(names) - 3, "files indexed before the kill were fetched again"
    finally:
        again.unmount()
