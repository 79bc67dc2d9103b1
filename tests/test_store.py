"""The metadata store on its own: schema versions, naming rules, lookups."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from aionfs.store import ROOT_INODE, SCHEMA_VERSION, Store
from aionfs.store import naming as n
from aionfs.store.schema import MIGRATIONS, SchemaError, migrate


def test_new_store_is_current_and_in_wal(tmp_path: Path) -> None:
    store = Store(tmp_path / "m.sqlite3")
    assert store.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.previous_version == 0
    assert store.inode_ref(ROOT_INODE) == ("root", "")
    store.close()


@pytest.mark.parametrize("start", range(SCHEMA_VERSION + 1))
def test_upgrade_from_every_version_keeps_data(tmp_path: Path, start: int) -> None:
    """A store at any earlier version upgrades to the current one, keeping its rows."""
    path = tmp_path / "m.sqlite3"
    db = sqlite3.connect(path, isolation_level=None)
    for script in MIGRATIONS[:start]:
        db.executescript(script)
    db.execute(f"PRAGMA user_version = {start}")
    if start >= 1:
        db.execute("INSERT INTO meta(key, value) VALUES ('marker', 'kept')")
    db.close()
    store = Store(path)
    assert store.previous_version == start
    assert store.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    if start >= 1:
        assert store.get_meta("marker") == "kept"
    store.close()
    assert Store(path).previous_version == SCHEMA_VERSION  # reopening is a no-op


def test_newer_store_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "m.sqlite3"
    Store(path).close()
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.commit()
    db.close()
    with pytest.raises(SchemaError, match="newer than this aionfs"):
        Store(path)


def test_failed_migration_leaves_the_store_untouched(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "m.sqlite3", isolation_level=None)
    db.execute("CREATE TABLE inodes (x)")  # a clash makes migration 1 fail midway
    with pytest.raises(sqlite3.OperationalError):
        migrate(db)
    assert db.execute("PRAGMA user_version").fetchone()[0] == 0
    assert db.execute("SELECT count(*) FROM sqlite_master WHERE name='folders'").fetchone()[0] == 0


@pytest.mark.parametrize(("title", "filename", "fmt", "media", "expected"), [
    ("Pole 17", "IMG_1.jpg", "jpeg", "image", "Pole 17.jpg"),
    ("Pole 17.JPG", "IMG_1.jpg", "jpeg", "image", "Pole 17.JPG"),
    (None, "IMG_1.jpeg", "jpeg", "image", "IMG_1.jpeg"),
    (None, "scan.png", "jpeg", "image", "scan.png.jpg"),  # the real extension wins
    (None, "notes", "txt", "document", "notes.txt"),
    ("Report", "r.pdf", "pdf", "document", "Report.pdf"),
    ("Guide", None, "link", "link", "Guide.desktop"),
    (None, None, "link", "link", "example.org.desktop"),
    ("a/b\x00c\td", "x.png", "png", "image", "a／bc d.png"),
    ("   ", "x.png", "png", "image", "x.png"),
    ("..", "x.png", "png", "image", "...png"),
])
def test_file_names(title: str | None, filename: str | None, fmt: str, media: str,
                    expected: str) -> None:
    assert n.file_name(title, filename, fmt, media, "example.org") == expected


def test_long_names_are_cut_at_a_character_keeping_the_extension() -> None:
    name = n.file_name("日本" * 100, "x.jpg", "jpeg", "image")
    assert len(name.encode()) <= 255 and name.endswith(".jpg")
    name.encode().decode("utf-8")  # still valid UTF-8
    suffixed = n.suffixed(name, "0123456789abcdef")
    assert len(suffixed.encode()) <= 255 and suffixed.endswith(" (01234567).jpg")
    assert n.safe_name("\ud800bad") == "\ufffd\ufffd\ufffdbad"


def test_assign_is_a_function_of_the_members_alone() -> None:
    a = n.Child(10, "x.jpg", "2025-01-01", "aaaaaaaa-1")
    b = n.Child(11, "x.jpg", "2025-01-02", "bbbbbbbb-2")
    c = n.Child(12, "y.jpg", "2025-01-03", "cccccccc-3")
    first = n.assign([b, c, a])
    assert first == {10: "x.jpg", 11: "x (bbbbbbbb).jpg", 12: "y.jpg"}
    assert n.assign([c, a, b]) == first  # order of input does not matter
    # the holder of the plain name goes away (deleted, or replaced by a version saved on
    # another client): the oldest that wants it takes it, so that every client, whatever
    # it learned first, shows the same file under the same name
    assert n.assign([b, c]) == {11: "x.jpg", 12: "y.jpg"}
    b2 = n.Child(15, "x.jpg", "2025-01-04", "ffffffff-6")
    assert n.assign([b2, b, c]) == {11: "x.jpg", 15: "x (ffffffff).jpg", 12: "y.jpg"}
    # an older namesake moved in takes the plain name
    d = n.Child(13, "y.jpg", "2024-01-01", "dddddddd-4")
    assert n.assign([a, b, c, d])[12] == "y (cccccccc).jpg"
    # reserved names (virtual folders at the root) are never given out
    e = n.Child(14, "search", "2020-01-01", "eeeeeeee-5")
    assert n.assign([e], frozenset({"search"})) == {14: "search (eeeeeeee)"}


def test_an_item_seen_twice_in_one_batch_is_stored_once(tmp_path: Path) -> None:
    """Paging newest-first while files arrive repeats items across pages."""
    from aionfs.store.db import FILE_COLUMNS

    store = Store(tmp_path / "s.sqlite3")
    row = {c: None for c in FILE_COLUMNS} | {"id": "f1", "size": 3, "tags": "[]",
                                              "created_at": "2026-01-01T00:00:00+00:00"}
    with store.transaction():
        new, _, _ = store.upsert_files([row, dict(row, title="later")])
    assert new == {"f1"}
    assert store.file("f1")["title"] == "later"


def test_colors_survive_a_new_listing_and_go_with_new_bytes(tmp_path: Path) -> None:
    """Colors are asked once per file's bytes: a listing (even one with a new title)
    keeps them, known-none ('') included; a new size means new bytes, asked again."""
    from aionfs.store.db import FILE_COLUMNS

    store = Store(tmp_path / "s.sqlite3")
    row = {c: None for c in FILE_COLUMNS} | {"id": "f1", "size": 3, "tags": "[]",
                                              "media_type": "image",
                                              "created_at": "2026-01-01T00:00:00+00:00"}
    other = dict(row, id="f2")
    with store.transaction():
        store.upsert_files([row, other])
        store.db.execute("UPDATE files SET colors='#FF0000 Red 100%' WHERE id='f1'")
        store.db.execute("UPDATE files SET colors='' WHERE id='f2'")
    with store.transaction():
        store.upsert_files([row, dict(other, title="renamed")])
    assert store.file("f1")["colors"] == "#FF0000 Red 100%"
    assert store.file("f2")["colors"] == ""
    with store.transaction():
        _, _, content = store.upsert_files([dict(row, size=4), other])
    assert content == {"f1"}
    assert store.file("f1")["colors"] is None
    assert store.file("f2")["colors"] == ""
