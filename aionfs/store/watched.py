"""What a watched folder took or skipped (table `watched_files`), so that each
local file is uploaded once, across restarts.

The one module with SQL on the table, besides the schema's trigger that
records how an upload ended when its journal row goes (schema.py, v4): the
upload side never needs to know which files came from a watched folder.
"""

from __future__ import annotations

import sqlite3
import time

from .db import Store


class WatchedFiles:
    """The rows of one watched folder (`watch_dir`, an absolute path)."""

    def __init__(self, store: Store, watch_dir: str) -> None:
        self.store = store
        self.dir = watch_dir
        self._db = store.db

    def counts(self) -> dict[str, int]:
        """Files by state: queued, uploaded, removed, dropped, skipped."""
        return {r[0]: r[1] for r in self._db.execute(
            "SELECT state, count(*) FROM watched_files WHERE watch_dir=? GROUP BY state",
            (self.dir,))}

    def seen(self) -> dict[str, tuple[int, int]]:
        """relpath → (size, mtime_ns) of every file taken or skipped."""
        return {r[0]: (r[1], r[2]) for r in self._db.execute(
            "SELECT relpath, size, mtime_ns FROM watched_files WHERE watch_dir=?", (self.dir,))}

    def get(self, relpath: str) -> sqlite3.Row | None:
        return self._db.execute(
            "SELECT size, mtime_ns, sha256, state FROM watched_files WHERE watch_dir=? AND "
            "relpath=?", (self.dir, relpath)).fetchone()

    def with_bytes(self, sha256: str, size: int) -> list[str]:
        """Files taken with exactly these bytes (queued or uploaded)."""
        return [r[0] for r in self._db.execute(
            "SELECT relpath FROM watched_files WHERE watch_dir=? AND sha256=? AND size=? AND "
            "state IN ('queued', 'uploaded')", (self.dir, sha256, size))]

    def skipped(self, relpath: str, size: int, mtime_ns: int, reason: str) -> None:
        with self.store.transaction():
            self._db.execute(
                "INSERT OR REPLACE INTO watched_files(watch_dir, relpath, size, mtime_ns, "
                "state, reason, at_epoch) VALUES (?,?,?,?, 'skipped', ?, ?)",
                (self.dir, relpath, size, mtime_ns, reason, time.time()))

    def queued(self, relpath: str, size: int, mtime_ns: int, sha256: str,
               journal_id: int) -> None:
        """Taken into the upload journal (called inside the journal's commit, so that
        the file and its record are both there after a crash, or neither)."""
        self._db.execute(
            "INSERT OR REPLACE INTO watched_files(watch_dir, relpath, size, mtime_ns, "
            "sha256, journal_id, state, at_epoch) VALUES (?,?,?,?,?,?, 'queued', ?)",
            (self.dir, relpath, size, mtime_ns, sha256, journal_id, time.time()))

    def renamed(self, old: str, new: str, mtime_ns: int) -> None:
        """The same bytes under a new name: the record moves with them."""
        with self.store.transaction():
            self._db.execute(
                "UPDATE OR REPLACE watched_files SET relpath=?, mtime_ns=? WHERE watch_dir=? "
                "AND relpath=?", (new, mtime_ns, self.dir, old))

    def touched(self, relpath: str, size: int, mtime_ns: int, sha256: str) -> None:
        """Its times changed, not its bytes: nothing to upload."""
        with self.store.transaction():
            self._db.execute(
                "UPDATE watched_files SET size=?, mtime_ns=?, sha256=? WHERE watch_dir=? AND "
                "relpath=?", (size, mtime_ns, sha256, self.dir, relpath))

    def in_flight_or_done(self) -> list[tuple[str, int, int, str]]:
        """(relpath, size, mtime_ns, state) of the files queued or uploaded."""
        return [(r[0], r[1], r[2], r[3]) for r in self._db.execute(
            "SELECT relpath, size, mtime_ns, state FROM watched_files WHERE watch_dir=? AND "
            "state IN ('uploaded', 'queued')", (self.dir,))]

    def removed(self, relpath: str) -> None:
        """Uploaded, then deleted locally (delete_after_upload)."""
        with self.store.transaction():
            self._db.execute(
                "UPDATE watched_files SET state='removed', at_epoch=? WHERE watch_dir=? AND "
                "relpath=?", (time.time(), self.dir, relpath))
