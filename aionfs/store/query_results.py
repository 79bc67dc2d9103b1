"""Queries of the virtual folders and their results (tables `query_views`,
`query_results`): saved queries, and each query's ranked file ids with the
time they expire. The one module with SQL on these tables; views/queries.py
decides when to ask the API.
"""

from __future__ import annotations

import time

from .db import Store


class QueryResults:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._db = store.db

    def saved(self, kind: str) -> list[str]:
        return [r[0] for r in self._db.execute(
            "SELECT query FROM query_views WHERE kind=? AND saved=1 ORDER BY query", (kind,))]

    def is_saved(self, kind: str, query: str) -> bool:
        return self._db.execute("SELECT 1 FROM query_views WHERE kind=? AND query=? AND "
                                "saved=1", (kind, query)).fetchone() is not None

    def save(self, kind: str, query: str) -> None:
        with self.store.transaction():
            self._db.execute(
                "INSERT INTO query_views(kind, query, saved) VALUES (?,?,1) "
                "ON CONFLICT(kind, query) DO UPDATE SET saved=1", (kind, query))

    def forget(self, kind: str, query: str) -> None:
        with self.store.transaction():
            self._db.execute("DELETE FROM query_views WHERE kind=? AND query=?", (kind, query))
            self._db.execute("DELETE FROM query_results WHERE kind=? AND query=?",
                             (kind, query))

    def cached(self, kind: str, query: str) -> tuple[list[str], float | None] | None:
        """(file ids best first, when they expire), or None if never fetched."""
        row = self._db.execute(
            "SELECT refreshed_at_epoch, expires_at_epoch FROM query_views WHERE kind=? AND "
            "query=?", (kind, query)).fetchone()
        if row is None or row[0] is None:
            return None
        ids = [r[0] for r in self._db.execute(
            "SELECT file_id FROM query_results WHERE kind=? AND query=? ORDER BY rank",
            (kind, query))]
        return ids, row[1]

    def refreshed_at(self, kind: str, query: str) -> float:
        row = self._db.execute("SELECT refreshed_at_epoch FROM query_views WHERE kind=? "
                               "AND query=?", (kind, query)).fetchone()
        return float(row[0]) if row and row[0] else 0.0

    def replace(self, kind: str, query: str, ranked: list[tuple[str, float | None]],
                ttl: float) -> None:
        """A fresh answer: these (file id, score) best first, kept `ttl` seconds."""
        now = time.time()
        with self.store.transaction():
            self._db.execute(
                "INSERT INTO query_views(kind, query, refreshed_at_epoch, expires_at_epoch) "
                "VALUES (?,?,?,?) ON CONFLICT(kind, query) DO UPDATE SET "
                "refreshed_at_epoch=excluded.refreshed_at_epoch, "
                "expires_at_epoch=excluded.expires_at_epoch", (kind, query, now, now + ttl))
            self._db.execute("DELETE FROM query_results WHERE kind=? AND query=?",
                             (kind, query))
            self._db.executemany(
                "INSERT INTO query_results(kind, query, rank, file_id, score) "
                "VALUES (?,?,?,?,?)",
                [(kind, query, rank, fid, score) for rank, (fid, score) in
                 enumerate(ranked, 1)])

    def saved_due(self, now: float) -> list[tuple[str, str]]:
        """(kind, query) of the saved queries whose results have expired, oldest first."""
        return [(r[0], r[1]) for r in self._db.execute(
            "SELECT kind, query FROM query_views WHERE saved=1 AND "
            "(expires_at_epoch IS NULL OR expires_at_epoch <= ?) ORDER BY expires_at_epoch",
            (now,))]
