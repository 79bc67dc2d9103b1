"""The real mount: `aionfs mount` against the emulator, used with os calls and tools."""

from __future__ import annotations

import errno
import hashlib
import io
import os
import random
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest
import trio
from PIL import Image

from aionfs.api import AionClient
from tests.conftest import EmulatorProcess, make_client, start_emulator, stop_emulator
from tests.media import image_bytes
from tests.mounting import VIEWS, Mount, api_call, mount, wait_for

T = TypeVar("T")

pytestmark = pytest.mark.skipif(not os.path.exists("/dev/fuse"), reason="needs /dev/fuse")


@dataclass
class Library:
    key: str
    ids: dict[str, str]
    big: bytes


async def build_library(client: AionClient) -> dict[str, str]:
    ids: dict[str, str] = {}
    site = await client.create_folder("Site")
    sub = await client.create_folder("North", site.id)
    ids.update(site=site.id, north=sub.id)
    specs = [("pole.jpg", site.id, "Pole 1", ["pole", "rust"]), ("crack.png", sub.id, None, []),
             ("notes.txt", None, "Notes", ["doc"]), ("wide.webp", None, None, ["wide"])]
    for name, folder, title, tags in specs:
        if name.endswith(".txt"):
            data = b"inspection notes\n" * 100
        else:
            fmt = {"jpg": "JPEG", "png": "PNG", "webp": "WEBP"}[name.rsplit(".", 1)[1]]
            data = image_bytes((len(name) * 20, 90, 40), (120, 90), fmt)
        up = await client.upload_file(data, name, title=title, tags=tags)
        ids[name] = up.image_id
        if folder:
            await client.move_files([up.image_id], folder)
    link = await client.create_link("https://example.com/manual", title="Manual")
    ids["link"] = link.id
    return ids


def big_png(side: int = 4096) -> bytes:
    img = Image.frombytes("RGB", (side, side), random.Random(9).randbytes(side * side * 3))
    buf = io.BytesIO()
    img.save(buf, "PNG", compress_level=0)
    return buf.getvalue()


@pytest.fixture(scope="module")
def library(emulator: EmulatorProcess) -> Library:
    key = emulator.new_tenant(plan="enterprise")

    async def go() -> tuple[dict[str, str], bytes]:
        async with make_client(emulator, key) as c:
            ids = await build_library(c)
            big = big_png()
            ids["big.png"] = (await c.upload_file(big, "big.png")).image_id
            return ids, big

    ids, big = trio.run(go)
    return Library(key, ids, big)


@pytest.fixture
def mounted(emulator: EmulatorProcess, library: Library, tmp_path: Path) -> Iterator[Mount]:
    m = mount(emulator, library.key, tmp_path / "mnt", tmp_path / "cache")
    try:
        deadline = time.monotonic() + 20  # root files appear once the crawl placed them
        while not (m.path / "big.png").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        yield m
    finally:
        m.unmount()


def walk(root: Path) -> dict[str, str]:
    """The library tree under the mount (the virtual folders are tested in test_views)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        if rel == ".":
            assert set(dirnames) >= VIEWS
            dirnames[:] = [d for d in dirnames if d not in VIEWS]
        for d in dirnames:
            out[os.path.normpath(os.path.join(rel, d))] = "dir"
        for f in filenames:
            out[os.path.normpath(os.path.join(rel, f))] = "file"
    return out


def test_tree_bytes_and_xattrs_match_the_api(mounted: Mount, library: Library,
                                             emulator: EmulatorProcess) -> None:
    tree = walk(mounted.path)
    assert tree == {"Site": "dir", "Site/North": "dir", "Site/Pole 1.jpg": "file",
                    "Site/North/crack.png": "file", "Notes.txt": "file", "wide.webp": "file",
                    "Manual.desktop": "file", "big.png": "file"}
    paths = {"pole.jpg": "Site/Pole 1.jpg", "crack.png": "Site/North/crack.png",
             "notes.txt": "Notes.txt", "wide.webp": "wide.webp", "big.png": "big.png"}
    for name, rel in paths.items():
        fid = library.ids[name]
        original = api_call(emulator, library, lambda c, f=fid: c.download_bytes(f))
        details = api_call(emulator, library, lambda c, f=fid: c.get_file(f))
        data = (mounted.path / rel).read_bytes()
        assert hashlib.sha256(data).digest() == hashlib.sha256(original).digest(), rel
        st = os.stat(mounted.path / rel)
        assert st.st_size == details.size_bytes == len(data)
        assert st.st_blocks == (st.st_size + 511) // 512
        assert (st.st_mode & 0o777, st.st_uid) == (0o644, os.getuid())
        xattr = {k: os.getxattr(mounted.path / rel, k).decode()
                 for k in os.listxattr(mounted.path / rel)}
        assert xattr["user.aion.id"] == fid
        assert xattr["user.aion.description"] == details.upload_description
        assert xattr["user.xdg.comment"] == details.upload_description
        assert xattr.get("user.aion.tags", "") == ",".join(details.tags)
        assert xattr.get("user.xdg.tags", "") == ",".join(details.tags)
        assert xattr.get("user.aion.title") == details.title
    colors = os.getxattr(mounted.path / "Site/Pole 1.jpg", "user.aion.colors").decode()
    analysis = api_call(emulator, library, lambda c: c.image_colors(library.ids["pole.jpg"]))
    assert colors.splitlines()[0].startswith(analysis.color_analysis.dominant_colors[0].hex)
    with pytest.raises(OSError) as info:
        os.getxattr(mounted.path / "Notes.txt", "user.aion.nothing")
    assert info.value.errno == errno.ENODATA
    for other in ("security.selinux", "system.posix_acl_access", "trusted.x"):
        with pytest.raises(OSError) as info:  # "not supported" lets ls -l stop asking
            os.getxattr(mounted.path / "Notes.txt", other)
        assert info.value.errno == errno.EOPNOTSUPP, other
    link = (mounted.path / "Manual.desktop").read_text()
    assert "Type=Link" in link and "URL=https://example.com/manual" in link
    assert os.stat(mounted.path / "Site").st_mode & 0o777 == 0o755
    ls = subprocess.run(["ls", "-la", str(mounted.path / "Site")], capture_output=True,
                        text=True, check=True)
    assert "Pole 1.jpg" in ls.stdout and "North" in ls.stdout
    prune = [a for v in sorted(VIEWS) for a in ("-path", str(mounted.path / v), "-o")][:-1]
    found = subprocess.run(["find", str(mounted.path), "(", *prune, ")", "-prune", "-o",
                            "-name", "*.png", "-print"], capture_output=True,
                           text=True, check=True).stdout.split()
    assert sorted(os.path.basename(p) for p in found) == ["big.png", "crack.png"]


def blob_bytes(emulator: EmulatorProcess, library: Library, since: int) -> int:
    return sum(e["bytes"] for e in emulator.requests(library.key)[since:]
               if e["kind"] == "blob")


def test_range_reads_fetch_only_what_is_needed(mounted: Mount, library: Library,
                                               emulator: EmulatorProcess) -> None:
    big = library.big
    since = len(emulator.requests(library.key))
    with open(mounted.path / "big.png", "rb") as f:
        f.seek(len(big) - 4096)
        assert f.read(4096) == big[-4096:]
    served = blob_bytes(emulator, library, since)
    assert 4096 <= served <= 3 * (1 << 20), served  # a chunk or two of 50 MB
    rng = random.Random(3)
    with open(mounted.path / "big.png", "rb") as f:
        for _ in range(20):
            off = rng.randrange(len(big))
            n = rng.randrange(1, 200_000)
            f.seek(off)
            assert f.read(n) == big[off:off + n]


def test_sequential_reads_come_in_few_long_transfers(
        mounted: Mount, library: Library, emulator: EmulatorProcess) -> None:
    """A photo read from its start is one request; 50 MB read with cat a handful."""
    since = len(emulator.requests(library.key))
    photo = (mounted.path / "wide.webp").read_bytes()
    blobs = [e for e in emulator.requests(library.key)[since:] if e["kind"] == "blob"]
    assert len(blobs) == 1 and blobs[0]["bytes"] == len(photo)
    since = len(emulator.requests(library.key))
    out = subprocess.run(["cat", str(mounted.path / "big.png")], capture_output=True,
                         check=True).stdout
    assert hashlib.sha256(out).digest() == hashlib.sha256(library.big).digest()
    blobs = [e for e in emulator.requests(library.key)[since:] if e["kind"] == "blob"]
    assert sum(e["bytes"] for e in blobs) == len(library.big)  # every byte once
    assert len(blobs) <= 6, [e["bytes"] for e in blobs]  # 4, 8, 16, 32 MiB windows


def test_concurrent_readers_share_downloads_then_local(
        mounted: Mount, library: Library, emulator: EmulatorProcess) -> None:
    since = len(emulator.requests(library.key))
    results: list[str] = []

    def reader() -> None:
        with open(mounted.path / "big.png", "rb") as f:
            results.append(hashlib.sha256(f.read()).hexdigest())

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert results == [hashlib.sha256(library.big).hexdigest()] * 3
    assert blob_bytes(emulator, library, since) <= len(library.big) * 1.05  # fetched once
    # Fully read once: served locally afterwards, even after dropping the page cache.
    Path("/proc/sys/vm/drop_caches").write_text("1")
    since = len(emulator.requests(library.key))
    with open(mounted.path / "big.png", "rb") as f:
        assert hashlib.sha256(f.read()).digest() == hashlib.sha256(library.big).digest()
    assert blob_bytes(emulator, library, since) == 0


def test_a_read_only_mount_refuses_every_write(emulator: EmulatorProcess, library: Library,
                                              tmp_path: Path) -> None:
    def open_for(path: Path, mode: str) -> None:
        with open(path, mode):
            pass

    m = mount(emulator, library.key, tmp_path / "m", tmp_path / "c", "--read-only")
    try:
        wait_for(lambda: (m.path / "Notes.txt").exists())
        attempts = [
            lambda: open_for(m.path / "new.txt", "w"),
            lambda: open_for(m.path / "Notes.txt", "r+b"),
            lambda: os.mkdir(m.path / "NewDir"),
            lambda: os.unlink(m.path / "Notes.txt"),
            lambda: os.rename(m.path / "Notes.txt", m.path / "N.txt"),
            lambda: os.setxattr(m.path / "Notes.txt", "user.aion.title", b"x"),
            lambda: os.rmdir(m.path / "Site"),
            lambda: os.mknod(m.path / "node", 0o644),
        ]
        for attempt in attempts:
            with pytest.raises(OSError) as info:
                attempt()
            assert info.value.errno == errno.EROFS
        assert (m.path / "Notes.txt").exists()
        assert os.stat(m.path / "Notes.txt").st_mode & 0o777 == 0o444
    finally:
        m.unmount()


def test_remote_changes_reach_the_mount(mounted: Mount, library: Library,
                                        emulator: EmulatorProcess) -> None:
    wide = library.ids["wide.webp"]
    before = os.stat(mounted.path / "wide.webp").st_ino
    try:
        api_call(emulator, library, lambda c: c.update_file(wide, title="Panorama"))
        wait_for(lambda: (mounted.path / "Panorama.webp").exists())
        assert not (mounted.path / "wide.webp").exists()
        assert os.stat(mounted.path / "Panorama.webp").st_ino == before  # same inode
        extra = api_call(emulator, library,
                         lambda c: c.upload_file(image_bytes((3, 3, 3)), "fresh.jpg"))
        wait_for(lambda: (mounted.path / "fresh.jpg").exists())
        api_call(emulator, library, lambda c: c.delete_file(extra.image_id))
        wait_for(lambda: not (mounted.path / "fresh.jpg").exists())
        api_call(emulator, library, lambda c: c.update_file(wide, title="", tags=["re", "tagged"]))
        wait_for(lambda: (mounted.path / "wide.webp").exists())
        wait_for(lambda: os.getxattr(mounted.path / "wide.webp", "user.aion.tags") == b"re,tagged")
        api_call(emulator, library, lambda c: c.move_files([wide], library.ids["site"]))
        wait_for(lambda: (mounted.path / "Site/wide.webp").exists())
        # The kernel drops the old name on a notification queued after the store's commit,
        # so the two names may briefly coexist; the old one must go within the interval.
        wait_for(lambda: not (mounted.path / "wide.webp").exists(), timeout=3)
        assert os.stat(mounted.path / "Site/wide.webp").st_ino == before
    finally:  # the library is shared by this module's tests
        api_call(emulator, library, lambda c: c.move_files([wide], None))
        api_call(emulator, library, lambda c: c.update_file(wide, title="", tags=["wide"]))
    wait_for(lambda: (mounted.path / "wide.webp").exists())


@pytest.mark.daemon_log(
    r"sync failed, keeping the cached library",
    r"failed \(attempt \d/\d",
    r"fetching \S+ failed at byte",
    r"read of \S+ failed \(EIO\)")
def test_offline_serves_the_cache_and_fails_fast(tmp_path: Path) -> None:
    """The server process stops: the cache keeps serving, uncached reads fail fast,
    and everything recovers when the server comes back, without a remount."""
    data = tmp_path / "emulator"
    data.mkdir()
    flags = ("--processing-delay", "0", "--semantic-latency", "0", "--plan", "professional")
    server = start_emulator(data, *flags)
    far = image_bytes((40, 80, 120), size=(300, 200), fmt="PNG")

    async def build(c: AionClient) -> None:
        away = await c.create_folder("Away")
        await c.upload_file(b"kept offline\n", "kept.txt")
        res = await c.upload_file(far, "far.png")
        await c.move_files([res.image_id], away.id)

    m: Mount | None = None
    try:
        trio.run(lambda: _with_client(server, build))
        m = mount(server, server.api_key, tmp_path / "m", tmp_path / "c")
        assert (m.path / "kept.txt").read_bytes() == b"kept offline\n"
        assert os.listdir(m.path / "Away") == ["far.png"]
        port = server.base_url.split(":")[2].split("/")[0]
        stop_emulator(server)

        assert set(os.listdir(m.path)) - VIEWS == {"Away", "kept.txt"}
        assert (m.path / "kept.txt").read_bytes() == b"kept offline\n"
        assert os.getxattr(m.path / "Away/far.png", "user.aion.id")
        started = time.monotonic()
        with pytest.raises(OSError) as info:
            (m.path / "Away/far.png").read_bytes()
        assert info.value.errno == errno.EIO
        assert time.monotonic() - started < 10  # --read-timeout 2, never a hang

        server = start_emulator(data, *flags, "--port", port)
        wait_for(lambda: _readable(m.path / "Away/far.png") == far, timeout=30)
        trio.run(lambda: _with_client(server, lambda c: c.upload_file(b"new", "after.txt")))
        wait_for(lambda: (m.path / "after.txt").exists(), timeout=60)  # sync resumed
    finally:
        if m is not None:
            m.unmount()
        stop_emulator(server)


async def _with_client(server: EmulatorProcess, fn: Callable[[AionClient], Awaitable[T]]) -> T:
    async with make_client(server, server.api_key) as c:
        return await fn(c)


def _readable(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def test_inodes_are_stable_across_remounts(emulator: EmulatorProcess, library: Library,
                                                 tmp_path: Path) -> None:
    first = mount(emulator, library.key, tmp_path / "m", tmp_path / "c")
    try:
        inodes = {p: os.stat(first.path / p).st_ino for p in ("Site", "Site/Pole 1.jpg")}
    finally:
        first.unmount()
    second = mount(emulator, library.key, tmp_path / "m", tmp_path / "c")
    try:
        assert {p: os.stat(second.path / p).st_ino for p in inodes} == inodes
        st = os.statvfs(second.path)
        assert st.f_namemax == 255 and st.f_blocks * st.f_frsize == 64 << 20
    finally:
        second.unmount()


def test_mount_failures_are_one_clear_line(emulator: EmulatorProcess, library: Library,
                                           tmp_path: Path) -> None:
    def attempt(where: Path, key: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "AIONVISION_API_KEY": key,
               "AIONVISION_BASE_URL": emulator.base_url}
        return subprocess.run([sys.executable, "-m", "aionfs", "mount", str(where),
                               "--cache-dir", str(tmp_path / "c")], env=env,
                              capture_output=True, text=True, timeout=60)

    res = attempt(tmp_path / "missing", library.key)
    assert res.returncode != 0 and "does not exist" in res.stderr
    (tmp_path / "mp").mkdir()
    res = attempt(tmp_path / "mp", "aion_" + "x" * 30)
    assert res.returncode != 0 and "API key was refused" in res.stderr
    assert "x" * 30 not in res.stderr and "Traceback" not in res.stderr
    assert not os.path.ismount(tmp_path / "mp")
    busy = mount(emulator, library.key, tmp_path / "busy", tmp_path / "c2")
    try:
        res = attempt(tmp_path / "busy", library.key)
        assert res.returncode != 0 and "already a mountpoint" in res.stderr
    finally:
        busy.unmount()


def test_unmount_command_waits_for_the_daemon(emulator: EmulatorProcess, library: Library,
                                              tmp_path: Path) -> None:
    m = mount(emulator, library.key, tmp_path / "m", tmp_path / "c")
    try:
        res = subprocess.run([sys.executable, "-m", "aionfs", "unmount", str(m.path)],
                             env=m.env, capture_output=True, text=True, timeout=60)
        assert res.returncode == 0, res.stderr
        assert not os.path.ismount(m.path)
        with pytest.raises(ProcessLookupError):
            os.kill(m.pid, 0)
        again = subprocess.run([sys.executable, "-m", "aionfs", "unmount", str(m.path)],
                               env=m.env, capture_output=True, text=True, timeout=60)
        assert again.returncode != 0 and "not mounted" in again.stderr
    finally:
        m.unmount()



@pytest.mark.daemon_log(
    r"sync failed, keeping the cached library",
    r"failed \(attempt \d/\d",
    r"fetching \S+ failed at byte",
    r"read of \S+ failed \(EIO\)")
def test_faults_during_reads_give_correct_bytes_or_eio(mounted: Mount, library: Library,
                                                       emulator: EmulatorProcess) -> None:
    emulator.set_faults(library.key, "500:0.2,reset:0.2,latency:5ms", seed=4)
    outcomes = []
    try:
        for _ in range(3):
            try:
                data = (mounted.path / "big.png").read_bytes()
            except OSError as exc:
                assert exc.errno == errno.EIO
                outcomes.append("eio")
            else:
                assert hashlib.sha256(data).digest() == hashlib.sha256(library.big).digest()
                outcomes.append("ok")
    finally:
        emulator.set_faults(library.key, "")
    assert (mounted.path / "big.png").read_bytes() == library.big  # recovers fully
    assert outcomes


@pytest.mark.daemon_log(
    r"sync failed, keeping the cached library",
    r"failed \(attempt \d/\d",
    r"fetching \S+ failed at byte",
    r"read of \S+ failed \(EIO\)")
def test_warm_cache_survives_remount_and_pins(emulator: EmulatorProcess, library: Library,
                                              tmp_path: Path) -> None:
    m = mount(emulator, library.key, tmp_path / "m", tmp_path / "c")
    try:
        wait_for(lambda: (m.path / "Notes.txt").exists())
        notes = (m.path / "Notes.txt").read_bytes()
        pin = subprocess.run([sys.executable, "-m", "aionfs", "pin", str(m.path / "Site"),
                              "--cache-dir", str(m.cache)], env=m.env, capture_output=True,
                             text=True, timeout=60)
        assert pin.returncode == 0 and "pinned 2 files" in pin.stdout, pin.stderr
        outside = subprocess.run([sys.executable, "-m", "aionfs", "pin", str(tmp_path),
                                  "--cache-dir", str(m.cache)], env=m.env,
                                 capture_output=True, text=True, timeout=60)
        assert outside.returncode != 0 and "not in an aionfs mount" in outside.stderr
        import sqlite3

        store = next(m.cache.glob("*/metadata.sqlite3"))

        def pinned_complete() -> bool:
            db = sqlite3.connect(store)
            try:
                return db.execute("SELECT count(*) FROM content_cache WHERE pinned=1 AND "
                                  "cached=size").fetchone()[0] == 2
            finally:
                db.close()

        wait_for(pinned_complete)  # fetched without anybody reading them
    finally:
        m.unmount()
    again = mount(emulator, library.key, tmp_path / "m", tmp_path / "c")
    try:
        emulator.set_faults(library.key, "down:1")  # only the warm cache can answer now
        try:
            assert (again.path / "Notes.txt").read_bytes() == notes
            assert (again.path / "Site/Pole 1.jpg").read_bytes()  # pinned, never read
            with pytest.raises(OSError) as info:
                (again.path / "big.png").read_bytes()
            assert info.value.errno == errno.EIO
        finally:
            emulator.set_faults(library.key, "")
    finally:
        again.unmount()


def test_eviction_under_a_small_cap_spares_open_files(emulator: EmulatorProcess,
                                                      library: Library,
                                                      tmp_path: Path) -> None:
    m = mount(emulator, library.key, tmp_path / "m", tmp_path / "c", "--cache-size", "2M")
    try:
        wait_for(lambda: (m.path / "big.png").exists())
        since = len(emulator.requests(library.key))
        with open(m.path / "big.png", "rb") as f:  # 50 MB through a 2 MB cache, kept open
            digest = hashlib.sha256()
            while chunk := f.read(1 << 20):
                digest.update(chunk)
            assert digest.digest() == hashlib.sha256(library.big).digest()
            (m.path / "Notes.txt").read_bytes()  # another file meanwhile
            f.seek(0)
            assert f.read(1000) == library.big[:1000]  # the open file is still whole
        assert blob_bytes(emulator, library, since) < 1.2 * len(library.big)
        def cache_bytes() -> int:
            return sum(p.stat().st_blocks * 512 for p in m.cache.glob("*/content/*"))

        wait_for(lambda: cache_bytes() <= 4 << 20)  # closed: evicted down to the cap
    finally:
        m.unmount()


def test_unmount_with_an_open_file_is_refused_then_works(emulator: EmulatorProcess,
                                                         library: Library,
                                                         tmp_path: Path) -> None:
    m = mount(emulator, library.key, tmp_path / "m", tmp_path / "c")
    try:
        wait_for(lambda: (m.path / "Notes.txt").exists())
        with open(m.path / "Notes.txt", "rb"):
            res = subprocess.run([sys.executable, "-m", "aionfs", "unmount", str(m.path)],
                                 env=m.env, capture_output=True, text=True, timeout=60)
            assert res.returncode != 0 and "still open" in res.stderr
            assert os.path.ismount(m.path)
        res = subprocess.run([sys.executable, "-m", "aionfs", "unmount", str(m.path)],
                             env=m.env, capture_output=True, text=True, timeout=60)
        assert res.returncode == 0 and not os.path.ismount(m.path)
    finally:
        m.unmount()


def test_demo_command_mounts_the_demo_library_until_stopped(tmp_path: Path) -> None:
    """The README's first command (make demo) runs `aionfs demo`."""
    import signal

    where = tmp_path / "Aion"
    proc = subprocess.Popen([sys.executable, "-m", "aionfs", "demo", "--mountpoint",
                             str(where), "--data", str(tmp_path / "data")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if "Press Ctrl-C" in line:
                break
        assert os.path.ismount(where), "".join(lines)
        assert {"Inspections", "Design", "Archive", "Projects"} <= set(os.listdir(where))
        wait_for(lambda: (where / "Welcome to the demo library.md").exists(), 30)
        assert b"generated by the aionfs emulator" in (
            where / "Welcome to the demo library.md").read_bytes()
        assert "export AIONVISION_API_KEY=" in "".join(lines)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert not os.path.ismount(where)


IN_MOVED_FROM, IN_MOVED_TO, IN_CREATE, IN_DELETE, IN_DELETE_SELF = (
    0x40, 0x80, 0x100, 0x200, 0x400)


class Watch:
    """An inotify watch on one path; collects (mask, name) events."""

    def __init__(self, path: Path) -> None:
        import ctypes

        self.libc = ctypes.CDLL("libc.so.6", use_errno=True)
        self.fd = self.libc.inotify_init1(os.O_NONBLOCK)
        assert self.libc.inotify_add_watch(self.fd, os.fsencode(path), 0xFFF) >= 0
        self.events: list[tuple[int, str]] = []

    def wait(self, predicate: Callable[[list[tuple[int, str]]], bool],
             seconds: float = 15) -> list[tuple[int, str]]:
        import select
        import struct

        deadline = time.monotonic() + seconds
        while not predicate(self.events) and time.monotonic() < deadline:
            if select.select([self.fd], [], [], 0.1)[0]:
                buf = os.read(self.fd, 65536)
                pos = 0
                while pos < len(buf):
                    _wd, mask, _cookie, length = struct.unpack_from("iIII", buf, pos)
                    name = buf[pos + 16:pos + 16 + length].rstrip(b"\0").decode()
                    self.events.append((mask, name))
                    pos += 16 + length
        return self.events

    def close(self) -> None:
        os.close(self.fd)


def saw(mask: int, name: str = "") -> Callable[[list[tuple[int, str]]], bool]:
    return lambda events: any(m & mask and n == name for m, n in events)


def test_inotify_watch_on_a_file_sees_its_remote_delete(mounted: Mount, library: Library,
                                                        emulator: EmulatorProcess) -> None:
    """The daemon sends the kernel a delete notification for the file's own inode,
    which Linux turns into IN_DELETE_SELF for watchers of the file."""
    extra = api_call(emulator, library,
                     lambda c: c.upload_file(image_bytes((7, 1, 7)), "doomed.jpg"))
    wait_for(lambda: (mounted.path / "doomed.jpg").exists())
    watch = Watch(mounted.path / "doomed.jpg")
    try:
        api_call(emulator, library, lambda c: c.delete_file(extra.image_id))
        assert saw(IN_DELETE_SELF)(watch.wait(saw(IN_DELETE_SELF)))
    finally:
        watch.close()
    assert not (mounted.path / "doomed.jpg").exists()


def test_directory_watchers_see_remote_changes(mounted: Mount, library: Library,
                                               emulator: EmulatorProcess) -> None:
    """A file manager watching a folder sees files appear, get renamed and vanish remotely."""
    os.listdir(mounted.path / "Site")
    watch = Watch(mounted.path / "Site")
    site = library.ids["site"]
    try:
        extra = api_call(emulator, library,
                         lambda c: c.upload_file(image_bytes((9, 1, 9)), "arrived.jpg"))
        api_call(emulator, library, lambda c: c.move_files([extra.image_id], site))
        # created in Site, or created at the root and then moved in
        arrived = saw(IN_CREATE | IN_MOVED_TO, "arrived.jpg")
        assert arrived(watch.wait(arrived))
        api_call(emulator, library, lambda c: c.update_file(extra.image_id, title="Renamed"))
        watch.wait(saw(IN_MOVED_TO, "Renamed.jpg"))
        assert saw(IN_MOVED_FROM, "arrived.jpg")(watch.events)
        assert saw(IN_MOVED_TO, "Renamed.jpg")(watch.events)
        api_call(emulator, library, lambda c: c.delete_file(extra.image_id))
        assert saw(IN_DELETE, "Renamed.jpg")(watch.wait(saw(IN_DELETE, "Renamed.jpg")))
    finally:
        watch.close()
    assert sorted(os.listdir(mounted.path / "Site")) == ["North", "Pole 1.jpg"]


def test_a_crawl_of_folders_nobody_opened_replays_nothing_through_the_mount(
        emulator: EmulatorProcess, tmp_path: Path) -> None:
    """Remote changes are replayed through the mount for inotify watchers (echo); a
    folder whose inode the kernel does not hold has none, and the names a first listing
    brings are in that listing: a fresh mount's crawl of folders nobody opened sends no
    mknod to its own mount (it sent one per file it placed)."""
    key = emulator.new_tenant(plan="enterprise")

    async def build() -> None:
        async with make_client(emulator, key) as c:
            for f in range(4):
                folder = await c.create_folder(f"Folder {f}")
                ids = [(await c.upload_file(image_bytes((f * 40, i * 20, 9)),
                                            f"photo {f}-{i}.jpg")).image_id for i in range(8)]
                await c.move_files(ids, folder.id)

    trio.run(build)
    m = mount(emulator, key, tmp_path / "mnt", tmp_path / "cache")
    try:
        wait_for(lambda: m.status()["sync"]["root"] == "complete", timeout=30)
        assert m.status()["sync"]["files"] == 32  # (there was something to place)
        assert m.status()["kernel_requests"].get("mknod", 0) == 0
        assert len(os.listdir(m.path / "Folder 2")) == 8  # opened now: from the store
        assert m.status()["kernel_requests"].get("mknod", 0) == 0
    finally:
        m.unmount()
