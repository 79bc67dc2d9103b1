"""Writing through a real mount: uploads, folders, renames, deletes, and nothing lost."""

from __future__ import annotations

import errno
import hashlib
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import trio

from aionfs.api import AionClient
from tests.conftest import EmulatorProcess, make_client
from tests.media import image_bytes
from tests.mounting import Mount, expect_errno, mount, wait_for, workspace

pytestmark = pytest.mark.skipif(not os.path.exists("/dev/fuse"), reason="needs /dev/fuse")


def call(emulator: EmulatorProcess, key: str, fn: Callable[[AionClient], Any]) -> Any:
    async def go() -> Any:
        async with make_client(emulator, key) as c:
            return await fn(c)
    return trio.run(go)


def drained(m: Mount, cut: set[str] | None = None) -> bool:
    """Every file under the mount's tree is uploaded (xattr user.aion.sync_state);
    with `cut`, files kept as cut off (failed: incomplete) are gathered there instead."""
    for dirpath, dirnames, filenames in os.walk(m.path):
        if dirpath == str(m.path):
            dirnames[:] = [d for d in dirnames if d not in
                           ("search", "text", "colors", "tags", "by-date")]
        for name in filenames:
            try:
                state = os.getxattr(os.path.join(dirpath, name), "user.aion.sync_state")
            except FileNotFoundError:  # renamed or settled while we walked: look again
                return False
            if cut is not None and state.startswith(b"failed: incomplete"):
                cut.add(os.path.relpath(os.path.join(dirpath, name), m.path))
                continue
            if state != b"synced":
                return False
    return True


@pytest.fixture
def tenant(emulator: EmulatorProcess) -> str:
    return emulator.new_tenant(plan="enterprise")


@pytest.fixture
def mounted(emulator: EmulatorProcess, tenant: str, tmp_path: Path) -> Iterator[Mount]:
    m = mount(emulator, tenant, tmp_path / "mnt", tmp_path / "cache", "--write-back-delay", "0.2")
    try:
        yield m
    finally:
        m.unmount()


def sample_tree(root: Path, files: int = 12, seed: int = 1) -> dict[str, str]:
    """Images and documents in nested folders; returns relative path → sha256."""
    rng = random.Random(seed)
    out = {}
    for i in range(files):
        folder = root / ["", "Site A", "Site A/North", "Docs"][i % 4]
        folder.mkdir(parents=True, exist_ok=True)
        if i % 3 == 2:
            name, data = f"report {i}.txt", f"inspection {i} {rng.random()}\n".encode() * 50
        else:
            name = f"photo {i}.{'png' if i % 2 else 'jpg'}"
            data = image_bytes((rng.randrange(256), rng.randrange(256), 90), (64 + i, 48),
                               "PNG" if i % 2 else "JPEG")
        (folder / name).write_bytes(data)
        out[str((folder / name).relative_to(root))] = hashlib.sha256(data).hexdigest()
    return out


def test_copied_trees_reach_the_workspace_once_each(mounted: Mount, tenant: str,
                                                    emulator: EmulatorProcess,
                                                    tmp_path: Path) -> None:
    src = tmp_path / "card"
    expected = sample_tree(src)
    subprocess.run(["cp", "-r", str(src), str(mounted.path / "Inspections")], check=True)
    subprocess.run(["rsync", "-a", f"{src}/", str(mounted.path / "Synced")], check=True)
    # readable at once, from staging, under the final names
    for rel, sha in expected.items():
        assert hashlib.sha256((mounted.path / "Inspections" / rel).read_bytes()).hexdigest() == sha
    inode = os.stat(mounted.path / "Inspections/photo 0.jpg").st_ino
    wait_for(lambda: drained(mounted), timeout=60)
    assert os.stat(mounted.path / "Inspections/photo 0.jpg").st_ino == inode  # kept
    got = workspace(emulator, tenant)
    want = {f"{top}/{rel}": sha for top in ("Inspections", "Synced")
            for rel, sha in expected.items()}
    assert {k: v[1] for k, v in got.items()} == want


def test_editor_saves_upload_once_and_scratch_files_stay_local(
        mounted: Mount, tenant: str, emulator: EmulatorProcess) -> None:
    m = mounted.path
    # write a temp file, rename it over the real name (gedit, GNOME)
    (m / ".goutputstream-AB12CD").write_bytes(b"first draft\n")
    os.rename(m / ".goutputstream-AB12CD", m / "notes.md")
    # vim: swap file, its write test, then the file
    (m / ".plan.txt.swp").write_bytes(b"swap")
    (m / "4913").write_bytes(b"")
    os.unlink(m / "4913")
    (m / "plan.txt").write_bytes(b"the plan\n")
    # LibreOffice: a lock file beside the document
    (m / ".~lock.report.docx#").write_bytes(b"lock")
    (m / "backup.txt~").write_bytes(b"old")
    wait_for(lambda: drained_names(m, ("notes.md", "plan.txt")), timeout=30)
    mounted.flush()  # everything uploadable has left: scratch files must not have
    names = sorted(k for k in workspace(emulator, tenant))
    assert names == ["notes.md", "plan.txt"]
    assert (m / ".plan.txt.swp").read_bytes() == b"swap"  # kept, locally
    assert os.getxattr(m / ".plan.txt.swp", "user.aion.sync_state") == b"local"
    # saving again, the same way: the old file is replaced (deleted once the new is in)
    (m / ".goutputstream-EF34GH").write_bytes(b"second draft\n")
    os.rename(m / ".goutputstream-EF34GH", m / "notes.md")
    wait_for(lambda: drained_names(m, ("notes.md",)), timeout=30)
    got = workspace(emulator, tenant)
    assert got["notes.md"][1] == hashlib.sha256(b"second draft\n").hexdigest()
    assert sorted(got) == ["notes.md", "plan.txt"]
    assert (m / "notes.md").read_bytes() == b"second draft\n"


def drained_names(m: Path, names: tuple[str, ...]) -> bool:
    try:
        return all(os.getxattr(m / n, "user.aion.sync_state") == b"synced" for n in names)
    except OSError:
        return False


@pytest.mark.daemon_log(r"rmdir failed \(ENOTEMPTY\)")
def test_renames_moves_and_deletes_reach_the_api_and_survive_a_remount(
        emulator: EmulatorProcess, tenant: str, tmp_path: Path) -> None:
    m = mount(emulator, tenant, tmp_path / "m", tmp_path / "c", "--write-back-delay", "0.2")
    try:
        p = m.path
        os.makedirs(p / "Jobs/2024")
        (p / "Jobs/a.jpg").write_bytes(image_bytes((1, 2, 3)))
        (p / "b.png").write_bytes(image_bytes((4, 5, 6), fmt="PNG"))
        wait_for(lambda: drained(m), timeout=30)
        os.rename(p / "Jobs/a.jpg", p / "Jobs/renamed.jpg")          # PATCH title
        os.rename(p / "b.png", p / "Jobs/2024/b.png")                  # move-files
        os.rename(p / "Jobs/2024", p / "Jobs/Year 2024")              # folder rename
        os.mkdir(p / "Archive")
        os.rename(p / "Jobs/Year 2024", p / "Archive/Year 2024")      # folder move
        os.setxattr(p / "Jobs/renamed.jpg", "user.aion.tags", b"roof, rust")
        (p / "gone.txt").write_bytes(b"short-lived")
        wait_for(lambda: drained(m), timeout=30)
        os.unlink(p / "gone.txt")
        with pytest.raises(OSError) as info:
            os.rmdir(p / "Archive")
        assert info.value.errno == errno.ENOTEMPTY
        with pytest.raises(OSError) as info:
            os.rename(p / "Archive", p / "Archive/Year 2024/inside")
        assert info.value.errno == errno.EINVAL
        os.mkdir(p / "Empty")
        os.rmdir(p / "Empty")
    finally:
        m.unmount()
    got = workspace(emulator, tenant)
    assert sorted(got) == ["Archive/Year 2024/b.png", "Jobs/renamed.jpg"]
    details = call(emulator, tenant, lambda c: c.get_file(got["Jobs/renamed.jpg"][0]))
    assert details.tags == ["roof", "rust"]
    m = mount(emulator, tenant, tmp_path / "m", tmp_path / "c")
    try:
        wait_for(lambda: (m.path / "Jobs/renamed.jpg").exists())
        assert sorted(os.listdir(m.path / "Archive/Year 2024")) == ["b.png"]
        assert not (m.path / "gone.txt").exists() and not (m.path / "Empty").exists()
    finally:
        m.unmount()



@pytest.mark.daemon_log(
    r"creating \S+ failed \((EPERM|EINVAL)\)",
    r"writing failed \(EFBIG\)",
    r"rename failed \(EPERM\)")
def test_bad_input_gets_a_clear_errno_and_nothing_is_lost(mounted: Mount) -> None:
    p = mounted.path
    expect_errno(errno.EPERM, lambda: (p / "setup.exe").write_bytes(b"MZ"))
    expect_errno(errno.ENAMETOOLONG, lambda: (p / ("x" * 256 + ".txt")).write_bytes(b"x"))
    expect_errno(errno.EINVAL, lambda: (p / os.fsdecode(b"bad\xff.txt")).write_bytes(b"x"))

    def too_big() -> None:
        with open(p / "huge.txt", "wb") as f:
            f.seek(100 * 1000 * 1000)
            f.write(b"x")
    expect_errno(errno.EFBIG, too_big)
    expect_errno(errno.EPERM, lambda: os.rename(p / "huge.txt", p / "huge.exe"))
    os.unlink(p / "huge.txt")
    (p / "kept.txt").write_bytes(b"kept")
    expect_errno(errno.EEXIST, lambda: os.mkdir(p / "kept.txt"))
    wait_for(lambda: drained(mounted), timeout=30)
    assert (p / "kept.txt").read_bytes() == b"kept"
    assert sorted(n for n in os.listdir(p) if "." in n) == ["kept.txt"]


WRITER = textwrap.dedent("""
    import os, sys, random
    root, seed, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    rng = random.Random(seed)
    os.makedirs(os.path.join(root, "Batch"), exist_ok=True)
    for i in range(count):
        data = rng.randbytes(rng.randrange(500, 30000)).hex().encode()  # text: valid UTF-8
        path = os.path.join(root, "Batch", f"file {i}.txt")
        try:
            with open(path, "wb") as f:
                f.write(data)
        except OSError:
            break
        print(i, flush=True)
""")


@pytest.mark.daemon_log(r"whose writing never finished \(no close\) may be cut off")
@pytest.mark.parametrize("seed", [3, 11])
def test_kill_9_loses_no_closed_file(emulator: EmulatorProcess, tenant: str, tmp_path: Path,
                                     seed: int) -> None:
    """kill -9 the daemon during a copy: every file whose close returned arrives once;
    no other file arrives half-written."""
    count = 500
    m = mount(emulator, tenant, tmp_path / "m", tmp_path / "c", "--write-back-delay", "0.1")
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(m.path), str(seed), str(count)],
                              stdout=subprocess.PIPE, text=True)
    assert writer.stdout is not None
    kill_after = random.Random(seed).randrange(10, 490)
    closed = []
    for line in writer.stdout:
        closed.append(int(line))
        if len(closed) == kill_after:
            os.kill(m.pid, signal.SIGKILL)
            break
    closed += [int(line) for line in writer.stdout]
    writer.wait(30)
    writer.stdout.close()
    subprocess.run(["fusermount3", "-u", "-z", str(m.path)], check=False)
    m = mount(emulator, tenant, tmp_path / "m", tmp_path / "c", "--write-back-delay", "0.1")
    cut: set[str] = set()
    try:
        wait_for(lambda: drained(m, cut), timeout=90)
    finally:
        m.unmount()
    # the file being written when the daemon died (if its create got through) may be
    # cut off: it is kept, shown as failed, and never uploaded
    assert len(cut) <= 1 and not {f"Batch/file {n}.txt" for n in closed} & cut, cut
    rng = random.Random(seed)
    want = {f"Batch/file {i}.txt": hashlib.sha256(
        rng.randbytes(rng.randrange(500, 30000)).hex().encode()).hexdigest()
        for i in range(count)}
    got = workspace(emulator, tenant)
    for name in closed:
        assert f"Batch/file {name}.txt" in got, name
    for name, (_, sha) in got.items():
        assert want[name] == sha, f"{name} arrived half-written"
        assert name not in cut
    ids = Counter(fid for fid, _ in got.values())
    assert max(ids.values()) == 1
    # the empty staging files the killed daemon had made ahead went at the next start,
    # and those of the clean unmount at the unmount: only the cut file's bytes stay
    assert len(_staging_files(tmp_path / "c")) == len(cut)
    assert _cache_files_made_ahead(tmp_path / "c") == []  # (the content cache's pool: same)


def _staging_files(cache: Path) -> list[Path]:
    return [p for p in cache.glob("*/staging/*") if p.is_file()]


def _cache_files_made_ahead(cache: Path) -> list[Path]:
    return list(cache.glob("*/content/.ready/*"))


@pytest.mark.daemon_log(r"sync failed, keeping the cached library", r"failed \(attempt \d/\d")
def test_uploads_ride_out_faults_and_an_outage(mounted: Mount, tenant: str,
                                               emulator: EmulatorProcess,
                                               tmp_path: Path) -> None:
    src = tmp_path / "src"
    expected = sample_tree(src, files=8, seed=5)
    for d in sorted({str(Path(rel).parent) for rel in expected}):
        os.makedirs(mounted.path / "Offline" / d, exist_ok=True)  # folders need the API
    emulator.set_faults(tenant, "down:1")
    # file writes succeed while the API is away
    shutil.copytree(src, mounted.path / "Offline", dirs_exist_ok=True)
    time.sleep(1.5)
    assert os.getxattr(mounted.path / "Offline/photo 0.jpg", "user.aion.sync_state") == \
        b"pending"
    emulator.set_faults(tenant, "500:0.3,reset:0.2,latency:50ms", seed=7)
    try:
        wait_for(lambda: drained(mounted), timeout=120)
    finally:
        emulator.set_faults(tenant, "")
    got = workspace(emulator, tenant)
    assert {k: v[1] for k, v in got.items()} == {f"Offline/{k}": v for k, v in expected.items()}


@pytest.mark.daemon_log(r"upload of broken\.txt failed")
def test_status_shows_the_queue_and_unmount_waits_for_it(emulator: EmulatorProcess, tenant: str,
                                                         tmp_path: Path) -> None:
    m = mount(emulator, tenant, tmp_path / "m", tmp_path / "c", "--write-back-delay", "2")
    unmounted = False
    try:
        for i in range(3):
            (m.path / f"late {i}.txt").write_bytes(f"written just before unmount {i}\n".encode())
        (m.path / "broken.txt").write_bytes(b"\xff\xfe not text")  # the service refuses it
        status = subprocess.run([sys.executable, "-m", "aionfs", "status", str(m.path),
                                 "--json"], env=m.env, capture_output=True, text=True,
                                check=True)
        report = __import__("json").loads(status.stdout)
        queue = {q["name"]: q["state"] for q in report["queue"]}
        made = report["files_made_ahead"]["staging"]
        assert made["taken"] + made["made_on_the_spot"] == 4 and made["ready"] > 0, made
        assert queue == {"late 0.txt": "pending", "late 1.txt": "pending",
                         "late 2.txt": "pending", "broken.txt": "pending"}
        wait_for(lambda: os.getxattr(m.path / "broken.txt", "user.aion.sync_state")
                 .startswith(b"failed: "), timeout=30)
        out = subprocess.run([sys.executable, "-m", "aionfs", "unmount", str(m.path)],
                             env=m.env, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        unmounted = True
        status = subprocess.run([sys.executable, "-m", "aionfs", "status", "--cache-dir",
                                 str(m.cache)], env=m.env, capture_output=True, text=True,
                                check=True).stdout
        assert "failed    broken.txt" in status and "not valid UTF-8" in status
        assert len(_staging_files(m.cache)) == 1  # broken.txt's; no file made ahead stays
        assert _cache_files_made_ahead(m.cache) == []
    finally:
        if not unmounted:
            m.unmount()
    assert sorted(workspace(emulator, tenant)) == ["late 0.txt", "late 1.txt", "late 2.txt"]


def test_editing_an_uploaded_file_replaces_it_under_the_same_inode(
        mounted: Mount, tenant: str, emulator: EmulatorProcess) -> None:
    p = mounted.path
    (p / "log.txt").write_bytes(b"line 1\n")
    wait_for(lambda: drained_names(p, ("log.txt",)), timeout=30)
    first = workspace(emulator, tenant)["log.txt"][0]
    call(emulator, tenant, lambda c: c.update_file(first, tags=["daily"]))
    wait_for(lambda: "user.aion.tags" in os.listxattr(p / "log.txt") and
             os.getxattr(p / "log.txt", "user.aion.tags") == b"daily")
    inode = os.stat(p / "log.txt").st_ino
    with open(p / "log.txt", "ab") as f:  # append: an edit of the uploaded file
        f.write(b"line 2\n")
    assert (p / "log.txt").read_bytes() == b"line 1\nline 2\n"
    wait_for(lambda: drained_names(p, ("log.txt",)), timeout=30)
    os.truncate(p / "log.txt", 7)  # truncate(2) edits too
    wait_for(lambda: drained_names(p, ("log.txt",)), timeout=30)
    got = workspace(emulator, tenant)
    assert list(got) == ["log.txt"]
    assert got["log.txt"][1] == hashlib.sha256(b"line 1\n").hexdigest()
    assert got["log.txt"][0] != first  # a new version; the old one is deleted
    assert call(emulator, tenant, lambda c: c.get_file(got["log.txt"][0])).tags == ["daily"]
    assert os.stat(p / "log.txt").st_ino == inode
    assert (p / "log.txt").read_bytes() == b"line 1\n"


@pytest.mark.daemon_log(r"was written into a folder deleted remotely")
def test_a_write_into_a_folder_deleted_remotely_is_kept(emulator: EmulatorProcess, tenant: str,
                                                        tmp_path: Path) -> None:
    m = mount(emulator, tenant, tmp_path / "m", tmp_path / "c", "--write-back-delay", "3")
    try:
        os.mkdir(m.path / "Doomed")
        (m.path / "Doomed/survivor.txt").write_bytes(b"still here\n")
        folder = next(f.id for f in call(emulator, tenant, lambda c: c.folder_tree()))
        call(emulator, tenant, lambda c: c.delete_folder(folder))  # before the upload
        wait_for(lambda: (m.path / "survivor.txt").exists())  # kept in view, at the root
        assert (m.path / "survivor.txt").read_bytes() == b"still here\n"
        wait_for(lambda: drained(m), timeout=60)
    finally:
        m.unmount()
    got = workspace(emulator, tenant)
    assert {k: v[1] for k, v in got.items()} == {
        "survivor.txt": hashlib.sha256(b"still here\n").hexdigest()}


def test_remote_changes_meeting_a_pending_edit_lose_nothing(emulator: EmulatorProcess,
                                                            tenant: str, tmp_path: Path) -> None:
    """A retag made remotely during a local edit is kept by the new version; a file
    replaced remotely (deleted, uploaded anew) and edited locally: both survive."""
    m = mount(emulator, tenant, tmp_path / "m", tmp_path / "c", "--write-back-delay", "3")
    try:
        p = m.path
        (p / "a.txt").write_bytes(b"a1\n")
        (p / "b.txt").write_bytes(b"b1\n")
        wait_for(lambda: drained(m), timeout=30)
        ids = {k: v[0] for k, v in workspace(emulator, tenant).items()}
        with open(p / "a.txt", "ab") as f:
            f.write(b"a2 local\n")
        with open(p / "b.txt", "ab") as f:
            f.write(b"b2 local\n")
        call(emulator, tenant, lambda c: c.update_file(ids["a.txt"], tags=["remote"]))
        call(emulator, tenant, lambda c: c.delete_file(ids["b.txt"]))
        call(emulator, tenant, lambda c: c.upload_file(b"b2 remote\n", "b.txt"))
        time.sleep(1)  # sync sees both remote changes before the local edits go
        wait_for(lambda: drained(m), timeout=30)
    finally:
        m.unmount()
    got = workspace(emulator, tenant)
    assert got["a.txt"][1] == hashlib.sha256(b"a1\na2 local\n").hexdigest()
    assert call(emulator, tenant, lambda c: c.get_file(got["a.txt"][0])).tags == ["remote"]
    shas = sorted(v[1] for k, v in got.items() if k.startswith("b.txt"))
    assert shas == sorted(hashlib.sha256(b).hexdigest()
                          for b in (b"b1\nb2 local\n", b"b2 remote\n"))


def test_folders_made_offline_are_created_when_the_api_returns(
        mounted: Mount, tenant: str, emulator: EmulatorProcess) -> None:
    p = mounted.path
    emulator.set_faults(tenant, "down:1")
    try:
        os.makedirs(p / "Offline/Sub")  # a whole tree, written while the API is away
        (p / "Offline/Sub/field notes.txt").write_bytes(b"written offline\n")
        (p / "Offline/top.txt").write_bytes(b"also offline\n")
        os.mkdir(p / "Offline/Later")
        os.rename(p / "Offline/Later", p / "Offline/Renamed")  # changed before creation
        os.mkdir(p / "Offline/Gone")
        os.rmdir(p / "Offline/Gone")
        inode = os.stat(p / "Offline/Sub").st_ino
        assert sorted(os.listdir(p / "Offline")) == ["Renamed", "Sub", "top.txt"]
    finally:
        emulator.set_faults(tenant, "")
    wait_for(lambda: drained(mounted), timeout=60)
    assert os.stat(p / "Offline/Sub").st_ino == inode
    got = workspace(emulator, tenant)
    assert {k: v[1] for k, v in got.items()} == {
        "Offline/Sub/field notes.txt": hashlib.sha256(b"written offline\n").hexdigest(),
        "Offline/top.txt": hashlib.sha256(b"also offline\n").hexdigest()}
    names = sorted(f.name for f in call(emulator, tenant, lambda c: c.folder_tree()))
    assert names == ["Offline", "Renamed", "Sub"]


@pytest.mark.daemon_log(r"was closed but not yet on disk when the machine stopped")
def test_a_power_loss_keeps_fsyncd_files_and_never_shows_a_half_written_one(
        emulator: EmulatorProcess, tenant: str, tmp_path: Path) -> None:
    """docs/writes.md#durability, with the power loss simulated: the daemon killed
    before its group commit ran, the bytes of the file closed without fsync cut as a
    disk may hold them, and the journal's boot set to another one (the restart is
    after a reboot)."""
    slow = ("--write-back-delay", "3600", "--commit-interval", "3600")
    m = mount(emulator, tenant, tmp_path / "m", tmp_path / "c", *slow)
    try:
        with open(m.path / "saved.txt", "wb") as f:  # what editors do: write, fsync, close
            f.write(b"saved with fsync\n")
            f.flush()
            os.fsync(f.fileno())
        (m.path / "late.txt").write_bytes(b"closed, never fsync'd, the power went\n")
        assert os.getxattr(m.path / "late.txt", "user.aion.sync_state") == b"pending"
    finally:  # the power loss (and the mount gone whatever happened)
        os.kill(m.pid, signal.SIGKILL)
        subprocess.run(["fusermount3", "-u", "-z", str(m.path)], check=False)
    store_path = next((tmp_path / "c").glob("*/metadata.sqlite3"))
    db = sqlite3.connect(store_path)
    rows = dict(db.execute("SELECT name, staging_path FROM upload_journal"))
    db.execute("UPDATE meta SET value='a boot before the power loss' WHERE key='journal_boot'")
    db.commit()
    db.close()
    with open(rows["late.txt"], "r+b") as f:  # what the disk held of it
        f.truncate(6)
    m = mount(emulator, tenant, tmp_path / "m", tmp_path / "c", "--write-back-delay", "0.1")
    try:
        wait_for(lambda: "saved.txt" in workspace(emulator, tenant), timeout=30)
        assert (m.path / "saved.txt").read_bytes() == b"saved with fsync\n"
        assert not (m.path / "late.txt").exists()
        lost = list((store_path.parent / "staging" / "lost+found").iterdir())
        assert [p.name.split("-", 1)[1] for p in lost] == ["late.txt"]
        assert lost[0].read_bytes() == b"closed"  # kept for the user, never uploaded
        m.flush()
        assert sorted(workspace(emulator, tenant)) == ["saved.txt"]
    finally:
        m.unmount()


def test_fsync_of_a_folder_makes_a_careful_save_survive_a_power_loss(
        emulator: EmulatorProcess, tenant: str, tmp_path: Path) -> None:
    """A careful save without fsync of the file itself: written to a new name, closed,
    renamed over, then the folder fsync'd (FUSE_FSYNCDIR). A power loss right after
    (simulated as above) keeps it: it is uploaded after the restart, nothing is set
    aside."""
    slow = ("--write-back-delay", "3600", "--commit-interval", "3600")
    m = mount(emulator, tenant, tmp_path / "m", tmp_path / "c", *slow)
    try:
        (m.path / ".goutputstream-7QX1Z2").write_bytes(b"saved by rename and a folder fsync\n")
        os.rename(m.path / ".goutputstream-7QX1Z2", m.path / "report.txt")
        folder = os.open(m.path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)
    finally:  # the power loss, right after (and the mount gone whatever happened)
        os.kill(m.pid, signal.SIGKILL)
        subprocess.run(["fusermount3", "-u", "-z", str(m.path)], check=False)
    store_path = next((tmp_path / "c").glob("*/metadata.sqlite3"))
    db = sqlite3.connect(store_path)
    db.execute("UPDATE meta SET value='a boot before the power loss' WHERE key='journal_boot'")
    db.commit()
    db.close()
    m = mount(emulator, tenant, tmp_path / "m", tmp_path / "c", "--write-back-delay", "0.1")
    try:
        wait_for(lambda: "report.txt" in workspace(emulator, tenant), timeout=30)
        assert (m.path / "report.txt").read_bytes() == b"saved by rename and a folder fsync\n"
        lost = store_path.parent / "staging" / "lost+found"
        assert not lost.exists() or not list(lost.iterdir())
    finally:
        m.unmount()


def test_a_file_reopened_for_writing_while_its_upload_ends_keeps_the_new_bytes(
        emulator: EmulatorProcess, tenant: str, tmp_path: Path) -> None:
    """Closed, uploading, then opened again and written while the upload ends: the
    upload is not settled under the writer (its close would have found no entry and
    the new bytes been dropped); the close makes a new version, which replaces it."""
    m = mount(emulator, tenant, tmp_path / "m", tmp_path / "c", "--write-back-delay", "0.1")
    try:
        path = m.path / "log.txt"
        path.write_bytes(b"first line\n")
        emulator.set_faults(tenant, "latency:700ms")  # the upload's requests take a while
        wait_for(lambda: os.getxattr(path, "user.aion.sync_state") == b"uploading", 15)
        with open(path, "ab") as f:
            f.write(b"second line\n")
            f.flush()
            time.sleep(3)  # the upload's answers come in while the file is open
        emulator.set_faults(tenant, "")
        wait_for(lambda: drained_names(m.path, ("log.txt",)), timeout=60)
        assert path.read_bytes() == b"first line\nsecond line\n"
        got = workspace(emulator, tenant)
        assert list(got) == ["log.txt"]
        assert got["log.txt"][1] == hashlib.sha256(b"first line\nsecond line\n").hexdigest()
    finally:
        m.unmount()
