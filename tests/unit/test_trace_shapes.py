"""The trace's privacy rule on its own: values never, keys only when they are field
names, paths as templates."""

from __future__ import annotations

from aionfs.api.trace import path_template, shape


def test_shapes_keep_keys_and_types_never_values() -> None:
    doc = {"files": [{"id": "6f1c…", "title": "Holiday at Ann's", "size": 3, "ok": True,
                      "ratio": 0.5, "folder_id": None}],
           "by_hash": {"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08": 1,
                       "6f1c2a1e-9d6b-4b7e-9a55-0f5e1f3c2b11": 2, "a title with spaces": 3,
                       "file.jpg": 4}}
    got = shape(doc)
    assert got["files"] == {"list": 1, "of": [{"id": "string", "title": "string",
                                               "size": "integer", "ok": "boolean",
                                               "ratio": "number", "folder_id": "null"}]}
    assert got["by_hash"] == {"{key}": "integer"}  # ids, hashes and names are data
    assert "Holiday" not in repr(got)


def test_lists_show_their_length_and_each_distinct_shape_of_a_few_items() -> None:
    assert shape([1, 2, "x", None] + [5] * 100) == {"list": 104,
                                                   "of": ["integer", "string", "null"]}


def test_paths_keep_the_api_words_and_hide_every_value() -> None:
    assert path_template("/api/v2/user-files/6f1c2a1e-9d6b-4b7e-9a55-0f5e1f3c2b11/download") \
        == "/api/v2/user-files/{id}/download"
    assert path_template("/api/v2/uploads/sessions/abc123/results") == \
        "/api/v2/uploads/sessions/{id}/results"
    assert path_template("/blobs/Holiday%20photo.jpg") == "/blobs/{id}"
