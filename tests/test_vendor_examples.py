"""Every JSON response example of the vendor's API reference (api/*.md) for an
operation aionfs uses decodes through the client's models (issue 19). The examples
are vendored in tests/contract/examples.json (Apache-2.0, LICENSE beside it) by
tests/contract/vendor_spec.py."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from aionfs.api import models as m
from aionfs.api.client import decode

EXAMPLES = json.loads((Path(__file__).parent / "contract" / "examples.json").read_text())
#: (method, path with {} for parameters) → what the client decodes the answer into
MODELS: dict[tuple[str, str], Any] = {
    ("POST", "/agents/search/images"): m.ImageSearch,
    ("GET", "/colors/images/{}"): m.ImageColors,
    ("POST", "/colors/search"): m.ColorSearchPage,
    ("GET", "/colors/families"): list[m.ColorFamily],
    ("GET", "/user-files"): m.FilePage,
    ("GET", "/user-files/{}"): m.FileDetails,
    ("PATCH", "/user-files/{}"): m.FileUpdated,
    ("DELETE", "/user-files/{}"): m.FileDeleted,
    ("POST", "/user-files/batch-delete"): m.BatchDeleted,
    ("POST", "/user-files/links"): m.LinkCreated,
    ("GET", "/folders"): m.FolderTree,
    ("GET", "/folders/{}"): m.FolderContents,
    ("POST", "/folders"): m.Folder,
    ("DELETE", "/folders/{}"): m.FolderDeleted,
    ("POST", "/folders/move-files"): m.FilesMoved,
    ("POST", "/user-files/upload/stream"): m.UploadResult,
    ("POST", "/user-files/upload/stream-batch"): m.BatchUploadResult,
    ("GET", "/uploads/quota-check"): m.Quota,
    ("POST", "/uploads/check-duplicates"): m.DuplicateCheck,
    ("GET", "/uploads/sessions/{}/results"): m.SessionResults,
}
#: answers the client reads without a model: what it takes from them
READ_BY_HAND = {
    ("GET", "/usage/summary"): lambda doc: doc["plan"]["name"],  # daemon/plan.py
}


def _key(example: dict[str, str]) -> tuple[str, str]:
    return example["method"], re.sub(r"\{[^}]+\}", "{}", example["path"])


def test_the_examples_are_there() -> None:
    assert len(EXAMPLES) >= 20
    assert {_key(e) for e in EXAMPLES} >= set(MODELS) | set(READ_BY_HAND)


@pytest.mark.parametrize("example", EXAMPLES, ids=[f"{e['source']} {e['method']} {e['path']}"
                                                   for e in EXAMPLES])
def test_each_response_example_of_the_reference_decodes(example: dict[str, str]) -> None:
    key = _key(example)
    if key in READ_BY_HAND:
        assert READ_BY_HAND[key](json.loads(example["body"]))
        return
    if key not in MODELS:
        pytest.skip(f"aionfs does not read this answer ({example['method']} {example['path']})")
    decode(example["body"].encode(), MODELS[key])
