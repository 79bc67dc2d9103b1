"""The store gives back the space of deleted files: a library that shrank, or churned,
does not keep its store at its largest size forever."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from aionfs.store import Store
from tests.unit.fakes import file_item, place


def _fill_and_delete(store: Store, n: int) -> None:
    place(store, {}, {"": [file_item(f"f{i:05d}", i, description="x" * 400)
                           for i in range(n)]})
    with store.transaction():
        store.delete_files([f"f{i:05d}" for i in range(n)])


def test_a_new_store_gives_free_pages_back_a_few_at_a_time(tmp_path: Path) -> None:
    store = Store(tmp_path / "metadata.sqlite3")
    _fill_and_delete(store, 20_000)
    pages = store.db.execute("PRAGMA page_count").fetchone()[0]
    free = store.db.execute("PRAGMA freelist_count").fetchone()[0]
    assert free > 2560
    freed = store.compact(pages=1000)
    assert freed == 1000  # bounded work per call
    while store.compact(pages=1000):
        pass
    assert store.db.execute("PRAGMA page_count").fetchone()[0] < pages - free + 2560
    # the deleted files' inode rows went too (numbers are never handed out again)
    assert store.db.execute("SELECT count(*) FROM inodes WHERE kind='file'").fetchone()[0] == 0
    assert store.inode_for("file", "new") > 20_000


def test_an_old_store_is_compacted_once_when_a_quarter_is_free(tmp_path: Path) -> None:
    path = tmp_path / "metadata.sqlite3"
    sqlite3.connect(path).execute("PRAGMA auto_vacuum=NONE").connection.close()
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE t(x)")  # (a store made before incremental vacuum)
    db.execute("DROP TABLE t")
    db.close()
    store = Store(path)
    assert store.db.execute("PRAGMA auto_vacuum").fetchone()[0] == 0
    _fill_and_delete(store, 20_000)
    assert store.compact() > 0
    assert store.db.execute("PRAGMA auto_vacuum").fetchone()[0] == 2
    assert store.db.execute("PRAGMA freelist_count").fetchone()[0] == 0
