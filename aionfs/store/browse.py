"""The queries of the virtual folders that the store answers alone: files by tag,
by date, by id (in a given order), and the tags, years and months there are.

Rows carry the columns an entry needs (VIEW_COLUMNS), so a listing is one
query, never one per file.
"""

from __future__ import annotations

import sqlite3

from .db import ATTR_COLUMNS, Store

VIEW_COLUMNS = ATTR_COLUMNS + ", f.filename, f.format"
#: a file's date in by-date/: when its content was made, else when it was uploaded
_DATE = "coalesce(f.content_created_at, f.created_at)"


class Browse:
    def __init__(self, store: Store) -> None:
        self._db = store.db

    def tagged(self, tags: list[str]) -> list[sqlite3.Row]:
        """Files carrying every one of these tags, oldest first."""
        where = " AND ".join(["EXISTS (SELECT 1 FROM json_each(f.tags) WHERE value=?)"]
                             * len(tags))
        return list(self._db.execute(
            f"SELECT {VIEW_COLUMNS} FROM files f WHERE {where} ORDER BY f.created_at", tags))

    def dated(self, year: str, month: str) -> list[sqlite3.Row]:
        return list(self._db.execute(
            f"SELECT {VIEW_COLUMNS} FROM files f WHERE substr({_DATE}, 1, 7) = ? "
            f"ORDER BY {_DATE}", (f"{year}-{month}",)))

    def by_ids(self, ids: list[str]) -> list[sqlite3.Row]:
        """Rows of these files in the order given (ranked results); gone ones drop out."""
        rows: dict[str, sqlite3.Row] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            for r in self._db.execute(f"SELECT {VIEW_COLUMNS} FROM files f WHERE f.id IN "
                                      f"({','.join('?' * len(chunk))})", chunk):
                rows[r["id"]] = r
        return [rows[i] for i in ids if i in rows]

    def tags(self) -> list[str]:
        return [r[0] for r in self._db.execute(
            "SELECT DISTINCT j.value FROM files f, json_each(f.tags) j "
            "WHERE j.type = 'text' ORDER BY j.value")]

    def years(self) -> list[str]:
        return [r[0] for r in self._db.execute(
            f"SELECT DISTINCT substr({_DATE}, 1, 4) AS y FROM files f ORDER BY y")]

    def months(self, year: str) -> list[str]:
        return [r[0] for r in self._db.execute(
            f"SELECT DISTINCT substr({_DATE}, 6, 2) AS m FROM files f "
            f"WHERE substr({_DATE}, 1, 4) = ? ORDER BY m", (year,))]
