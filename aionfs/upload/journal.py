"""The durable upload journal: every file a user wrote, until it is in the workspace.

A file created on the mount lives in a staging file (`staging/n<hex>`, made
ahead by filepool.py; `staging/<id>` when the pool was empty) and a journal
row that names it. States, one vocabulary everywhere (xattr, status, docs):

    local      being written, or a scratch file (editor temp, lock, swap)
               that is never uploaded
    pending    closed; waiting for the write-back delay, then the uploader
    uploading  the uploader is on it (steps: upload → move → title → done)
    failed     the server refused it; kept in staging, tried again at the next
               mount or when rewritten
    synced     in the workspace; the row and the staging file are removed

The durability contract is the one POSIX and local filesystems give
(docs/writes.md#durability): a close() that returns has its bytes in the
staging file and its row committed (WAL, `synchronous=NORMAL`), so a crash
or kill -9 of the daemon after it loses nothing; an fsync() makes a file
durable against a power loss too, and the group commit
(upload/durability.py) makes every closed file so within a second
(`on_disk`). After a reboot, an entry closed but never on disk is set aside
(`staging/lost+found/`), never uploaded, since its bytes may not have
reached the disk. What may be cut off is never uploaded: a file whose first
close never returned (the mount stopped), or whose writes failed (EFBIG,
ENOSPC), is kept as `failed` (step `incomplete`, the reason in
`last_error`) until it is rewritten or removed. Each upload step is
recorded before the next begins, so a restart resumes where it stopped,
and the upload itself is made safe to repeat by the content-hash duplicate
check.

A file unlinked or replaced (a save renamed over it) while its upload is
in flight cannot be called back: its row stays, marked `discard`, and the
copy that lands is deleted at once and never shown. So every save ends
with one file in the workspace, also across a crash.

The file keeps one inode from creation on: a local inode is allocated for
the row and, once uploaded, re-pointed at the remote file.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sqlite3
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..callbacks import Signal
from ..filepool import FilePool, make_empty
from ..store import Store

log = logging.getLogger(__name__)

def _lost_name(f: LocalFile) -> str:
    """`<id>-<name>` within NAME_MAX (the name cut at a character boundary)."""
    name = os.fsencode(f.name)[:200].decode("utf-8", "ignore")
    return f"{f.id}-{name}"


#: this boot's id: a journal last used under another one went through a reboot
BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


def boot_id() -> str:
    try:
        return BOOT_ID.read_text().strip()
    except OSError:  # (not Linux, or no /proc): no reboot is ever seen
        return ""

#: Editor and desktop scratch files: kept local, never uploaded.
SCRATCH = re.compile(r"""^(?:
      \..*                      # dot-files: .#lock, .~lock.x#, .goutputstream-*, .swp, .fuse_hidden*
    | .*~                       # backup files
    | .*\.(?:tmp|temp|swp|swx|part|crdownload|kate-swp)
    | ~\$.*                     # office owner files
    | \d+                       # vim's write test (4913) and similar
    | sed[A-Za-z0-9]{6}         # sed -i
    | tmp[A-Za-z0-9_]{6,8}      # Python's tempfile, perl -i and others
    | tmp\.[A-Za-z0-9]{10}      # mktemp
    )$""", re.VERBOSE | re.IGNORECASE)

#: What the API accepts (its upload reference): extension → content type.
ACCEPTED = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".jpe": "image/jpeg",
            ".png": "image/png", ".webp": "image/webp", ".gif": "image/gif",
            ".pdf": "application/pdf",
            ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            ".txt": "text/plain", ".md": "text/markdown", ".markdown": "text/markdown"}
MAX_SIZE = 100 * 1000 * 1000
#: the step of a file that may be cut off (state failed): never uploaded as it is
INCOMPLETE = "incomplete"
#: journal rows with the times stat shows
_SELECT = ("SELECT j.*, t.mtime_ns AS set_mtime_ns, t.ctime_ns AS set_ctime_ns "
           "FROM upload_journal j LEFT JOIN inode_times t ON t.inode = j.inode")
#: in a folder the service knows (one made offline, `local:…`, waits for the API)
_IN_KNOWN_FOLDER = "ifnull(j.folder_id, '') NOT LIKE 'local:%'"
#: the rows `due` takes: pending past the write-back delay (`?`: now - delay),
#: copies discarded in flight, scratch files whose upload is uncertain
_DUE = ("((j.state IN ('pending', 'uploading') AND NOT j.scratch "
        "AND j.updated_at_epoch <= ?) OR j.discard "
        f"OR (j.scratch AND j.uncertain_sha256 IS NOT NULL)) AND {_IN_KNOWN_FOLDER}")


def is_scratch(name: str) -> bool:
    return bool(SCRATCH.match(name))


def content_type(name: str) -> str | None:
    """The type an upload of this name is sent as; None if the API refuses it."""
    return ACCEPTED.get(os.path.splitext(name)[1].lower())


@dataclass
class LocalFile:
    """A journal row as the filesystem needs it."""

    id: int
    inode: int
    folder_key: str  # '' root, else the folder id
    name: str
    state: str
    step: str
    size: int
    staging: Path
    changed_at: float  # epoch of the last close or rename: the write-back delay counts from it
    scratch: bool
    remote_id: str | None
    replaces_id: str | None
    last_error: str | None
    attempts: int
    title: str | None = None
    tags: list[str] | None = None
    mtime_ns: int = 0  # what stat shows (inode_times), set by writes and utimens
    ctime_ns: int = 0
    discard: bool = False

    @classmethod
    def from_row(cls, r: sqlite3.Row) -> LocalFile:
        changed = r["updated_at_epoch"]
        mtime_ns = r["set_mtime_ns"] or int(changed * 1e9)
        return cls(r["id"], r["inode"], r["folder_id"] or "", r["name"], r["state"], r["step"],
                   r["size"], Path(r["staging_path"]), changed, bool(r["scratch"]),
                   r["remote_id"], r["replaces_id"], r["last_error"], r["attempts"],
                   r["title"], json.loads(r["tags"]) if r["tags"] else None,
                   mtime_ns, r["set_ctime_ns"] or mtime_ns, bool(r["discard"]))

    @property
    def replaced(self) -> list[str]:
        """Library files this one replaces once it is in (space-separated ids in
        `replaces_id`): the first is the one whose title and tags it carries (the
        file it was saved over); others had names that are gone (an edited file
        renamed over another)."""
        return self.replaces_id.split() if self.replaces_id else []

    @property
    def incomplete(self) -> bool:
        """Possibly cut off (a write failed, or the mount stopped before its first
        close returned): never uploaded until rewritten."""
        return self.step == INCOMPLETE

    def touch(self, ctime_only: bool = False) -> None:
        """The bytes (or, with ctime_only, the metadata) changed now."""
        now = time.time_ns()
        if not ctime_only:
            self.mtime_ns = now
        self.ctime_ns = now


class Journal:
    def __init__(self, store: Store, staging: Path) -> None:
        self.store = store
        self.dir = staging
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        #: rows the uploader holds right now (whatever their state says): one dropped
        #: meanwhile may land anyway, so it is marked `discard`, not removed
        self.in_flight: set[int] = set()
        #: after each close or rename committed (not yet on disk: the group commit's cue)
        self.closed = Signal()
        #: staging files made ahead (filled only while its `run` task runs: the mount's)
        self.pool = FilePool(self.dir)

    @property
    def wal(self) -> Path:
        """The store's write-ahead log: an fsync of it makes every commit durable."""
        return Path(f"{self.store.path}-wal")

    @property
    def lost_and_found(self) -> Path:
        return self.dir / "lost+found"

    # -- reading ---------------------------------------------------------------------

    def all(self) -> list[LocalFile]:
        return [LocalFile.from_row(r) for r in self.store.db.execute(
            f"{_SELECT} WHERE j.state != 'synced' ORDER BY j.id")]

    def get(self, jid: int) -> LocalFile | None:
        r = self.store.db.execute(f"{_SELECT} WHERE j.id=?", (jid,)).fetchone()
        return LocalFile.from_row(r) if r else None

    def due(self, now: float, delay: float, limit: int = -1,
            after: tuple[float, int] | None = None) -> list[LocalFile]:
        """Pending files whose write-back delay has passed, oldest first (and those
        discarded in flight: their copies are deleted without delay); the first
        `limit` only, from after (close time, id) `after` (the uploader's look: a
        queue of 100,000 files is not read whole for each batch of 100)."""
        later = "AND (j.updated_at_epoch, j.id) > (?, ?) " if after is not None else ""
        return [LocalFile.from_row(r) for r in self.store.db.execute(
            f"{_SELECT} WHERE {_DUE} {later}ORDER BY j.updated_at_epoch, j.id LIMIT ?",
            (now - delay, *(after or ()), limit))]

    def oldest_due(self, now: float, delay: float, taken: Collection[int] = ()
                   ) -> float | None:
        """When the oldest file waiting for its upload past the write-back delay was
        closed or renamed (None: none). Not counted: the `taken` (in flight), copies
        being sent, discarded copies and uncertain scratch files, which do not wait
        for a copy to end."""
        row = self.store.db.execute(
            "SELECT min(j.updated_at_epoch) FROM upload_journal j WHERE j.state='pending' "
            "AND NOT j.scratch AND NOT j.discard AND j.updated_at_epoch <= ? "
            f"AND {_IN_KNOWN_FOLDER} AND j.id NOT IN ({','.join('?' * len(taken))})",
            (now - delay, *taken)).fetchone()
        return None if row[0] is None else float(row[0])

    def _of(self, columns: str, ids: list[int], where: str = "") -> list[sqlite3.Row]:
        """These columns of these rows (one query)."""
        return list(self.store.db.execute(
            f"SELECT id, {columns} FROM upload_journal WHERE id IN "
            f"({','.join('?' * len(ids))}){where}", ids))

    def versions(self, ids: list[int]) -> dict[int, float]:
        """Each row's version (updated_at_epoch): a later close or rename makes it newer."""
        return {r[0]: r[1] for r in self._of("updated_at_epoch", ids)}

    def outcomes(self, ids: list[int]) -> dict[int, tuple[Any, ...]]:
        """What the uploader needs to judge a dropped row: (discard, remote_id, sha256,
        uncertain_sha256, replaces_id, state, scratch) by id."""
        return {r[0]: tuple(r[1:]) for r in self._of(
            "discard, remote_id, sha256, uncertain_sha256, replaces_id, state, scratch", ids)}

    def uncertain(self, ids: list[int]) -> list[tuple[int, str, float]]:
        """(id, hashes of versions sent without a known outcome, created) where any."""
        return [(r[0], r[1], r[2]) for r in self._of(
            "uncertain_sha256, created_at_epoch", ids, " AND uncertain_sha256 IS NOT NULL")]

    def sent_hashes(self, ids: list[int]) -> dict[int, tuple[str | None, int | None]]:
        """(sha256 of the version being sent, known_new) by id."""
        return {r[0]: (r[1], r[2]) for r in self._of("sha256, known_new", ids)}

    def discarded(self) -> set[int]:
        return {r[0] for r in self.store.db.execute(
            "SELECT id FROM upload_journal WHERE discard=1")}

    def settle(self, f: LocalFile) -> None:
        """Uploaded and shown: the row goes (inside the caller's transaction, with the
        store rows that show the file; the staging file is the caller's to remove)."""
        self.store.db.execute("DELETE FROM upload_journal WHERE id=?", (f.id,))

    def counts(self) -> dict[str, int]:
        return {r[0]: r[1] for r in self.store.db.execute(
            "SELECT state, count(*) FROM upload_journal GROUP BY state")}

    def queued(self) -> int:
        """Files waiting to be uploaded or being uploaded (not failed, not local)."""
        counts = self.counts()
        return counts.get("pending", 0) + counts.get("uploading", 0)

    # -- writing ---------------------------------------------------------------------

    def create(self, folder_key: str, name: str, *, edit: Any = None,
               times: tuple[int, int] | None = None,
               also: Callable[[], None] | None = None) -> LocalFile:
        """A new file being written (state local until its first close).

        `edit`: the store row of a file this one rewrites; the new version keeps
        its inode, title and tags, and the old one is deleted once it is in.
        `times`: (mtime_ns, ctime_ns) it shows until written (default: now).
        `also`: more writes in the same transaction (the folder's times: one
        commit per create, not two).
        """
        now = time.time()
        mtime_ns, ctime_ns = times or (time.time_ns(),) * 2
        ready = self.pool.take()
        made: Path | None = None
        try:
            with self.store.transaction():
                cur = self.store.db.execute(
                    "INSERT INTO upload_journal(inode, state, step, staging_path, folder_id, "
                    "name, size, scratch, replaces_id, title, tags, created_at_epoch, "
                    "updated_at_epoch) VALUES (0, 'local', 'upload', '', ?, ?, 0, ?, ?, ?, ?, ?, ?)",
                    (folder_key or None, name, int(is_scratch(name)),
                     edit["id"] if edit else None, edit["title"] if edit else None,
                     edit["tags"] if edit else None, now, now))
                jid = int(cur.lastrowid)  # type: ignore[arg-type]
                inode = edit["inode"] if edit else self.store.inode_for("local", str(jid))
                staging = ready or self.dir / str(jid)
                self.store.db.execute(
                    "UPDATE upload_journal SET inode=?, staging_path=? WHERE id=?",
                    (inode, str(staging), jid))
                self.store.set_times(inode, mtime_ns, ctime_ns)
                if also is not None:
                    also()
                if ready is None:
                    make_empty(staging)
                    made = staging
        except BaseException:
            # rolled back: the row's id may be given again, so a file made under it goes
            # (a pool file is empty still: back to the pool)
            if made is not None:
                made.unlink(missing_ok=True)
            if ready is not None:
                self.pool.give_back(ready)
            raise
        found = self.get(jid)
        assert found is not None
        return found

    def commit(self, f: LocalFile, size: int,
               also: Callable[[sqlite3.Connection], None] | None = None, *,
               incomplete: str | None = None, on_disk: bool = False) -> None:
        """The last close: the row (pending, or local for scratch) with the file's
        times and size, committed (durable against a crash of the daemon; on disk
        by the next group commit, `on_disk` 0 until then).

        `also` writes more rows in the same transaction (a watched folder's record
        of the file it took), so that both or neither are there after a crash.
        `incomplete`: why these bytes may be cut off (a write failed): kept as
        failed, never uploaded. `on_disk`: the bytes were fsync'd already (a
        watched folder's copy): a reboot before the row reaches the disk loses
        the row (the file is taken again), never the bytes of one that stayed."""
        if incomplete is not None:
            f.state, f.step, f.last_error = "failed", INCOMPLETE, incomplete
        else:
            f.state, f.step, f.last_error = ("local" if f.scratch else "pending"), "upload", None
        f.size, f.changed_at = size, time.time()
        with self.store.transaction():
            self._superseded_copies(f)
            self.store.db.execute(
                "UPDATE upload_journal SET state=?, step=?, size=?, sha256=NULL, "
                "attempts=0, last_error=?, updated_at_epoch=?, on_disk=? WHERE id=?",
                (f.state, f.step, size, f.last_error, f.changed_at, int(on_disk), f.id))
            self.store.set_times(f.inode, f.mtime_ns, f.ctime_ns)
            if also is not None:
                also(self.store.db)
        self.closed()

    def _superseded_copies(self, f: LocalFile) -> None:
        """The file changed (a new version, a new name): what was sent of the version
        before is kept track of, so that whatever landed is deleted once the new one
        is in. A copy that landed (remote_id) becomes one more file it replaces; the
        hash of one whose answer is not in yet (or never came: a crash) is kept in
        `uncertain_sha256`. (Inside the caller's transaction.)"""
        row = self.store.db.execute("SELECT remote_id, sha256, step, uncertain_sha256, "
                                    "replaces_id FROM upload_journal WHERE id=?",
                                    (f.id,)).fetchone()
        if row is None:
            return
        remote, sha, step, uncertain, replaces = row
        if remote is not None:
            replaces = " ".join(dict.fromkeys([*(replaces or "").split(), remote]))
            f.replaces_id, f.remote_id = replaces, None
        elif sha is not None and step == "upload":
            uncertain = f"{uncertain or ''} {sha}".strip()
        f.step = f.step if f.step == INCOMPLETE else "upload"
        self.store.db.execute(
            "UPDATE upload_journal SET remote_id=NULL, sha256=NULL, step=?, replaces_id=?, "
            "uncertain_sha256=? WHERE id=?", (f.step, replaces, uncertain, f.id))

    def set_times(self, f: LocalFile) -> None:
        """utimens (or a truncate of a closed file): the times stat shows, kept."""
        self.store.set_times(f.inode, f.mtime_ns, f.ctime_ns)

    def move(self, f: LocalFile, folder_key: str, name: str, closed: bool = True) -> None:
        """Renamed or moved before upload; a scratch file renamed onto a real name is
        now a file to upload once closed (the "write temp, rename over" save); a file
        renamed to a scratch name (`mv doc.md doc.md~`: a backup) stays local."""
        f.folder_key, f.name = folder_key, name
        scratch = is_scratch(name)
        if f.scratch and not scratch and f.state == "local" and closed:
            f.state = "pending"
        elif scratch and f.state in ("pending", "uploading"):
            f.state = "local"
        f.scratch = scratch
        f.changed_at = time.time()
        f.touch(ctime_only=True)
        with self.store.transaction():
            if not f.incomplete:
                self._superseded_copies(f)  # (under a new name: uploaded anew)
            self.store.db.execute(
                "UPDATE upload_journal SET folder_id=?, name=?, scratch=?, state=?, "
                "updated_at_epoch=?, on_disk=0 WHERE id=?",
                (folder_key or None, name, int(scratch), f.state, f.changed_at, f.id))
            self.store.set_times(f.inode, f.mtime_ns, f.ctime_ns)
        self.closed()

    def update(self, f: LocalFile, **fields: object) -> None:
        """Record an upload step (state, step, remote_id, sha256, last_error, …)."""
        for key, value in fields.items():
            if hasattr(f, key):
                setattr(f, key, value)
        sets = ", ".join(f"{k}=?" for k in fields)
        with self.store.transaction():
            self.store.db.execute(f"UPDATE upload_journal SET {sets} WHERE id=?",
                                  (*fields.values(), f.id))

    def remove(self, f: LocalFile, keep_bytes: bool = False) -> None:
        """Synced or deleted: the row and (unless still open: `keep_bytes`) the
        staging file go."""
        with self.store.transaction():
            self.store.db.execute("DELETE FROM upload_journal WHERE id=?", (f.id,))
            if f.remote_id is None and not f.replaces_id:  # never a library file's inode
                self.store.forget_times(f.inode)
        if not keep_bytes:
            f.staging.unlink(missing_ok=True)

    def advance(self, f: LocalFile, version: float, **fields: object) -> bool:
        """Record an upload step, unless the file changed since the uploader took it
        (`version`: its updated_at_epoch then): False, and nothing written."""
        sets = ", ".join(f"{k}=?" for k in fields)
        with self.store.transaction():
            done = self.store.db.execute(
                f"UPDATE upload_journal SET {sets} WHERE id=? AND updated_at_epoch=?",
                (*fields.values(), f.id, version)).rowcount == 1
        if done:
            for key, value in fields.items():
                if hasattr(f, key):
                    setattr(f, key, value)
        return done

    def sent(self, f: LocalFile, version: float, sha: str, remote_id: str) -> bool:
        """The upload of these bytes landed as `remote_id` (step move). If the file
        changed meanwhile, that copy is one more file its next version replaces
        (dropped meanwhile: one its deletion deletes). False then."""
        if self.advance(f, version, remote_id=remote_id, step="move"):
            return True
        with self.store.transaction():
            row = self.store.db.execute("SELECT uncertain_sha256, replaces_id FROM "
                                        "upload_journal WHERE id=?", (f.id,)).fetchone()
            if row is not None:
                uncertain = [h for h in (row[0] or "").split() if h != sha]
                replaced = " ".join(dict.fromkeys([*(row[1] or "").split(), remote_id]))
                self.store.db.execute("UPDATE upload_journal SET uncertain_sha256=?, "
                                      "replaces_id=? WHERE id=?",
                                      (" ".join(uncertain) or None, replaced, f.id))
                f.replaces_id = replaced
        return False

    def drop(self, f: LocalFile, keep_bytes: bool = False) -> None:
        """Unlinked, or replaced by a file renamed over it. Not yet sent: gone. In
        flight (`uploading`), or with earlier versions sent unheard: marked `discard`,
        so that whatever copy landed is deleted."""
        row = self.store.db.execute("SELECT uncertain_sha256, remote_id, sha256 FROM "
                                    "upload_journal WHERE id=?", (f.id,)).fetchone()
        # what it replaced is handed to the file saved over it, or deleted by the unlink
        f.replaces_id = None
        if row is not None and (f.state == "uploading" or f.id in self.in_flight
                                or any(row)):
            f.discard = True
            self.update(f, discard=1, replaces_id=None)
        else:
            self.remove(f, keep_bytes)

    def recover(self, boot: str | None = None) -> int:
        """At start: files whose first close never returned may be cut off: kept as
        failed (never uploaded until rewritten); rewrites that never finished and
        staging files of no row (unlinked while open) go; failed uploads are tried
        once more. After a reboot (`boot`: this boot's id), closed files whose bytes
        were never made durable are set aside (`set_aside`). Returns how many files
        were found cut off."""
        boot = boot_id() if boot is None else boot
        last = self.store.get_meta("journal_boot")
        rebooted = last is not None and last != boot
        if rebooted:
            self._set_aside_unsynced()
        if last != boot:
            with self.store.transaction():
                self.store.set_meta("journal_boot", boot)
        cut = 0
        for f in self.all():
            if f.state == "local" and not f.scratch and f.replaces_id and not f.discard:
                self.remove(f)  # an edit never closed: the library file is as it was
            elif f.state == "local" and not f.scratch and not f.discard:
                self.update(f, state="failed", step=INCOMPLETE,
                            last_error="incomplete: the mount stopped before it was closed")
                cut += 1
            elif f.state == "failed" and not f.incomplete:  # the cause may have cleared
                self.update(f, state="pending")
        known = {Path(r[0]).name for r in self.store.db.execute(
            "SELECT staging_path FROM upload_journal")}
        for stray in self.dir.iterdir():
            if not stray.is_file() or (stray.suffix != ".w" and stray.name in known):
                continue
            if rebooted and stray.suffix == "" and stray.stat().st_size:
                # a file fsync'd before its row reached the disk: its bytes, kept
                self.lost_and_found.mkdir(mode=0o700, exist_ok=True)
                os.replace(stray, self.lost_and_found / f"{stray.name}-without-a-name")
                log.warning("bytes of a file whose name was lost when the machine stopped "
                            "are kept in %s", self.lost_and_found)
            else:
                stray.unlink()  # unlinked while open, a rewrite never closed, a copy
        return cut

    def _set_aside_unsynced(self) -> None:
        """The machine stopped (a power loss, a kernel crash) since the journal was last
        used: a closed file not yet on disk then (no fsync, no group commit since its
        close) may have lost bytes the kernel had not written. Its bytes still to be
        sent are moved to lost+found (kept, for the user to look at; never uploaded)
        and its entry goes, so the mount never shows or uploads what may be half a
        file: the library's version, if it replaced one, shows again. Entries whose
        bytes are already in the workspace (remote_id) only finish their steps."""
        for f in self.all():
            if (self._on_disk(f) or f.discard or f.state == "local"
                    or (f.state == "uploading" and f.remote_id is not None)):
                continue
            kept: Path | None = self.lost_and_found / _lost_name(f)
            try:
                self.lost_and_found.mkdir(mode=0o700, exist_ok=True)
                os.replace(f.staging, kept)  # type: ignore[arg-type]
            except FileNotFoundError:
                kept = None
            except OSError as exc:  # kept where it is, as a failed file: never uploaded
                self.update(f, state="failed", step=INCOMPLETE, last_error=(
                    "incomplete: not yet on disk when the machine stopped"))
                log.warning("%s was closed but not yet on disk when the machine stopped: "
                            "kept as failed, never uploaded (moving it aside failed: %s)",
                            f.name, exc)
                continue
            # (sent with no answer yet: marked discard, so that a copy that landed goes)
            self.drop(f, keep_bytes=True)
            log.warning("%s was closed but not yet on disk when the machine stopped: it is "
                        "not uploaded (its bytes may be incomplete)%s", f.name,
                        f"; they are kept in {kept}" if kept else "")

    def _on_disk(self, f: LocalFile) -> bool:
        row = self.store.db.execute("SELECT on_disk FROM upload_journal WHERE id=?",
                                    (f.id,)).fetchone()
        return row is None or bool(row[0])

    # -- durability (upload/durability.py) ----------------------------------------------

    def not_on_disk(self) -> list[LocalFile]:
        """Closed entries whose bytes and row are not known to be on stable storage."""
        return [LocalFile.from_row(r) for r in self.store.db.execute(
            f"{_SELECT} WHERE j.on_disk = 0 AND j.state != 'local' ORDER BY j.id")]

    def mark_on_disk(self, files: list[LocalFile]) -> None:
        """These entries' bytes were fsync'd as of their `changed_at`; the rows say so
        from this commit on, unless closed or renamed again meanwhile (the caller
        makes the commit durable: an fsync of the WAL)."""
        with self.store.transaction():
            self.store.db.executemany(
                "UPDATE upload_journal SET on_disk=1 WHERE id=? AND updated_at_epoch=?",
                [(f.id, f.changed_at) for f in files])

    def rewrite_path(self, f: LocalFile) -> Path:
        """Where a rewrite of a closed file goes until its close (then replaces it)."""
        return f.staging.with_suffix(".w")
