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
