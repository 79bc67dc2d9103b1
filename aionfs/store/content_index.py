"""The content cache's index (table `content_cache`): which 1 MiB chunks of which
file are on disk, for which version of the file, pinned or not, last used.

The one module that reads and writes the table: the cache (cache/content.py)
keeps its entries here, `aionfs pin` sets flags from its own process, and
status counts pins.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Mapping
from typing import Any

from .db import Store

#: A file's version as its cached bytes are checked against (SQL over `files f`):
#: bytes fetched for another one are never served.
_VALIDATOR_SQL = "f.created_at || '|' || ifnull(f.updated_at, 'None') || '|' || f.size"


def validator_of(row: Mapping[str, Any]) -> str:
    """The version of a `files` row (the same as _VALIDATOR_SQL)."""
    return f"{row['created_at']}|{row['updated_at']}|{row['size']}"


class ContentIndex:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._db = store.db

    def get(self, file_id: str) -> sqlite3.Row | None:
        return self._db.execute("SELECT * FROM content_cache WHERE file_id=?",
                                (file_id,)).fetchone()

    def write(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Entries as the cache holds them (file_id, size, validator, ranges, cached,
        last_access), in one transaction; their pin flags are left as they are."""
        with self.store.transaction():
            self._db.executemany(
                "INSERT INTO content_cache(file_id, size, validator, ranges, cached, pinned, "
                "last_access) VALUES (:file_id,:size,:validator,:ranges,:cached,0,"
                ":last_access) ON CONFLICT(file_id) DO UPDATE SET size=excluded.size, "
                "validator=excluded.validator, ranges=excluded.ranges, "
                "cached=excluded.cached, last_access=excluded.last_access", list(rows))

    def present(self) -> int:
        """Bytes on disk, all files."""
        return int(self._db.execute(
            "SELECT coalesce(sum(cached), 0) FROM content_cache").fetchone()[0])

    def remove(self, file_id: str) -> int:
        """The file's bytes are gone: its entry goes (a pinned one stays, empty).
        Returns the bytes the entry had."""
        row = self._db.execute("SELECT cached FROM content_cache WHERE file_id=?",
                               (file_id,)).fetchone()
        with self.store.transaction():
            self._db.execute("DELETE FROM content_cache WHERE file_id=? AND pinned=0",
                             (file_id,))
            self._db.execute("UPDATE content_cache SET ranges='[]', cached=0 WHERE file_id=?",
                             (file_id,))
        return int(row[0]) if row is not None else 0

    def least_recently_used(self) -> list[tuple[str, int]]:
        """(file id, bytes) of the unpinned entries, least recently used first."""
        return [(r[0], r[1]) for r in self._db.execute(
            "SELECT file_id, cached FROM content_cache WHERE pinned=0 ORDER BY last_access")]

    def pin(self, file_ids: Iterable[str], pinned: bool) -> int:
        """Set the pin flag of these files (an entry made where none is); returns how
        many files there were."""
        done = 0
        with self.store.transaction():
            for fid in file_ids:
                row = self.store.file(fid)
                if row is None:
                    continue
                self._db.execute(
                    "INSERT INTO content_cache(file_id, size, validator, ranges, cached, "
                    "pinned, last_access) VALUES (?,?,?,'[]',0,?,?) ON CONFLICT(file_id) DO "
                    "UPDATE SET pinned=excluded.pinned",
                    (fid, row["size"], validator_of(row), int(pinned), time.time()))
                done += 1
        return done

    def pinned_missing(self) -> list[str]:
        """Pinned files (not links) whose bytes are not all there for their version."""
        return [r[0] for r in self._db.execute(
            "SELECT c.file_id FROM content_cache c JOIN files f ON f.id = c.file_id "
            "WHERE c.pinned=1 AND f.media_type != 'link' AND (c.cached < f.size OR "
            f"c.validator != {_VALIDATOR_SQL})")]

    def pinned_count(self) -> int:
        return int(self._db.execute(
            "SELECT count(*) FROM content_cache WHERE pinned").fetchone()[0])
