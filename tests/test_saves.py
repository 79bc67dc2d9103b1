"""How applications really save, end to end through a real mount.

Each test saves a document the way a program does it (a temp file renamed over
the document, vim, Emacs, LibreOffice, GIO, `sed -i`, `rsync -a`, a plain
rewrite) and checks what the user would notice once the upload queue has
drained:

- the name on the mount shows the newest bytes;
- the workspace (seen through the API) holds exactly one file for the
  document, with those bytes: no clash copy (`doc (1a2b3c4d).md`), no second
  copy under the same name, and no scratch file (`*.tmp`, `x~`, `.#x`,
  `.~lock.x#`, `.goutputstream-*`, `sedXXXXXX`, …);
- timestamps change only when the file does (editors and rsync compare them).

Then POSIX details applications rely on: open-unlinked files, EFBIG, folder
renames over folders, depth limits, links; and two mounts of one workspace.
See docs/writes.md ("The journal and the guarantees").
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import trio

from aionfs.emulator.demo import make_docx
from tests.conftest import EmulatorProcess, make_client
from tests.media import image_bytes
from tests.mounting import (
    VIEWS,
    Mount,
    expect_errno,
    folder_path,
    mount,
    wait_for,
    workspace,
)

pytestmark = pytest.mark.skipif(not os.path.exists("/dev/fuse"), reason="needs /dev/fuse")

#: write-back delay 0, and the default (3 s: the flag left out)
DELAYS = pytest.mark.parametrize("delay", [0.0, None], ids=["delay-0", "delay-default"])
#: where the delay does not matter: short, so that tests stay quick
QUICK = 0.2
#: the workspace takes files up to 100 MB
LIMIT = 100_000_000

StartMount = Callable[..., Mount]


# -- helpers ---------------------------------------------------------------------------------

def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def delay_flags(delay: float | None) -> tuple[str, ...]:
    return () if delay is None else ("--write-back-delay", str(delay))


def sync_state(path: Path) -> bytes | None:
    try:
        return os.getxattr(path, "user.aion.sync_state")
    except OSError:
        return None


def wait_synced(*paths: Path, timeout: float = 30) -> None:
    """Each of `paths` is in the workspace (state `synced`)."""
    deadline = time.monotonic() + timeout
    while not all(sync_state(p) == b"synced" for p in paths):
        if time.monotonic() > deadline:
            states = {p.name: sync_state(p) for p in paths}
            pytest.fail(f"not uploaded within {timeout} s: {states}")
        time.sleep(0.05)


def drained(m: Mount) -> bool:
    """Nothing under the mount waits for upload: every file is `synced`, or a
    scratch file (`local`, kept on this machine)."""
    for dirpath, dirnames, filenames in os.walk(m.path):
        if dirpath == str(m.path):
            dirnames[:] = [d for d in dirnames if d not in VIEWS]
        for name in filenames:
            state = sync_state(Path(dirpath, name))
            if state not in (b"synced", b"local"):
                return False
    return True


def wait_drained(m: Mount, timeout: float = 30) -> None:
    wait_for(lambda: drained(m), timeout=timeout)


def visible(m: Mount, folder: str = "") -> list[str]:
    """The names a user sees in a folder of the mount (the views left out at the root)."""
    return sorted(n for n in os.listdir(m.path / folder) if folder or n not in VIEWS)


def contents(m: Mount, folder: str = "") -> dict[str, str]:
    """Name → sha256 of every file a user sees in a folder of the mount."""
    return {n: sha((m.path / folder / n).read_bytes()) for n in visible(m, folder)
            if (m.path / folder / n).is_file()}


def label(h: str, known: Iterable[bytes]) -> str:
    """The bytes with this sha256, for messages: short ones as they are, long ones by
    their place in `known` (`versions[2]`), unknown ones by a short hash."""
    labels: dict[str, str] = {}
    for i, data in enumerate(known):
        labels.setdefault(sha(data), repr(data) if len(data) <= 40 else f"versions[{i}]")
    return labels.get(h, f"unknown {h[:12]}")


def describe(shas: dict[str, str], known: Iterable[bytes]) -> dict[str, str]:
    """Name → the bytes it holds, for messages."""
    known = list(known)
    return {name: label(h, known) for name, h in shas.items()}


def expect_workspace(emulator: EmulatorProcess, key: str, want: dict[str, bytes],
                     versions: Iterable[bytes] = (), timeout: float = 8,
                     settle: float = 0.5) -> dict[str, tuple[str, str]]:
    """The workspace comes to hold exactly `want` (name → bytes) and stays so for
    `settle` seconds (a late duplicate upload or a late delete would show)."""
    expected = {name: sha(data) for name, data in want.items()}
    known = [*versions, *want.values()]
    deadline = time.monotonic() + timeout
    while True:
        got = workspace(emulator, key)
        if {name: h for name, (_, h) in got.items()} == expected:
            break
        if time.monotonic() > deadline:
            pytest.fail(f"the workspace holds {describe({k: v[1] for k, v in got.items()}, known)}"
                        f", expected {describe(expected, known)}")
        time.sleep(0.3)
    time.sleep(settle)
    again = workspace(emulator, key)
    assert {n: h for n, (_, h) in again.items()} == expected, \
        f"changed after settling: {describe({k: v[1] for k, v in again.items()}, known)}"
    return again


def expect_mount(m: Mount, want: dict[str, bytes], versions: Iterable[bytes] = (),
                 folder: str = "", timeout: float = 5) -> None:
    """The folder of the mount comes to show exactly `want` (name → bytes)."""
    expected = {name: sha(data) for name, data in want.items()}
    known = [*versions, *want.values()]
    deadline = time.monotonic() + timeout
    while True:
        try:
            got = contents(m, folder)
        except OSError:  # a name went away while we read: look again
            got = {}
        if got == expected:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"the mount shows {describe(got, known)} in /{folder}, "
                        f"expected {describe(expected, known)}")
        time.sleep(0.2)


def save_by_rename(doc: Path, data: bytes, temp: str | None = None) -> None:
    """`printf data > doc.tmp; mv doc.tmp doc`: a temp file beside it, renamed over it."""
    tmp = doc.with_name(temp or doc.name + ".tmp")
    tmp.write_bytes(data)
    os.rename(tmp, doc)


def folder_paths(emulator: EmulatorProcess, key: str) -> list[str]:
    """Every folder of the workspace, as a path ('Jobs/2024'), through the API."""
    async def go() -> list[str]:
        async with make_client(emulator, key) as c:
            folders = {f.id: f for f in await c.folder_tree()}
        return sorted(folder_path(folders, fid) for fid in folders)
    return trio.run(go)


def upload_requests(emulator: EmulatorProcess, key: str, since: int) -> list[dict[str, object]]:
    """Upload requests (stream or stream-batch) the workspace got after entry `since`."""
    return [e for e in emulator.requests(key)[since:] if e["method"] == "POST"
            and str(e["path"]).endswith(("/upload/stream", "/upload/stream-batch"))]


def try_symlink(target: str, link: Path) -> None:
    """A symlink the application tolerates being refused (Emacs' lock file)."""
    try:
        os.symlink(target, link)
    except OSError as exc:
        assert exc.errno in (errno.EPERM, errno.ENOTSUP, errno.EROFS), exc


@pytest.fixture
def tenant(emulator: EmulatorProcess) -> str:
    return emulator.new_tenant(plan="enterprise")


@pytest.fixture
def mounts(emulator: EmulatorProcess, tenant: str, tmp_path: Path) -> Iterator[StartMount]:
    """`start(*flags, name="a")` mounts the tenant's workspace (mountpoint and cache dir
    by name: starting a name again unmounts it and mounts it again, with the same cache
    dir); all unmounted at the end."""
    started: dict[str, Mount] = {}

    def start(*flags: str, name: str = "a") -> Mount:
        if name in started:
            started.pop(name).unmount()
        m = mount(emulator, tenant, tmp_path / f"mnt-{name}", tmp_path / f"cache-{name}", *flags)
        started[name] = m
        return m

    try:
        yield start
    finally:
        with ThreadPoolExecutor() as pool:  # each waits for its daemon to exit
            list(pool.map(Mount.unmount, started.values()))


@pytest.fixture
def slow_api(emulator: EmulatorProcess, tenant: str) -> Iterator[Callable[[], None]]:
    """`slow()` makes every API request take 0.8 s more (so an upload stays in flight);
    undone at the end of the test."""
    def slow() -> None:
        emulator.set_faults(tenant, "latency:800ms,api-only:1")

    try:
        yield slow
    finally:
        emulator.set_faults(tenant, "")


# -- a temp file renamed over the document ---------------------------------------------------

@pytest.mark.parametrize("before", ["uploaded", "pending", "uploading"])
@DELAYS
def test_temp_files_renamed_over_a_document_leave_one_file_with_the_newest_bytes(
        mounts: StartMount, emulator: EmulatorProcess, tenant: str,
        slow_api: Callable[[], None], delay: float | None, before: str) -> None:
    """Four quick saves (write doc.md.tmp, rename over doc.md) over a document that is
    uploaded already, still waiting for upload, or being uploaded."""
    m = mounts(*delay_flags(delay))
    doc = m.path / "doc.md"
    doc.write_bytes(b"v1\n")
    if before == "uploaded":
        wait_synced(doc)
    elif before == "uploading":
        slow_api()
        wait_for(lambda: sync_state(doc) == b"uploading", timeout=15)
    versions = [f"v{n}\n".encode() for n in range(1, 6)]
    for data in versions[1:]:
        save_by_rename(doc, data)
    assert doc.read_bytes() == b"v5\n"
    emulator.set_faults(tenant, "")
    wait_synced(doc, timeout=60)
    expect_workspace(emulator, tenant, {"doc.md": b"v5\n"}, versions)
    expect_mount(m, {"doc.md": b"v5\n"}, versions)


# -- vim ---------------------------------------------------------------------------------------

VIM_SETTINGS = {
    "defaults": [],
    "backupcopy-yes": ["set backupcopy=yes"],
    "backupcopy-no": ["set backupcopy=no"],
    "swapfile-here": ["set swapfile", "set directory=."],
}

#: blocks until a file is uploaded (vim calls it between two saves, like a user pausing)
WAIT_SYNCED = textwrap.dedent("""
    import os, sys, time
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if os.getxattr(sys.argv[1], "user.aion.sync_state") == b"synced":
                break
        except OSError:
            pass
        time.sleep(0.05)
""")


def vim(folder: Path, name: str, home: Path, settings: list[str], *commands: str,
        script: str | None = None) -> tuple[int, str]:
    """The real vim, non-interactive, without any user configuration: its exit status
    and the messages it gave (silent in -es mode, so written to a file)."""
    messages = home / "vim-messages.txt"
    messages.unlink(missing_ok=True)
    cmd = ["vim", "-u", "NONE", "-i", "NONE", "-N", "-es", "--cmd", f"redir! > {messages}",
           "--cmd", "set verbose=1"]
    for setting in settings:
        cmd += ["-c", setting]
    if script is not None:
        (home / "edits.vim").write_text(script)
        cmd += ["-S", str(home / "edits.vim")]
    for command in commands:
        cmd += ["-c", command]
    run = subprocess.run([*cmd, name], cwd=folder, stdin=subprocess.DEVNULL,
                         capture_output=True, text=True, timeout=120,
                         env={**os.environ, "HOME": str(home)})
    said = messages.read_text(errors="replace") if messages.exists() else ""
    return run.returncode, " | ".join(line for line in said.splitlines() if line.strip())


needs_vim = pytest.mark.skipif(shutil.which("vim") is None, reason="needs vim")


@needs_vim
@pytest.mark.parametrize("settings", list(VIM_SETTINGS), ids=list(VIM_SETTINGS))
def test_vim_run_four_times_in_a_row_keeps_every_edit(
        mounts: StartMount, emulator: EmulatorProcess, tenant: str, tmp_path: Path,
        settings: str) -> None:
    """`vim -es -c 'normal Goedit N' -c wq note.txt`, four times, each on the uploaded
    result of the one before."""
    m = mounts("--write-back-delay", "0")
    note = m.path / "note.txt"
    note.write_bytes(b"line 0\n")
    wait_synced(note)
    for n in range(1, 5):
        status, said = vim(m.path, "note.txt", tmp_path, VIM_SETTINGS[settings],
                           f"normal Goedit {n}", "wq")
        assert status == 0, f"edit {n}: vim said {said}"
        wait_synced(note)
    want = b"line 0\nedit 1\nedit 2\nedit 3\nedit 4\n"
    assert note.read_bytes() == want
    expect_workspace(emulator, tenant, {"note.txt": want})
    expect_mount(m, {"note.txt": want})


@needs_vim
@DELAYS
def test_vim_saving_four_times_in_one_session_keeps_every_edit(
        mounts: StartMount, emulator: EmulatorProcess, tenant: str, tmp_path: Path,
        delay: float | None) -> None:
    """One vim session: an edit, `:w`, a pause until the upload is done, four times. vim
    refuses (non-interactively: drops) a write when the file's mtime changed since it
    read it, so the upload must not change the mtime."""
    m = mounts(*delay_flags(delay))
    note = m.path / "note.txt"
    note.write_bytes(b"line 0\n")
    wait_synced(note)
    (tmp_path / "wait_synced.py").write_text(WAIT_SYNCED)
    pause = f"call system('{sys.executable} {tmp_path / 'wait_synced.py'} note.txt')\n"
    script = "".join(f"normal Goedit {n}\nw\n{pause}" for n in range(1, 5)) + "qa!\n"
    status, said = vim(m.path, "note.txt", tmp_path, [], script=script)
    want = b"line 0\nedit 1\nedit 2\nedit 3\nedit 4\n"
    wait_synced(note)
    assert note.read_bytes() == want, f"vim (exit status {status}) said: {said}"
    assert status == 0, f"vim said: {said}"
    expect_workspace(emulator, tenant, {"note.txt": want})
    expect_mount(m, {"note.txt": want})


# -- Emacs, LibreOffice, GIO, sed -i -------------------------------------------------------------

def emacs_save(note: Path, data: bytes, *, first_in_session: bool) -> None:
    """Emacs' save, syscall for syscall: the lock symlink `.#note.txt`; at the first save
    of a session the backup by renaming (note.txt → note.txt~, over an older backup)
    and the document written fresh, later saves written in place; fsync, close, the
    modes copied over, the lock removed."""
    lock = note.with_name(".#" + note.name)
    try_symlink(f"user@host.{os.getpid()}:1700000000", lock)
    mode = os.stat(note).st_mode & 0o7777
    if first_in_session:
        os.rename(note, note.with_name(note.name + "~"))
        fd = os.open(note, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    else:
        fd = os.open(note, os.O_WRONLY | os.O_TRUNC)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.chmod(note, mode)
    if os.path.lexists(lock):
        os.unlink(lock)


@DELAYS
def test_emacs_saves_leave_one_file_and_keep_the_backup_local(
        mounts: StartMount, emulator: EmulatorProcess, tenant: str,
        delay: float | None) -> None:
    m = mounts(*delay_flags(delay))
    note = m.path / "note.txt"
    note.write_bytes(b"draft 0\n")
    wait_synced(note)
    versions = [f"draft {n}\n".encode() for n in range(4)]
    emacs_save(note, versions[1], first_in_session=True)   # a session: two saves
    emacs_save(note, versions[2], first_in_session=False)
    emacs_save(note, versions[3], first_in_session=True)   # a new session
    assert note.read_bytes() == versions[3]
    assert (m.path / "note.txt~").read_bytes() == versions[2]
    wait_synced(note, timeout=60)
    expect_workspace(emulator, tenant, {"note.txt": versions[3]}, versions)
    # the backup is kept, locally
    expect_mount(m, {"note.txt": versions[3], "note.txt~": versions[2]}, versions)


def libreoffice_save(doc: Path, data: bytes, serial: int) -> None:
    """LibreOffice: the lock file `.~lock.<name>#`, the document written to a temp name
    in the same folder and renamed over it, the lock file removed."""
    lock = doc.with_name(f".~lock.{doc.name}#")
    lock.write_bytes(b",user,host,01.12.2026 10:00,file:///home/user/.config/libreoffice/4;")
    save_by_rename(doc, data, temp=f"lu{4242 + serial}{serial:03x}abc.tmp")
    lock.unlink()


@DELAYS
def test_libreoffice_saves_leave_one_document_and_no_lock_or_temp_files(
        mounts: StartMount, emulator: EmulatorProcess, tenant: str,
        delay: float | None) -> None:
    m = mounts(*delay_flags(delay))
    doc = m.path / "report.docx"
    versions = [make_docx([f"Report, revision {n}.", "The bridge passed."]) for n in range(4)]
    doc.write_bytes(versions[0])
    wait_synced(doc)
    for n in (1, 2, 3):
        libreoffice_save(doc, versions[n], n)
    wait_synced(doc, timeout=60)
    expect_workspace(emulator, tenant, {"report.docx": versions[3]}, versions)
    expect_mount(m, {"report.docx": versions[3]}, versions)


def gio_save(path: Path, data: bytes) -> None:
    """GIO's replace: `.goutputstream-XXXXXX` written, fsync'd and renamed over the target
    (the target opened for writing first, without a write). The real `gio save` when there."""
    if shutil.which("gio"):
        subprocess.run(["gio", "save", str(path)], input=data, check=True, timeout=60,
                       capture_output=True)
        return
    target = os.open(path, os.O_WRONLY | os.O_CREAT, 0o666)
    try:
        tmp = path.with_name(".goutputstream-" + os.urandom(3).hex().upper())
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, path)
    finally:
        os.close(target)


@DELAYS
def test_gio_saves_leave_one_file_with_the_newest_bytes(
        mounts: StartMount, emulator: EmulatorProcess, tenant: str,
        delay: float | None) -> None:
    m = mounts(*delay_flags(delay))
    doc = m.path / "notes.md"
    versions = [f"# Notes\n\nrevision {n}\n".encode() for n in range(4)]
    doc.write_bytes(versions[0])
    wait_synced(doc)
    for data in versions[1:]:
        gio_save(doc, data)
    wait_synced(doc, timeout=60)
    expect_workspace(emulator, tenant, {"notes.md": versions[3]}, versions)
    expect_mount(m, {"notes.md": versions[3]}, versions)


@DELAYS
def test_sed_in_place_edits_in_a_row_leave_one_file_with_every_edit(
        mounts: StartMount, emulator: EmulatorProcess, tenant: str,
        delay: float | None) -> None:
    """`sed -i` writes `./sedXXXXXX` beside the file and renames it over the file."""
    m = mounts(*delay_flags(delay))
    doc = m.path / "checklist.txt"
    doc.write_bytes(b"alpha\nbeta\ngamma\n")
    wait_synced(doc)
    for expr in ("s/alpha/ALPHA/", "s/beta/BETA/", "s/gamma/GAMMA/"):
        run = subprocess.run(["sed", "-i", expr, "checklist.txt"], cwd=m.path,
                             capture_output=True, text=True, timeout=60)
        assert run.returncode == 0, run.stderr
    want = b"ALPHA\nBETA\nGAMMA\n"
    assert doc.read_bytes() == want
    wait_synced(doc, timeout=60)
    expect_workspace(emulator, tenant, {"checklist.txt": want})
    expect_mount(m, {"checklist.txt": want})


def test_rewriting_in_place_while_the_previous_version_uploads_keeps_the_newest(
        mounts: StartMount, emulator: EmulatorProcess, tenant: str,
        slow_api: Callable[[], None]) -> None:
    """`open(path, 'wb')` (O_TRUNC) and a write, while the last version is in flight."""
    m = mounts("--write-back-delay", str(QUICK))
    doc = m.path / "log.txt"
    doc.write_bytes(b"version 1\n")
    slow_api()
    wait_for(lambda: sync_state(doc) == b"uploading", timeout=15)
    with open(doc, "wb") as f:
        f.write(b"version 2, written during the upload\n")
    assert doc.read_bytes() == b"version 2, written during the upload\n"
    emulator.set_faults(tenant, "")
    wait_synced(doc, timeout=60)
    want = {"log.txt": b"version 2, written during the upload\n"}
    expect_workspace(emulator, tenant, want, [b"version 1\n"])
    expect_mount(m, want, [b"version 1\n"])


# -- rsync -a ----------------------------------------------------------------------------------

#: when the camera card's files were made (2024-05-01), and when one was edited later
SHOT, EDITED = 1_714_550_400, 1_714_636_800


def camera_card(root: Path) -> dict[str, bytes]:
    """A few images and notes, as a camera card or a field kit holds them, made some
    time ago (rsync compares sizes and mtimes)."""
    files = {
        "DCIM/IMG_0001.jpg": image_bytes((200, 40, 40)),
        "DCIM/IMG_0002.jpg": image_bytes((40, 200, 40)),
        "DCIM/IMG_0003.png": image_bytes((40, 40, 200), fmt="PNG"),
        "notes.txt": b"pole 14: cracked base\n",
        "Site/readme.md": b"# Site visit\n",
    }
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
        os.utime(root / rel, (SHOT, SHOT))
    return files


def rsync(src: Path, dest: Path) -> list[str]:
    """`rsync -a` of a tree into a folder; the files it transferred (--itemize-changes)."""
    run = subprocess.run(["rsync", "-a", "--itemize-changes", f"{src}/", f"{dest}/"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    return sorted(line.split(" ", 1)[1] for line in run.stdout.splitlines()
                  if line.startswith((">f", "<f", "cf")))


def test_rsync_again_of_an_unchanged_tree_uploads_nothing(
        mounts: StartMount, emulator: EmulatorProcess, tenant: str, tmp_path: Path) -> None:
    m = mounts("--write-back-delay", str(QUICK))
    card = tmp_path / "card"
    files = camera_card(card)
    assert rsync(card, m.path / "Card") == sorted(files)
    wait_drained(m)
    first = expect_workspace(emulator, tenant, {f"Card/{k}": v for k, v in files.items()})
    since = len(emulator.requests(tenant))
    transferred = rsync(card, m.path / "Card")  # size and mtime match: nothing to send
    m.flush()
    uploads = len(upload_requests(emulator, tenant, since))
    assert (transferred, uploads) == ([], 0), \
        f"rsync sent {transferred} again, {uploads} upload requests"
    assert expect_workspace(emulator, tenant, {f"Card/{k}": v for k, v in files.items()},
                            settle=0) == first  # the same files, the same ids


def test_rsync_of_one_changed_file_uploads_that_file_once(
        mounts: StartMount, emulator: EmulatorProcess, tenant: str, tmp_path: Path) -> None:
    m = mounts("--write-back-delay", str(QUICK))
    card = tmp_path / "card"
    files = camera_card(card)
    rsync(card, m.path / "Card")
    wait_drained(m)
    first = expect_workspace(emulator, tenant, {f"Card/{k}": v for k, v in files.items()},
                             settle=0)
    files["notes.txt"] = b"pole 14: cracked base\npole 15: fine\n"
    (card / "notes.txt").write_bytes(files["notes.txt"])
    os.utime(card / "notes.txt", (EDITED, EDITED))
    since = len(emulator.requests(tenant))
    assert rsync(card, m.path / "Card") == ["notes.txt"]
    wait_synced(m.path / "Card/notes.txt")
    wait_drained(m)
    assert (m.path / "Card/notes.txt").read_bytes() == files["notes.txt"]
    got = expect_workspace(emulator, tenant, {f"Card/{k}": v for k, v in files.items()},
                           [b"pole 14: cracked base\n"])
    assert len(upload_requests(emulator, tenant, since)) == 1
    unchanged = {k: v for k, v in first.items() if k != "Card/notes.txt"}
    assert {k: v for k, v in got.items() if k != "Card/notes.txt"} == unchanged


# -- timestamps --------------------------------------------------------------------------------

def test_mtime_is_kept_across_the_upload_and_a_remount(
        mounts: StartMount, emulator: EmulatorProcess, tenant: str) -> None:
    m = mounts("--write-back-delay", str(QUICK))
    doc = m.path / "field notes.txt"
    doc.write_bytes(b"written once\n")
    written = os.stat(doc)
    wait_synced(doc)
    after_upload = os.stat(doc)
    assert after_upload.st_mtime_ns == written.st_mtime_ns, "the upload changed the mtime"
    m = mounts("--write-back-delay", str(QUICK))  # a remount, with the same cache dir
    wait_for(lambda: (m.path / "field notes.txt").exists())
    assert os.stat(m.path / "field notes.txt").st_mtime_ns == written.st_mtime_ns, \
        "a remount changed the mtime"


def test_utime_values_are_kept_across_the_upload_and_a_remount(
        mounts: StartMount, emulator: EmulatorProcess, tenant: str) -> None:
    """`touch -d`, `cp -p`, rsync and tar set times; later comparisons depend on them."""
    atime, mtime = 1_400_000_000.5, 1_500_000_000.25
    m = mounts("--write-back-delay", str(QUICK))
    pending, synced = m.path / "pending.txt", m.path / "synced.txt"
    synced.write_bytes(b"uploaded, then touched\n")
    wait_synced(synced)
    pending.write_bytes(b"touched before the upload\n")
    for path in (pending, synced):
        os.utime(path, (atime, mtime))
        assert os.stat(path).st_mtime == mtime
    wait_synced(pending, synced)
    for path in (pending, synced):
        assert os.stat(path).st_mtime == mtime, f"{path.name}: the upload changed the mtime"
    m = mounts("--write-back-delay", str(QUICK))  # a remount, with the same cache dir
    wait_for(lambda: (m.path / "synced.txt").exists() and (m.path / "pending.txt").exists())
    for name in ("pending.txt", "synced.txt"):
        assert os.stat(m.path / name).st_mtime == mtime, f"{name}: the remount changed the mtime"


def truncate_by_path(path: Path, size: int) -> os.stat_result:
    os.truncate(path, size)
    return os.stat(path)


def truncate_open_file(path: Path, size: int) -> os.stat_result:
    with open(path, "r+b") as f:
        os.ftruncate(f.fileno(), size)
        return os.fstat(f.fileno())


@pytest.mark.parametrize("before", ["uploaded", "pending"])
@pytest.mark.parametrize("truncate", [truncate_by_path, truncate_open_file],
                         ids=["truncate", "ftruncate"])
def test_truncating_changes_mtime_and_ctime(
        mounts: StartMount, truncate: Callable[[Path, int], os.stat_result],
        before: str) -> None:
    """truncate(2) or ftruncate(2) of a file uploaded already, or still waiting
    (a write-back delay of 3 s)."""
    m = mounts(*(("--write-back-delay", str(QUICK)) if before == "uploaded" else ()))
    doc = m.path / "log.txt"
    doc.write_bytes(b"0123456789\n")
    if before == "uploaded":
        wait_synced(doc)
    else:
        assert sync_state(doc) == b"pending"
    old = os.stat(doc)
    time.sleep(0.05)
    after = truncate(doc, 4)
    assert after.st_size == 4
    assert after.st_mtime_ns > old.st_mtime_ns, "mtime unchanged"
    assert after.st_ctime_ns > old.st_ctime_ns, "ctime unchanged"
    assert os.stat(doc).st_mtime_ns == after.st_mtime_ns


def test_adding_or_removing_an_entry_changes_the_folder_mtime(mounts: StartMount) -> None:
    """create, unlink, mkdir and rmdir in a folder each change its mtime and ctime
    (file managers and `make` watch them)."""
    m = mounts("--write-back-delay", str(QUICK))
    folder = m.path / "Jobs"
    os.mkdir(folder)
    (folder / "old.txt").write_bytes(b"old\n")
    wait_synced(folder / "old.txt")
    changes: dict[str, Callable[[], object]] = {
        "create": lambda: (folder / "new.txt").write_bytes(b"new\n"),
        "unlink": lambda: os.unlink(folder / "old.txt"),
        "mkdir": lambda: os.mkdir(folder / "Sub"),
        "rmdir": lambda: os.rmdir(folder / "Sub"),
    }
    unchanged = []
    for name, change in changes.items():
        before = os.stat(folder)
        time.sleep(0.05)
        change()
        after = os.stat(folder)
        if after.st_mtime_ns <= before.st_mtime_ns or after.st_ctime_ns <= before.st_ctime_ns:
            unchanged.append(name)
    assert unchanged == [], f"the folder's mtime or ctime did not change at {unchanged}"


# -- POSIX details -----------------------------------------------------------------------------

def test_an_open_unlinked_file_stays_usable_and_never_reaches_the_workspace(
        mounts: StartMount, emulator: EmulatorProcess, tenant: str) -> None:
    m = mounts("--write-back-delay", str(QUICK))
    path = m.path / "scratch data.txt"
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        os.write(fd, b"written before the unlink\n")
        os.unlink(path)
        assert not path.exists() and visible(m) == []
        assert os.fstat(fd).st_size == 26
        assert os.pread(fd, 100, 0) == b"written before the unlink\n"
        os.write(fd, b"and after\n")
        assert os.fstat(fd).st_size == 36
        assert os.pread(fd, 100, 0) == b"written before the unlink\nand after\n"
    finally:
        os.close(fd)
    m.flush()
    assert visible(m) == []
    expect_workspace(emulator, tenant, {})


@pytest.mark.daemon_log(r"writing failed \(EFBIG\)")
def test_a_file_over_100_mb_gets_efbig_and_no_part_of_it_is_uploaded(
        mounts: StartMount, emulator: EmulatorProcess, tenant: str) -> None:
    m = mounts("--write-back-delay", str(QUICK))
    path = m.path / "huge log.txt"
    chunk = b"0123456789abcdef" * 65536  # 1 MiB of text
    written, refused = 0, None
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        while written < 101_000_000:
            try:
                written += os.write(fd, chunk[:101_000_000 - written])
            except OSError as exc:
                refused = exc.errno
                break
    finally:
        try:
            os.close(fd)
        except OSError as exc:
            refused = refused or exc.errno
    assert refused == errno.EFBIG, f"wrote {written} bytes, then {refused}"
    assert written <= LIMIT
    time.sleep(QUICK + 3)  # well past the write-back delay (a flush would wait for it)
    state = sync_state(path)
    assert state is not None and state.startswith(b"failed: ") and len(state) > 10, state
    assert workspace(emulator, tenant) == {}, "a cut-off prefix was uploaded"
    os.unlink(path)
    assert not path.exists() and visible(m) == []
    expect_workspace(emulator, tenant, {})


def test_renaming_a_folder_over_an_empty_folder_replaces_it(
        mounts: StartMount, emulator: EmulatorProcess, tenant: str) -> None:
    m = mounts("--write-back-delay", str(QUICK))
    os.mkdir(m.path / "Draft")
    (m.path / "Draft/plan.md").write_bytes(b"# Plan\n")
    os.mkdir(m.path / "Final")
    wait_synced(m.path / "Draft/plan.md")
    os.rename(m.path / "Draft", m.path / "Final")
    assert visible(m) == ["Final"]
    assert visible(m, "Final") == ["plan.md"]
    assert (m.path / "Final/plan.md").read_bytes() == b"# Plan\n"
    wait_drained(m)
    expect_workspace(emulator, tenant, {"Final/plan.md": b"# Plan\n"})
    assert folder_paths(emulator, tenant) == ["Final"]


@pytest.mark.daemon_log(r"rename failed \(ENOTEMPTY\)")
def test_renaming_a_folder_over_a_folder_with_entries_gets_enotempty(
        mounts: StartMount, emulator: EmulatorProcess, tenant: str) -> None:
    m = mounts("--write-back-delay", str(QUICK))
    for folder in ("Draft", "Final"):
        os.mkdir(m.path / folder)
        (m.path / folder / "plan.md").write_bytes(f"# {folder}\n".encode())
    expect_errno(errno.ENOTEMPTY, lambda: os.rename(m.path / "Draft", m.path / "Final"))
    assert visible(m) == ["Draft", "Final"]
    wait_drained(m)
    expect_workspace(emulator, tenant, {"Draft/plan.md": b"# Draft\n",
                                        "Final/plan.md": b"# Final\n"}, settle=0)


@pytest.mark.daemon_log(r"mkdir failed \(EMLINK\)")
def test_a_folder_deeper_than_the_api_allows_is_refused_with_a_clear_errno(
        mounts: StartMount) -> None:
    """The API nests folders 10 levels deep; the 11th level fails at mkdir, and not
    with EIO (which says the disk is failing)."""
    m = mounts("--write-back-delay", str(QUICK))
    path = m.path
    for level in range(1, 11):
        path /= f"L{level}"
        os.mkdir(path)
    with pytest.raises(OSError) as info:
        os.mkdir(path / "L11")
    assert info.value.errno != errno.EIO, info.value
    assert not (path / "L11").exists()
    assert visible(m, os.path.relpath(path, m.path)) == []


def test_hard_links_and_symlinks_are_refused_as_unsupported_not_read_only(
        mounts: StartMount) -> None:
    m = mounts("--write-back-delay", str(QUICK))
    (m.path / "a.txt").write_bytes(b"a\n")
    unsupported = (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP)
    for make in (lambda: os.link(m.path / "a.txt", m.path / "b.txt"),
                 lambda: os.symlink("a.txt", m.path / "c.txt")):
        with pytest.raises(OSError) as info:
            make()
        assert info.value.errno in unsupported, info.value
    assert visible(m) == ["a.txt"]


# -- two mounts of one workspace -----------------------------------------------------------------

SHARED = ("--write-back-delay", str(QUICK), "--poll-interval", "1", "--revalidate-interval", "1")
#: how long another mount of the workspace may take to show a change
PROPAGATION = 20.0


def shows(path: Path, data: bytes) -> Callable[[], bool]:
    def check() -> bool:
        try:
            return path.read_bytes() == data
        except OSError:
            return False
    return check


@pytest.fixture
def two_mounts(mounts: StartMount) -> tuple[Mount, Mount]:
    """Two daemons with their own cache dirs on one workspace, doc.md on both."""
    a, b = mounts(*SHARED, name="a"), mounts(*SHARED, name="b")
    (a.path / "doc.md").write_bytes(b"first\n")
    wait_synced(a.path / "doc.md")
    wait_for(shows(b.path / "doc.md", b"first\n"), timeout=PROPAGATION)
    return a, b


def test_an_edit_saved_on_one_mount_shows_on_the_other(two_mounts: tuple[Mount, Mount]) -> None:
    a, b = two_mounts
    assert (b.path / "doc.md").read_bytes() == b"first\n"  # read (and cached) on b
    save_by_rename(a.path / "doc.md", b"second, saved on a\n")
    wait_synced(a.path / "doc.md")
    wait_for(shows(b.path / "doc.md", b"second, saved on a\n"), timeout=PROPAGATION)
    assert visible(b) == ["doc.md"]


def test_a_rename_on_one_mount_shows_on_the_other(two_mounts: tuple[Mount, Mount]) -> None:
    a, b = two_mounts
    os.rename(a.path / "doc.md", a.path / "renamed.md")
    wait_for(lambda: visible(b) == ["renamed.md"], timeout=PROPAGATION)
    assert (b.path / "renamed.md").read_bytes() == b"first\n"


def test_concurrent_edits_on_two_mounts_both_survive(
        two_mounts: tuple[Mount, Mount], emulator: EmulatorProcess, tenant: str) -> None:
    a, b = two_mounts
    edits = [(a, b"edited on a\n"), (b, b"edited on b\n")]
    for m, data in edits:
        with open(m.path / "doc.md", "wb") as f:
            f.write(data)
    for m, _ in edits:
        wait_drained(m)
    deadline = time.monotonic() + PROPAGATION
    while True:
        in_workspace = sorted(h for _, h in workspace(emulator, tenant).values())
        seen_a, seen_b = contents(a), contents(b)
        if (seen_a == seen_b and sorted(seen_a.values()) == in_workspace
                and {sha(d) for _, d in edits} <= set(in_workspace)):
            break
        if time.monotonic() > deadline:
            known = [b"first\n", *(d for _, d in edits)]
            pytest.fail(f"mount a shows {describe(seen_a, known)}, mount b "
                        f"{describe(seen_b, known)}, the workspace holds "
                        f"{sorted(label(h, known) for h in in_workspace)}")
        time.sleep(0.5)
    assert len(in_workspace) == 2  # both edits, and the first version replaced


# -- what a save meets in flight, and refused renames ------------------------------------------

def test_a_file_removed_during_its_upload_stays_gone_across_kill_9(
        mounts: StartMount, emulator: EmulatorProcess, tenant: str,
        slow_api: Callable[[], None]) -> None:
    """`rm` while the upload is in flight, then the daemon dies: after the restart the
    file is not back (on the mount or in the workspace), and a new file written at
    its name is an ordinary new file."""
    m = mounts("--write-back-delay", str(QUICK))
    doc = m.path / "gone.txt"
    doc.write_bytes(b"first\n")
    slow_api()
    wait_for(lambda: sync_state(doc) == b"uploading", timeout=15)
    os.unlink(doc)
    os.kill(m.pid, 9)  # only the daemon this test started
    emulator.set_faults(tenant, "")
    m = mounts("--write-back-delay", str(QUICK))
    assert "gone.txt" not in visible(m)
    wait_drained(m)
    expect_workspace(emulator, tenant, {}, [b"first\n"])
    (m.path / "gone.txt").write_bytes(b"second\n")
    wait_synced(m.path / "gone.txt")
    expect_workspace(emulator, tenant, {"gone.txt": b"second\n"}, [b"first\n"])


@pytest.mark.daemon_log(r"rename failed \(EPERM\)")
def test_a_refused_rename_changes_nothing(mounts: StartMount, emulator: EmulatorProcess,
                                          tenant: str) -> None:
    """A rename that fails (a type the workspace refuses, a name taken with
    RENAME_NOREPLACE semantics via link-less tools, a folder in the way) leaves the
    file as it was and uploads nothing."""
    m = mounts("--write-back-delay", str(QUICK))
    doc = m.path / "notes.md"
    doc.write_bytes(b"notes\n")
    (m.path / "Folder").mkdir()
    wait_synced(doc)
    since = len(emulator.requests(tenant))
    expect_errno(errno.EPERM, lambda: os.rename(doc, m.path / "notes.exe"))
    expect_errno(errno.EISDIR, lambda: os.rename(doc, m.path / "Folder"))
    m.flush()
    assert upload_requests(emulator, tenant, since) == []
    assert sync_state(doc) == b"synced" and doc.read_bytes() == b"notes\n"
    expect_workspace(emulator, tenant, {"notes.md": b"notes\n"})


@pytest.mark.daemon_log(
    r"failed \(attempt \d/\d",
    r"sync failed, keeping the cached library",
    r"rename failed \(EIO\)")
def test_renaming_over_a_waiting_file_while_offline_loses_neither(
        mounts: StartMount, emulator: EmulatorProcess, tenant: str) -> None:
    """`mv a.md b.md` where a.md is in the workspace and b.md waits for upload: with the
    API unreachable the rename fails (EIO), and b.md's bytes are still there."""
    m = mounts("--write-back-delay", "30")
    (m.path / "a.md").write_bytes(b"a\n")
    wait_for(lambda: sync_state(m.path / "a.md") == b"pending")
    m = mounts("--write-back-delay", "0")
    wait_synced(m.path / "a.md")
    m = mounts("--write-back-delay", "30")
    (m.path / "b.md").write_bytes(b"b, waiting\n")
    emulator.set_faults(tenant, "500:1")
    try:
        expect_errno(errno.EIO, lambda: os.rename(m.path / "a.md", m.path / "b.md"))
    finally:
        emulator.set_faults(tenant, "")
    assert (m.path / "b.md").read_bytes() == b"b, waiting\n"
    assert (m.path / "a.md").read_bytes() == b"a\n"
