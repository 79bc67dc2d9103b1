"""What the workspace looks like through the API, and the store's view of it."""

from __future__ import annotations

from dataclasses import dataclass

from aionfs.api import AionClient
from aionfs.store import ROOT_INODE, ROOT_KEY, Store


@dataclass
class Shape:
    """folder id → (name, parent id); folder key ('' root) → set of file ids; file → title."""

    folders: dict[str, tuple[str, str | None]]
    files: dict[str, set[str]]
    titles: dict[str, tuple[str | None, tuple[str, ...]]]


async def remote_shape(client: AionClient) -> Shape:
    folders = {f.id: (f.name, f.parent_id) for f in await client.folder_tree()}
    everything = {f.id: f async for f in client.iter_files()}
    files: dict[str, set[str]] = {}
    placed: set[str] = set()
    for fid in folders:
        files[fid] = {f.id async for f in client.iter_files(folder_id=fid)}
        placed |= files[fid]
    files[ROOT_KEY] = set(everything) - placed
    titles = {k: (v.title, tuple(v.tags)) for k, v in everything.items()}
    return Shape(folders, files, titles)


def store_shape(store: Store) -> Shape:
    folders = {k: (r["name"], r["parent_id"]) for k, r in store.folders().items()}
    files = {key: set(store.members(key)) for key in [*folders, ROOT_KEY]}
    titles = {}
    import json

    for row in store.db.execute("SELECT id, title, tags FROM files"):
        titles[row[0]] = (row[1], tuple(json.loads(row[2])))
    return Shape(folders, files, titles)


def assert_same(store: Store, remote: Shape) -> None:
    local = store_shape(store)
    assert local.folders == remote.folders
    assert {k: v for k, v in local.files.items() if v} == {
        k: v for k, v in remote.files.items() if v}
    assert local.titles == remote.titles
    assert store.counts()["unplaced"] == 0
    check_names(store)


def check_names(store: Store) -> None:
    """Every shown object has exactly one name in its directory; names are valid."""
    shown = {}
    for row in store.db.execute("SELECT parent_inode, name, inode FROM entries"):
        parent, name, inode = row
        assert name not in ("", ".", "..") and "/" not in name and "\0" not in name
        assert len(name.encode()) <= 255
        assert inode not in shown, f"inode {inode} shown twice"
        shown[inode] = (parent, name)
    for fid, r in store.folders().items():
        parent = ROOT_INODE if r["parent_id"] is None else store.folder(r["parent_id"])["inode"]
        assert shown[r["inode"]][0] == parent, f"folder {fid} not in its parent"
    for row in store.db.execute("SELECT inode, placement, folder_id FROM files"):
        if row[1] == "unknown":
            assert row[0] not in shown
        else:
            parent = ROOT_INODE if row[1] == "root" else store.folder(row[2])["inode"]
            assert shown[row[0]][0] == parent
