"""The virtual folder kinds on their own: which names are folders, what is listed,
what a crawler can reach, and that the registry and the store agree on names."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from aionfs.fs.view import LibraryView
from aionfs.store import Store, naming
from aionfs.sync import Syncer
from aionfs.views import ROOT_NAMES, QueryCache, ViewError, VirtualTree
from aionfs.views.kinds import KINDS
from aionfs.views.kinds.saved_queries import PROBES
from tests.unit.fakes import FakeClient, file_item, place


def _tree(tmp_path: Path, client: Any = None) -> VirtualTree:
    store = Store(tmp_path / "metadata.sqlite3")
    place(store, {}, {"": [file_item("a", 5, tags='["sea"]'),
                           file_item("b", 6, tags='["sea", "sky"]'),
                           file_item("c", 7, created_at="2025-03-04T00:00:00+00:00")]})
    client = client or FakeClient()
    syncer = Syncer(client, store)
    view = LibraryView(store, uid=os.getuid(), gid=os.getgid(), read_only=False, views=True)
    return VirtualTree(store, QueryCache(store, client, syncer), view)


def test_every_kind_is_a_reserved_root_name() -> None:
    assert frozenset(ROOT_NAMES) == naming.VIRTUAL_ROOT_NAMES
    assert len({k.name for k in KINDS}) == len(KINDS)


async def test_probes_and_dot_names_are_never_queries(tmp_path: Path) -> None:
    tree = _tree(tmp_path)
    search = tree.top("search")
    assert search is not None
    for name in [*sorted(PROBES)[:3], ".hidden", ".Trash-0", "  "]:
        assert await tree.child_dir(search, name) is None
    assert await tree.child_dir(search, "red boats") is not None


async def test_an_unsaved_query_looks_absent_only_to_mkdir(tmp_path: Path) -> None:
    tree = _tree(tmp_path)
    search = tree.top("search")
    assert search is not None
    assert await tree.child_dir(search, "boats", lambda: True) is None
    await tree.mkdir(search, "boats")
    assert await tree.child_dir(search, "boats", lambda: True) is not None


async def test_color_specs_the_service_cannot_know_are_not_folders(tmp_path: Path) -> None:
    client = FakeClient()
    tree = _tree(tmp_path, client)
    colors = tree.top("colors")
    assert colors is not None
    assert [name for name, _ in await tree.listing(colors)] == ["blue", "red"]
    assert await tree.child_dir(colors, "#ff0000") is not None
    assert await tree.child_dir(colors, "#zz0000") is None
    client.families = ["green"]  # asked once, then kept in the store
    assert [name for name, _ in await tree.listing(colors)] == ["blue", "red"]


async def test_tag_intersections_are_reachable_but_never_listed(tmp_path: Path) -> None:
    tree = _tree(tmp_path)
    tags = tree.top("tags")
    assert tags is not None
    sea = await tree.child_dir(tags, "sea")
    assert sea is not None
    listed = [name for name, attr in await tree.listing(sea)]
    assert listed == ["a.jpg", "b.jpg"]  # files only: a crawl ends here
    sky = await tree.child_dir(sea, "sky")
    assert sky is not None and await tree.child_dir(sky, "sea") is None  # no repeats
    assert [name for name, _ in await tree.listing(sky)] == ["b.jpg"]
    assert tree.tags_given(sky) == ["sea", "sky"] and tree.tag_taken(sky) == "sky"
    assert await tree.child_dir(tags, "rain") is None


async def test_writes_are_refused_where_a_kind_gives_them_no_meaning(tmp_path: Path) -> None:
    tree = _tree(tmp_path)
    by_date, tags = tree.top("by-date"), tree.top("tags")
    assert by_date is not None and tags is not None
    with pytest.raises(ViewError):
        await tree.mkdir(by_date, "1999")
    with pytest.raises(ViewError):
        tree.tags_given(tags)
    with pytest.raises(ViewError):
        tree.rmdir(tags, "sea")
    assert [name for name, _ in await tree.listing(by_date)] == ["2025", "2026"]
    assert tree.dir_attr(by_date).mode & 0o777 == 0o555
    assert tree.dir_attr(tags).mode & 0o777 == 0o755
