"""Thumbnail files written by several writers at once (a folder seeded for a file
manager's opening and by the background pass; a thumbnailer of its own beside the
mount): none fails, none reads half a PNG, no temporary file is left behind."""

from __future__ import annotations

import threading
from pathlib import Path

from aionfs.thumbs.standard import write_atomically


def test_writers_of_one_thumbnail_never_collide(tmp_path: Path) -> None:
    path = tmp_path / "thumbnails" / "large" / "0123abcd.png"
    payloads = [bytes([i]) * (200_000 + i) for i in range(8)]
    errors: list[BaseException] = []

    def writer(data: bytes) -> None:
        try:
            for _ in range(25):
                write_atomically(path, data)
        except BaseException as exc:  # collected: the test fails below with it
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(p,)) for p in payloads]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert path.read_bytes() in payloads
    assert [p.name for p in path.parent.iterdir()] == [path.name]


def test_library_files_show_whole_second_mtimes_that_thumbnails_match_exactly(
        tmp_path: Path) -> None:
    """GLib checks Thumb::MTime as the integer seconds; tumbler compares it as a float
    with the microseconds (g_ascii_strtod(Thumb::MTime) != mtime + usec/1e6): both hold
    only if the file's mtime has no fraction. The API's times have one."""
    import os

    from aionfs.fs.view import LibraryView
    from aionfs.store import Store
    from tests.unit.fakes import file_item, place

    store = Store(tmp_path / "metadata.sqlite3")
    place(store, {}, {"": [file_item("a", 5, created_at="2026-03-04T05:06:07.891234+00:00",
                                     updated_at="2026-03-04T05:06:08.5+00:00")]})
    view = LibraryView(store, uid=os.getuid(), gid=os.getgid(), read_only=False)
    attr = view.file_attr(store.file_by_inode(store.file("a")["inode"]))
    seconds = attr.mtime_ns // 1_000_000_000
    assert attr.mtime_ns == seconds * 1_000_000_000 and attr.ctime % 1_000_000_000 == 0
    thumb_mtime = str(seconds)  # what the seeder writes
    assert float(thumb_mtime) == seconds + (attr.mtime_ns % 1_000_000_000) // 1000 / 1e6
