"""Seeded thumbnails: the standard's rules, and seeding on a real mount."""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import io
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from aionfs.thumbs.standard import (
    file_uri,
    is_current,
    make_thumbnail,
    text_chunks,
    thumbnail_path,
    with_uri,
)
from tests.conftest import EmulatorProcess
from tests.media import noise_jpeg
from tests.mounting import Mount, api_call, mount, wait_for

TRICKY = ["/home/u/Aion/Site A/pole #1.jpg", "/tmp/50% off?.png", "/m/a;b[c]{d}`e^.jpg",
          "/m/Ärger über Straße/naïve façade.webp", "/m/!$&'()*+,-.:=@_~.gif",
          "/m/日本語/写真.jpg", "/m/tab\there\"quote<>|\\.png"]


def _glib_uri(path: str) -> str | None:
    name = ctypes.util.find_library("glib-2.0")
    if name is None:
        return None
    glib = ctypes.CDLL(name)
    glib.g_filename_to_uri.restype = ctypes.c_void_p
    glib.g_filename_to_uri.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_void_p]
    ptr = glib.g_filename_to_uri(os.fsencode(path), None, None)
    uri = ctypes.string_at(ptr).decode()
    glib.g_free(ctypes.c_void_p(ptr))
    return uri


@pytest.mark.parametrize("path", TRICKY)
def test_the_uri_is_encoded_exactly_as_glib_does(path: str) -> None:
    """File managers (GLib) hash the URI they make; one byte off and no thumbnail is found."""
    uri = file_uri(path)
    assert uri.startswith("file:///") and " " not in uri
    glib = _glib_uri(path)
    if glib is None:
        pytest.skip("libglib-2.0 is not installed (make test installs it)")
    assert uri == glib


def test_known_encodings() -> None:
    assert file_uri("/home/u/Aion/Site A/pole #1.jpg") == \
        "file:///home/u/Aion/Site%20A/pole%20%231.jpg"
    assert file_uri("/m/Straße/ü.jpg") == "file:///m/Stra%C3%9Fe/%C3%BC.jpg"
    assert file_uri("/m/!$&'()*+,-.:=@_~") == "file:///m/!$&'()*+,-.:=@_~"
    uri = "file:///home/u/Aion/a.jpg"
    assert thumbnail_path(Path("/c/thumbnails"), "large", uri) == Path(
        "/c/thumbnails/large") / (hashlib.md5(uri.encode()).hexdigest() + ".png")


@pytest.mark.parametrize(("bucket", "edge"), [("normal", 128), ("large", 256),
                                              ("x-large", 512), ("xx-large", 1024)])
def test_a_thumbnail_carries_the_standards_chunks_and_fits_its_bucket(bucket: str,
                                                                      edge: int) -> None:
    source = Image.new("RGB", (1024, 768), (200, 30, 30))
    png = make_thumbnail(source, bucket, uri="file:///m/a.jpg", mtime=1700000000, size=12345,
                         mime="image/jpeg")
    img = Image.open(io.BytesIO(png))
    assert img.format == "PNG" and max(img.size) == edge and img.size[0] / img.size[1] == 4 / 3
    chunks = text_chunks(png)
    assert chunks["Thumb::URI"] == "file:///m/a.jpg"
    assert chunks["Thumb::MTime"] == "1700000000"
    assert chunks["Thumb::Size"] == "12345" and chunks["Thumb::Mime"] == "image/jpeg"
    assert img.text["Thumb::URI"] == "file:///m/a.jpg"  # what any PNG reader sees


def test_a_small_image_is_not_scaled_up() -> None:
    png = make_thumbnail(Image.new("RGB", (90, 60)), "large", uri="file:///x", mtime=1, size=1,
                         mime=None)
    assert Image.open(io.BytesIO(png)).size == (90, 60)


def test_a_changed_mtime_or_uri_makes_a_thumbnail_stale(tmp_path: Path) -> None:
    p = tmp_path / "t.png"
    p.write_bytes(make_thumbnail(Image.new("RGB", (300, 200)), "normal", uri="file:///m/a.jpg",
                                 mtime=1700000000, size=5, mime=None))
    assert is_current(p, "file:///m/a.jpg", 1700000000)
    assert not is_current(p, "file:///m/a.jpg", 1700000001)
    assert not is_current(p, "file:///m/b.jpg", 1700000000)
    assert not is_current(tmp_path / "missing.png", "file:///m/a.jpg", 1700000000)
    p.write_bytes(b"not a png")
    assert not is_current(p, "file:///m/a.jpg", 1700000000)


def test_a_renamed_files_thumbnail_is_the_same_image_under_its_new_uri(tmp_path: Path) -> None:
    old = make_thumbnail(Image.effect_noise((300, 200), 60), "large", uri="file:///m/a.jpg",
                         mtime=1700000000, size=5, mime="image/jpeg")
    assert with_uri(old, "file:///m/other.jpg", "file:///m/b.jpg") is None  # not its own
    new = with_uri(old, "file:///m/a.jpg", "file:///m/Caf%C3%A9%20%231.jpg")
    assert new is not None
    p = tmp_path / "t.png"
    p.write_bytes(new)
    assert is_current(p, "file:///m/Caf%C3%A9%20%231.jpg", 1700000000)
    assert text_chunks(new)["Thumb::Mime"] == "image/jpeg"
    with Image.open(io.BytesIO(new)) as img:  # libpng-grade check: every chunk's CRC
        img.load()
        assert img.tobytes() == Image.open(io.BytesIO(old)).tobytes()
    assert with_uri(b"not a png", "file:///x", "file:///y") is None


# -- on a real mount ----------------------------------------------------------------------

class Lib:
    def __init__(self, key: str, ids: dict[str, str]) -> None:
        self.key, self.ids = key, ids


@pytest.fixture
def photos(emulator: EmulatorProcess) -> Lib:
    """A folder of photos and a document, in a workspace without a rate limit."""
    key = emulator.new_tenant(rpm=0)

    async def make(c: object) -> dict[str, str]:
        from aionfs.api.client import AionClient, UploadItem

        assert isinstance(c, AionClient)
        folder = await c.create_folder("Photos")
        items = [UploadItem(f"IMG_{i:03}.jpg", noise_jpeg((400, 300), seed=i), "image/jpeg")
                 for i in range(8)]
        items.append(UploadItem("notes.md", b"# not an image\n", "text/markdown"))
        _, results = await c.upload_batch(items)
        ids = [r.image_id for r in results if r.image_id]
        assert len(ids) == 9
        await c.move_files(ids, folder.id)
        return {"folder": folder.id}

    return Lib(key, api_call(emulator, Lib(key, {}), make))


@pytest.fixture
def thumb_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "xdg-cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(home))  # the daemon's: where it writes them
    return home / "thumbnails"


@pytest.fixture
def mounted(emulator: EmulatorProcess, photos: Lib, tmp_path: Path,
            thumb_home: Path) -> Iterator[Mount]:
    m = mount(emulator, photos.key, tmp_path / "mnt", tmp_path / "cache")
    try:
        yield m
    finally:
        m.unmount()


def variant_and_download_counts(emulator: EmulatorProcess, key: str) -> Counter[str]:
    c: Counter[str] = Counter()
    for e in emulator.requests(key):
        if "/variant/" in e["path"]:
            c["variant"] += 1
            c[e["path"].split("/")[-3]] += 1  # per file id
        elif e["path"].endswith("/download"):
            c["download"] += 1
    return c


def current_thumbnails(root: Path, folder: Path) -> dict[str, set[str]]:
    """name → buckets whose thumbnail a file manager would take for it now."""
    out: dict[str, set[str]] = {}
    for name in sorted(os.listdir(folder)):
        uri = file_uri(folder / name)
        mtime = int(os.stat(folder / name).st_mtime)
        out[name] = {b for b in ("normal", "large", "x-large", "xx-large")
                     if is_current(thumbnail_path(root, b, uri), uri, mtime)}
    return out


def gio_list(folder: Path) -> list[str]:
    """The folder opened by a GIO program (as a GTK file manager or dialog opens it)."""
    import subprocess

    out = subprocess.run(["gio", "list", str(folder)], capture_output=True, text=True,
                         check=True, timeout=60).stdout
    return out.split()


needs_gio = pytest.mark.skipif(__import__("shutil").which("gio") is None,
                               reason="needs gio (libglib2.0-bin; make test installs it)")


@needs_gio
def test_a_folder_opened_by_a_gio_program_gets_thumbnails_at_no_request(
        mounted: Mount, emulator: EmulatorProcess, photos: Lib, thumb_home: Path) -> None:
    folder = mounted.path / "Photos"
    names = gio_list(folder)
    photos_ = [n for n in names if n.endswith(".jpg")]
    # the opening waited for them: they are there when the listing comes back
    assert all(current_thumbnails(thumb_home, folder)[n] == {"normal", "large"}
               for n in photos_)
    assert current_thumbnails(thumb_home, folder)["notes.md"] == set()  # left to the desktop
    counts = variant_and_download_counts(emulator, photos.key)
    assert counts["download"] == 0  # no original was read
    # the listing's presigned thumbnail URLs: not one API request for the thumbnails
    assert counts["variant"] == 0
    assert f"{len(photos_)} through listed URLs" in _status(mounted)
    png = thumbnail_path(thumb_home, "large", file_uri(folder / photos_[0]))
    assert oct(png.stat().st_mode & 0o777) == "0o600"
    with Image.open(png) as img:
        assert img.size == (256, 192)
    # the same images elsewhere on the mount (a virtual folder) cost no request
    by_date = mounted.path / "by-date"
    year = sorted(os.listdir(by_date))[0]
    month_dir = by_date / year / sorted(os.listdir(by_date / year))[0]
    shown = [n for n in gio_list(month_dir) if n.endswith(".jpg")]
    assert shown and all(current_thumbnails(thumb_home, month_dir)[n] for n in shown)
    assert variant_and_download_counts(emulator, photos.key)["variant"] == 0
    assert f"{len(photos_)} through listed URLs" in _status(mounted)


@needs_gio
def test_expired_listed_urls_fall_back_to_one_variant_request(
        emulator: EmulatorProcess, photos: Lib, tmp_path: Path, thumb_home: Path) -> None:
    """A presigned URL from a listing too old to trust: the variant endpoint instead
    (one request for that image), never a missing thumbnail, never an original."""
    import sqlite3

    m = mount(emulator, photos.key, tmp_path / "mnt", tmp_path / "cache",
              "--poll-interval", "600", "--revalidate-interval", "600")
    folder = m.path / "Photos"
    try:
        names = sorted(n for n in os.listdir(folder) if n.endswith(".jpg"))  # listed
        stale = [os.getxattr(folder / n, "user.aion.id").decode() for n in names[:3]]
        db = sqlite3.connect(next((tmp_path / "cache").glob("*/metadata.sqlite3")))
        with db:  # listed long ago, as after a suspend: their URLs have expired
            db.executemany("UPDATE file_urls SET listed_at_epoch=0 WHERE file_id=?",
                           [(i,) for i in stale])
        db.close()
        gio_list(folder)
        assert all(current_thumbnails(thumb_home, folder)[n] == {"normal", "large"}
                   for n in names)
        counts = variant_and_download_counts(emulator, photos.key)
        assert counts["download"] == 0
        assert counts["variant"] == 3 and all(counts[i] == 1 for i in stale)
    finally:
        m.unmount()


def test_walkers_and_scripts_seed_nothing(mounted: Mount, emulator: EmulatorProcess,
                                          photos: Lib, thumb_home: Path) -> None:
    """find, ls, rsync, backup scripts: no variant request, no PNG in the user's cache
    (one `find ~/Aion` must not fetch a thumbnail for every image of the library)."""
    import subprocess

    subprocess.run(["find", str(mounted.path / "Photos")], check=True, capture_output=True)
    subprocess.run(["ls", "-l", str(mounted.path / "Photos")], check=True, capture_output=True)
    assert len(list(os.walk(mounted.path / "Photos"))) == 1
    # each opening was judged (a walker's: nothing to seed, now or later)
    assert mounted.status()["thumbnails"]["walkers"] >= 3
    assert variant_and_download_counts(emulator, photos.key)["variant"] == 0
    assert not thumb_home.exists()


@needs_gio
def test_thumbnails_follow_remote_renames_deletes_and_remounts(
        emulator: EmulatorProcess, photos: Lib, tmp_path: Path, thumb_home: Path) -> None:
    m = mount(emulator, photos.key, tmp_path / "mnt", tmp_path / "cache")
    folder = m.path / "Photos"
    try:
        gio_list(folder)
        assert sum(bool(v) for v in current_thumbnails(thumb_home, folder).values()) == 8
        old = thumbnail_path(thumb_home, "normal", file_uri(folder / "IMG_000.jpg"))
        file_id = os.getxattr(folder / "IMG_000.jpg", "user.aion.id").decode()
        gone = thumbnail_path(thumb_home, "normal", file_uri(folder / "IMG_001.jpg"))
        gone_id = os.getxattr(folder / "IMG_001.jpg", "user.aion.id").decode()
        mtime = int((folder / "IMG_000.jpg").stat().st_mtime)
        api_call(emulator, photos, lambda c: c.update_file(file_id, title="Renamed"))
        api_call(emulator, photos, lambda c: c.delete_file(gone_id))
        wait_for(lambda: not old.exists() and not gone.exists(), timeout=30)
        # the renamed file's thumbnail went with it, before anything listed the folder
        # again (a file manager told of the new name looks it up at once)
        renamed = file_uri(folder / "Renamed.jpg")
        assert is_current(thumbnail_path(thumb_home, "normal", renamed), renamed, mtime)
        wait_for(lambda: "Renamed.jpg" in gio_list(folder) and current_thumbnails(
            thumb_home, folder).get("Renamed.jpg") == {"normal", "large"}, timeout=30)
    finally:
        m.unmount()
    before = variant_and_download_counts(emulator, photos.key)["variant"]
    m = mount(emulator, photos.key, tmp_path / "mnt", tmp_path / "cache")
    try:
        gio_list(m.path / "Photos")
        assert " 7 images current" in _status(m)
        assert variant_and_download_counts(emulator, photos.key)["variant"] == before
    finally:
        m.unmount()


def _status(m: Mount) -> str:
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "aionfs", "status", str(m.path)], env=m.env,
                          capture_output=True, text=True).stdout


def test_no_thumbnails_means_none(emulator: EmulatorProcess, photos: Lib, tmp_path: Path,
                                  thumb_home: Path) -> None:
    m = mount(emulator, photos.key, tmp_path / "mnt", tmp_path / "cache", "--no-thumbnails")
    try:
        if __import__("shutil").which("gio"):
            gio_list(m.path / "Photos")
        os.listdir(m.path / "Photos")
        assert m.status()["thumbnails"] is None  # no seeder runs: nothing can come later
        assert not thumb_home.exists()
        assert variant_and_download_counts(emulator, photos.key)["variant"] == 0
    finally:
        m.unmount()


def test_bad_thumbnail_sizes_are_refused(emulator: EmulatorProcess, photos: Lib,
                                         tmp_path: Path) -> None:
    import subprocess
    import sys

    env = {**os.environ, "AIONVISION_API_KEY": photos.key,
           "AIONVISION_BASE_URL": emulator.base_url}
    (tmp_path / "mnt").mkdir()
    res = subprocess.run([sys.executable, "-m", "aionfs", "mount", str(tmp_path / "mnt"),
                          "--thumbnail-sizes", "huge"], env=env, capture_output=True,
                         text=True)
    assert res.returncode == 2 and "choose from normal, large, x-large, xx-large" in res.stderr
    assert not os.path.ismount(tmp_path / "mnt")


@needs_gio
def test_gtk_applications_see_the_description_and_tags(
        mounted: Mount, emulator: EmulatorProcess, photos: Lib) -> None:
    """What GIO (Nautilus, every GTK file dialog) reads of the desktop attributes."""
    import subprocess

    target = mounted.path / "Photos" / "IMG_003.jpg"
    file_id = os.getxattr(target, "user.aion.id").decode()
    api_call(emulator, photos, lambda c: c.update_file(file_id, tags=["pole", "rust"]))
    def tags() -> bytes:
        try:
            return os.getxattr(target, "user.xdg.tags")
        except OSError:  # ENODATA: no tags yet
            return b""

    wait_for(lambda: tags() == b"pole,rust", timeout=30)
    out = subprocess.run(["gio", "info", "-a", "xattr::*", str(target)], capture_output=True,
                         text=True, check=True).stdout
    description = os.getxattr(target, "user.xdg.comment")
    shown = "".join(chr(b) if 32 <= b < 127 and b != 0x5C else f"\\x{b:02x}"
                    for b in description)  # gio escapes bytes outside printable ASCII
    assert description and f"xattr::xdg.comment: {shown}" in out
    assert "xattr::xdg.tags: pole,rust" in out
