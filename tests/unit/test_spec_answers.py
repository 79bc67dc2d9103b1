"""Every answer the vendor's spec allows, decoded and taken into the store (issue 19).

Answers are generated from the vendored response schemas (tests/schema_strategies.py:
optional fields absent or null, empty lists, unknown extra fields, long and unicode
strings, big and negative numbers, dates with and without a zone) and fed through the
client's decoding, then the store and the mount's listing: nothing crashes, no file
is lost from the tree, and every name shown is a valid file name."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aionfs.api import models as m
from aionfs.api.client import decode
from aionfs.api.contract import SPEC_PATH
from aionfs.api.errors import ApiError
from aionfs.fs.listing import Listing
from aionfs.fs.view import LibraryView
from aionfs.store import ROOT_INODE, ROOT_KEY, Store
from aionfs.store.db import file_row, folder_row
from tests.schema_strategies import Schemas

SPEC = json.loads(SPEC_PATH.read_text())
SCHEMAS = Schemas(SPEC)
#: (operation, status, the model the client decodes it into)
DECODED = [
    ("get", "/api/v2/folders", "200", m.FolderTree),
    ("get", "/api/v2/folders/{folder_id}", "200", m.FolderContents),
    ("post", "/api/v2/folders", "201", m.Folder),
    ("post", "/api/v2/folders/move-files", "200", m.FilesMoved),
    ("get", "/api/v2/user-files", "200", m.FilePage),
    ("get", "/api/v2/user-files/{image_id}", "200", m.FileDetails),
    ("post", "/api/v2/user-files/batch-delete", "200", m.BatchDeleted),
    ("post", "/api/v2/uploads/check-duplicates", "200", m.DuplicateCheck),
    ("get", "/api/v2/colors/families", "200", list[m.ColorFamily]),
    ("post", "/api/v2/agents/search/images", "200", m.ImageSearch),
]
FAST = settings(max_examples=60, deadline=None, database=None,
                suppress_health_check=list(HealthCheck))


def _answer(method: str, path: str, status: str) -> st.SearchStrategy[Any]:
    schema = SPEC["paths"][path][method]["responses"][status]["content"]["application/json"]
    return SCHEMAS.strategy(schema["schema"])


@pytest.mark.parametrize(("method", "path", "status", "model"), DECODED,
                         ids=[f"{m_} {p}" for m_, p, _, _ in DECODED])
def test_every_answer_the_spec_allows_decodes(method: str, path: str, status: str,
                                              model: Any) -> None:
    @FAST
    @given(_answer(method, path, status))
    def decodes(doc: Any) -> None:
        decode(json.dumps(doc).encode(), model)

    decodes()


@FAST
@given(_answer("get", "/api/v2/uploads/quota-check", "200"))
def test_an_answer_the_spec_leaves_open_is_decoded_or_refused_cleanly(doc: Any) -> None:
    """The quota check's schema is `{}` (anything); the prose documents an object. An
    answer of another shape is an ApiError, which the uploader answers by taking the
    plan's batch size (docs/client.md, where the documents disagree)."""
    try:
        decode(json.dumps(doc).encode(), m.Quota)
    except ApiError as exc:
        assert "unexpected answer" in str(exc)


@FAST
@given(_answer("get", "/api/v2/folders", "200"), _answer("get", "/api/v2/user-files", "200"))
def test_every_listing_the_spec_allows_reaches_the_tree_whole(folders_doc: Any,
                                                              page_doc: Any) -> None:
    tree = decode(json.dumps(folders_doc).encode(), m.FolderTree)
    page = decode(json.dumps(page_doc).encode(), m.FilePage)
    files = list({f.id: f for f in page.files}.values())  # (a repeated id is one file)
    with _store() as store:
        with store.transaction():
            store.upsert_folders([folder_row(f) for f in {f.id: f for f in tree.folders}
                                  .values()])
            store.upsert_files([file_row(f) for f in files])
            store.place_files([f.id for f in files], ROOT_KEY)
            store.rename_dir(ROOT_KEY)
        view = LibraryView(store, uid=os.getuid(), gid=os.getgid(), read_only=False,
                           views=False)
        listing = Listing(((os.fsencode(n), a) for n, a in view.listdir(ROOT_INODE)), 1, 1)
        names = [name for name, _ in listing]
        shown = {a.inode for _, a in listing if not a.is_dir}
        assert len(shown) == len(files)  # no file lost
        assert len(set(names)) == len(names)
        for name in names:
            assert name not in (b".", b"..") and b"/" not in name and b"\0" not in name
            assert 0 < len(name) <= 255
            name.decode()  # valid UTF-8


class _store:
    def __enter__(self) -> Store:
        import tempfile

        self._dir = tempfile.TemporaryDirectory()
        self.store = Store(Path(self._dir.name) / "metadata.sqlite3")
        return self.store

    def __exit__(self, *exc: object) -> None:
        self.store.close()
        self._dir.cleanup()


def test_fields_the_models_do_not_know_are_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    from aionfs.api import client

    client._decoders.pop(m.FolderTree, None)  # (as in a fresh process)
    body = (b'{"folders": [{"id": "f", "name": "A", "created_at": "2026-01-01T00:00:00Z",'
            b' "updated_at": "2026-01-01T00:00:00Z", "color": "red"}], "next": null}')
    with caplog.at_level("INFO", logger="aionfs.api.client"):
        decode(body, m.FolderTree)
        decode(body, m.FolderTree)
    said = [r.getMessage() for r in caplog.records if "does not know" in r.getMessage()]
    assert len(said) == 1 and "folders[].color" in said[0] and "next" in said[0]


@pytest.mark.parametrize("ids", [
    ["01J9ZK3M4N5P6Q7R8S9T0V1W2X", "01J9ZK3M4N5P6Q7R8S9T0V1W2Y"],  # ULIDs: one prefix
    ["12345", "12346"],  # numbers
    ["a/b?c", "a/b#d"],  # characters a name may not hold
    ["é" * 40, "é" * 39 + "è"],  # long, unicode
])
def test_ids_in_another_format_are_opaque_text(ids: list[str]) -> None:
    """Ids in a format other than UUIDs: namesakes still get distinct, valid names
    (the clash suffix is made from the id), and every file is in the tree."""
    item = {"title": "Same", "size_bytes": 3, "created_at": "2026-01-01T00:00:00Z",
            "format": "jpeg", "media_type": "image"}
    page = decode(json.dumps({"files": [{**item, "id": i} for i in ids], "total_count": 2,
                              "has_more": False}).encode(), m.FilePage)
    with _store() as store:
        with store.transaction():
            store.upsert_files([file_row(f) for f in page.files])
            store.place_files(ids, ROOT_KEY)
            store.rename_dir(ROOT_KEY)
        view = LibraryView(store, uid=os.getuid(), gid=os.getgid(), read_only=False,
                           views=False)
        names = [name for name, _ in view.listdir(ROOT_INODE)]
        assert len(set(names)) == 2 and "Same.jpg" in names
        for name in names:
            assert "/" not in name and "\0" not in name and len(name.encode()) <= 255
