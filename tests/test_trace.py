"""`aionfs mount --trace FILE`: what the service answered, without the user's data.

A user browses, reads, writes and renames through a traced mount; the trace then
holds a line per API exchange (method, path template, status, shapes) and none of:
the API key, a file or folder id, a title or folder name, a tag, file bytes, or a
presigned URL's query string.

The secrets are words, not numbers: a trace legitimately holds random hex (request
ids) and sizes, in which a number like 7781 turns up by chance.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from types import SimpleNamespace

from tests.conftest import EmulatorProcess
from tests.media import image_bytes
from tests.mounting import TEST_OPTIONS, api_call, mount

TITLE = "Zebra Confidential Quokka"
FOLDER = "Private Site Wombat"
WRITTEN = "Another secret name Narwhal.txt"
CONTENT = b"SECRET-CONTENT-" * 200


def test_a_trace_has_every_exchange_as_a_shape_and_no_secret_id_title_or_byte(
        emulator: EmulatorProcess, tmp_path: Path) -> None:
    key = emulator.new_tenant(plan="professional", rpm=0)
    lib = SimpleNamespace(key=key)
    folder = api_call(emulator, lib, lambda c: c.create_folder(FOLDER))
    photo = image_bytes((10, 200, 30)) + CONTENT  # (trailing bytes: still a JPEG)
    up = api_call(emulator, lib, lambda c: c.upload_file(photo, "zebra.jpg", title=TITLE,
                                                         tags=["secret-tag-kiwi"]))
    api_call(emulator, lib, lambda c: c.move_files([up.image_id], folder.id))
    trace = tmp_path / "trace.jsonl"
    m = mount(emulator, key, tmp_path / "m", tmp_path / "c",
              options=(*TEST_OPTIONS, "--trace", str(trace)))
    try:
        shown = m.path / FOLDER / f"{TITLE}.jpg"
        assert shown.read_bytes() == photo
        (m.path / FOLDER / WRITTEN).write_bytes(CONTENT)
        m.flush()
        os.rename(m.path / FOLDER / WRITTEN, m.path / FOLDER / "renamed Axolotl.txt")
        m.flush()
    finally:
        m.unmount()
    text = trace.read_text()
    for secret in (key, key[-12:], up.image_id, folder.id, TITLE, "Zebra", FOLDER, "Wombat",
                   "secret name", "Narwhal", "Axolotl", "secret-tag", "SECRET-CONTENT"):
        assert secret not in text, f"{secret!r} reached the trace"
    assert not re.search(r"[?&](X-Amz|sig|signature|expires|token)=", text, re.I)
    assert "boundary=" not in text  # random per upload: only noise
    assert "Bearer" not in text and "authorization" not in text.lower()
    records = [json.loads(line) for line in text.splitlines()]
    seen = {(r["method"], r["path"], r["status"]) for r in records}
    assert ("GET", "/api/v2/folders", 200) in seen
    assert ("PATCH", "/api/v2/user-files/{id}", 200) in seen  # the rename
    assert any(r["path"].startswith("/api/v2/user-files/upload/stream") for r in records)
    listing = next(r for r in records if r["path"] == "/api/v2/user-files"
                   and r["status"] == 200 and r["response_shape"]["files"]["list"])
    item = listing["response_shape"]["files"]["of"][0]
    assert item["title"] == "string" and item["id"] == "string"  # keys and types only
    assert "folder_id" in listing["query"] or "sort_by" in listing["query"]
    assert all(r["ms"] is not None and r["ms"] >= 0 for r in records)
    assert not any("?" in r["response_headers"].get("location", "") for r in records)
