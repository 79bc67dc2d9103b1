"""One user's session on the drive, action by action, with the API requests each costs.

The rules of docs/requests.md, as code: each action a user takes has a floor
of API requests (storage requests through presigned URLs are not counted:
they cost nothing of the plan's budget). `Session.step` runs one action
through real programs on a real mount, counts the API requests the emulator
saw meanwhile, and records any error the action met. The FREE-plan
end-to-end test (tests/test_plans.py) asserts each count within its floor
and no error; `make bench` prints the whole table for FREE and PROFESSIONAL.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aionfs.api import AionClient, UploadItem
from aionfs.thumbs.standard import file_uri, is_current, thumbnail_path
from tests.conftest import EmulatorProcess
from tests.media import noise_jpeg
from tests.mounting import Mount, api_call, mount

#: requests a minute and upload batch size of each plan (the vendor's plans)
PLANS = {"free": (10, 10), "starter": (30, 50), "professional": (100, 100),
         "enterprise": (500, 200)}
#: share of the plan's budget polling may take while idle (sync/engine.py POLL_SHARE)
POLL_SHARE = 0.1
#: API requests one upload batch costs: duplicate check, upload, its results, the
#: move into the folder, the listing that shows what landed
PER_BATCH = 5


@dataclass
class Step:
    action: str
    requests: int
    floor: int
    seconds: float
    errors: list[str] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)  # "GET /user-files", … as sent

    @property
    def within(self) -> bool:
        return self.requests <= self.floor


@dataclass
class Library:
    key: str
    folder: str  # the folder of photos, at the root
    photos: int
    files: int  # in the whole workspace
    folders: int


def make_library(emulator: EmulatorProcess, plan: str, photos: int, *,
                 size: tuple[int, int] = (640, 480)) -> Library:
    """A workspace on `plan` (the service enforcing its rate): a folder of photos,
    a folder of notes, and three files at the root."""
    key = emulator.new_tenant(plan=plan, rpm=0)  # made at full speed, then the plan's rate

    async def make(c: AionClient) -> None:
        site = await c.create_folder("Site")
        notes = await c.create_folder("Notes")
        images = [UploadItem(f"IMG_{i:04}.jpg", noise_jpeg(size, seed=i), "image/jpeg")
                  for i in range(photos)]
        docs = [UploadItem(f"note_{i}.txt", f"note {i}\n".encode(), "text/plain")
                for i in range(5)]
        loose = [UploadItem(f"loose_{i}.txt", f"loose {i}\n".encode(), "text/plain")
                 for i in range(3)]
        batch = PLANS[plan][1]
        for items, folder in ((images, site.id), (docs, notes.id), (loose, None)):
            for at in range(0, len(items), batch):
                _, results = await c.upload_batch(items[at:at + batch])
                ids = [r.image_id for r in results if r.image_id]
                if folder is not None:
                    await c.move_files(ids, folder)

    api_call(emulator, _Key(key), make)
    emulator.patch_tenant(key, rpm=None)  # now the plan's rate, enforced by the service
    return Library(key, "Site", photos, photos + 8, 2)


@dataclass
class _Key:
    key: str


class Session:
    """A mount of the library as a new user makes it: the plan learnt, defaults."""

    def __init__(self, emulator: EmulatorProcess, lib: Library, root: Path,
                 plan: str) -> None:
        self.emulator, self.lib, self.root, self.plan = emulator, lib, root, plan
        self.rpm, self.batch = PLANS[plan]
        self.steps: list[Step] = []
        self.env = {**os.environ, "XDG_CACHE_HOME": str(root / "xdg-cache")}
        self.mount: Mount | None = None

    # -- counting -------------------------------------------------------------------

    def _api_calls(self, since: int) -> list[str]:
        return [f"{e['method']} {e['path']}" for e in self.emulator.requests(self.lib.key, since)
                if e["kind"] == "api"]

    def step(self, action: str, floor: int, fn: Callable[[], object]) -> Step:
        mark = len(self.emulator.requests(self.lib.key))
        started = time.monotonic()
        errors: list[str] = []
        try:
            fn()
        except (OSError, subprocess.CalledProcessError, AssertionError) as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
        calls = self._api_calls(mark)
        done = Step(action, len(calls), floor, time.monotonic() - started, errors, calls)
        self.steps.append(done)
        return done

    # -- the actions --------------------------------------------------------------------

    @property
    def path(self) -> Path:
        assert self.mount is not None
        return self.mount.path

    @property
    def folder(self) -> Path:
        return self.path / self.lib.folder

    def photos(self, n: int) -> list[Path]:
        return sorted(self.folder.glob("IMG_*.jpg"))[:n]

    def do_mount(self) -> None:
        """Mount and wait until the first crawl is over (`aionfs status`)."""
        self.mount = mount(self.emulator, self.lib.key, self.root / "m", self.root / "c",
                           "--cache-size", "1", options=(), env=self.env)
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            if self.status()["sync"]["last_sync"]:
                return
            time.sleep(0.5)
        raise AssertionError("the first crawl did not finish in 10 minutes")

    def status(self) -> dict[str, Any]:
        res = subprocess.run([sys.executable, "-m", "aionfs", "status", str(self.path),
                              "--json"], env={**self.env, "AIONVISION_API_KEY": self.lib.key},
                             capture_output=True, text=True, timeout=60, check=True)
        return json.loads(res.stdout)  # type: ignore[no-any-return]

    def mount_floor(self) -> int:
        """The plan, the folder tree, each folder's listing and the all-files listing
        that places root files: one request per 100 files each."""
        pages = math.ceil(self.lib.photos / 100) + 1 + math.ceil(self.lib.files / 100)
        return 2 + pages

    def browse(self) -> None:
        for d, _dirs, names in os.walk(self.path):
            if Path(d) == self.path:
                _dirs[:] = [x for x in _dirs if x not in ("search", "text", "colors",
                                                            "tags", "by-date")]
            for n in names:
                os.stat(os.path.join(d, n))
        assert len(os.listdir(self.folder)) == self.lib.photos

    def open_in_file_manager(self) -> None:
        """A GIO program lists the folder (as a GTK file manager does) and the
        thumbnails it would take are seeded."""
        subprocess.run(["gio", "list", "-a", "standard::*,thumbnail::*", str(self.folder)],
                       env=self.env, capture_output=True, check=True, timeout=120)
        thumbs = Path(self.env["XDG_CACHE_HOME"]) / "thumbnails"
        deadline = time.monotonic() + 120
        photos = self.photos(self.lib.photos)
        while time.monotonic() < deadline:
            missing = [p for p in photos if not is_current(
                thumbnail_path(thumbs, "normal", file_uri(p)), file_uri(p),
                int(p.stat().st_mtime))]
            if not missing:
                return
            time.sleep(0.5)
        raise AssertionError(f"{len(missing)} thumbnails never seeded")

    def read(self, n: int) -> None:
        for p in self.photos(n):
            assert len(p.read_bytes()) == p.stat().st_size

    def copy_out(self, dest: Path) -> None:
        """`cp -r` of the folder out of the mount, every byte checked."""
        subprocess.run(["cp", "-r", str(self.folder), str(dest)], check=True, timeout=600)
        copied = sorted(dest.iterdir())
        assert len(copied) == self.lib.photos
        for p in copied:
            assert p.read_bytes() == (self.folder / p.name).read_bytes()

    def reread_after_eviction(self, n: int) -> None:
        Path("/proc/sys/vm/drop_caches").write_text("1")  # (the daemon's cache holds 1 byte)
        self.read(n)

    def xattrs(self, n: int) -> None:
        for p in self.photos(n):
            for name in os.listxattr(p):
                try:
                    os.getxattr(p, name)
                except OSError as exc:
                    if exc.errno != 61:  # ENODATA: an attribute the file turned out not to have
                        raise

    def search(self) -> None:
        os.listdir(self.path / "search" / "photo")

    def colors(self) -> None:
        os.listdir(self.path / "colors" / "warm")

    def tags(self) -> None:
        for tag in os.listdir(self.path / "tags")[:3]:
            os.listdir(self.path / "tags" / tag)

    def copy_in(self, n: int, source: Path) -> None:
        source.mkdir(exist_ok=True)
        for i in range(n):
            (source / f"new_{i:03}.jpg").write_bytes(noise_jpeg((320, 240), seed=1000 + i))
        subprocess.run(["cp", "-r", str(source), str(self.path / "Incoming")], check=True,
                       timeout=120)
        res = subprocess.run([sys.executable, "-m", "aionfs", "flush", str(self.path),
                              "--timeout", "900"], env={**self.env,
                                                        "AIONVISION_API_KEY": self.lib.key},
                             capture_output=True, text=True, timeout=960)
        assert res.returncode == 0, res.stdout + res.stderr

    def copy_floor(self, n: int) -> int:
        """A folder made, the batch size asked once a mount, and the files in batches
        of the plan's size."""
        return 2 + PER_BATCH * math.ceil(n / self.batch)

    def rename(self) -> None:
        first = self.photos(1)[0]
        first.rename(first.with_name("renamed.jpg"))

    def delete(self) -> None:
        (self.folder / "renamed.jpg").unlink()

    def idle(self, seconds: float = 60) -> None:
        time.sleep(seconds)

    def idle_floor(self) -> int:
        return max(1, math.floor(POLL_SHARE * self.rpm))

    def unmount(self) -> None:
        if self.mount is not None:
            self.mount.unmount()
            self.mount = None
