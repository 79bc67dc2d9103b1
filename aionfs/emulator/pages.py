"""Deep list pages at the cost of the first.

The service pages listings by offset, and a client crawling a library of a
million files asks for ever deeper pages: with `OFFSET` and a `count(*)` per
page, SQLite walks every skipped row, and the emulator, not the client, was
the slowest part of a big crawl. The emulator therefore remembers, per query,
its total and where the page it last served ended; the next page of the same
query continues from there with a keyset condition. Both are valid only while
nothing in the database changed (`total_changes` of its one connection), so
answers are exactly what `OFFSET` would give.
"""

from __future__ import annotations

import sqlite3
from typing import Any

#: sort keys that are plain columns: a page can continue after the last row's value
KEYSET = {"created_at": "f.created_at", "size_bytes": "f.size_bytes"}
SORTS = {
    **KEYSET,
    "content_created_at": "COALESCE(f.content_created_at, f.created_at)",
    "title": "COALESCE(f.title, f.original_filename, '') COLLATE NOCASE",
}
REMEMBERED = 4096  # queries whose total and last page end are kept


class Pages:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        self._changes = -1
        self._totals: dict[tuple[Any, ...], int] = {}
        self._ends: dict[tuple[Any, ...], tuple[Any, int]] = {}  # (query, offset) → (value, seq)

    def page(self, cond: str, args: list[Any], sort_by: str, order: str, limit: int,
             offset: int) -> tuple[list[sqlite3.Row], int]:
        """One page of `SELECT f.* FROM files f WHERE cond` in the given order, and the
        total of the query."""
        if self.db.total_changes != self._changes or len(self._ends) > REMEMBERED:
            self._changes = self.db.total_changes
            self._totals.clear()
            self._ends.clear()
        query = (cond, tuple(args), sort_by, order)
        total = self._totals.get(query)
        if total is None:
            total = self.db.execute(f"SELECT count(*) FROM files f WHERE {cond}",
                                    args).fetchone()[0]
            self._totals[query] = total
        direction = "DESC" if order == "desc" else "ASC"
        ordering = f"ORDER BY {SORTS[sort_by]} {direction}, f.seq {direction}"
        end = self._ends.pop((query, offset), None)
        if end is not None:
            after = "<" if order == "desc" else ">"
            rows = self.db.execute(
                f"SELECT f.* FROM files f WHERE {cond} AND ({KEYSET[sort_by]}, f.seq) {after} "
                f"(?, ?) {ordering} LIMIT ?", (*args, *end, limit)).fetchall()
        else:
            rows = self.db.execute(f"SELECT f.* FROM files f WHERE {cond} {ordering} "
                                   "LIMIT ? OFFSET ?", (*args, limit, offset)).fetchall()
        if rows and sort_by in KEYSET:
            last = rows[-1]
            self._ends[(query, offset + len(rows))] = (last[sort_by], last["seq"])
        return rows, total
