"""Folders through the client against the emulator: tree, create, rename, move, delete."""

from __future__ import annotations

import pytest

from aionfs.api import AionClient
from aionfs.api.errors import Conflict, NotFound, ValidationFailed
from tests.media import image_bytes


async def test_tree_create_rename_move(client: AionClient) -> None:
    assert await client.folder_tree() == []
    top = await client.create_folder("Inspections")
    sub = await client.create_folder("2026", top.id)
    assert (sub.parent_id, sub.depth) == (top.id, 1)

    renamed = await client.rename_folder(sub.id, "2026 Q1")
    assert renamed.name == "2026 Q1"
    other = await client.create_folder("Archive")
    moved = await client.move_folder(sub.id, other.id)
    assert (moved.parent_id, moved.depth) == (other.id, 1)

    tree = {f.id: f for f in await client.folder_tree()}
    assert set(tree) == {top.id, sub.id, other.id}
    assert tree[other.id].subfolder_count == 1 and tree[top.id].subfolder_count == 0

    back_to_root = await client.move_folder(sub.id, None)
    assert back_to_root.parent_id is None and back_to_root.depth == 0
    contents = await client.get_folder(other.id)
    assert contents.folder is not None and contents.subfolders == []


async def test_sibling_name_clash_is_conflict(client: AionClient) -> None:
    a = await client.create_folder("Same")
    with pytest.raises(Conflict) as info:
        await client.create_folder("Same")
    assert info.value.status == 409 and info.value.request_id
    b = await client.create_folder("Other")
    with pytest.raises(Conflict):
        await client.rename_folder(b.id, "Same")
    nested = await client.create_folder("Same", b.id)  # a different parent is fine
    with pytest.raises(Conflict):
        await client.move_folder(nested.id, None)  # would clash with `a` at the root
    assert {f.name for f in await client.folder_tree()} == {"Same", "Other"}
    assert a.id != nested.id


async def test_cycle_and_depth_are_rejected(client: AionClient) -> None:
    chain = [await client.create_folder("L0")]
    for level in range(1, 10):
        chain.append(await client.create_folder(f"L{level}", chain[-1].id))
    with pytest.raises(ValidationFailed) as info:
        await client.create_folder("L10", chain[-1].id)  # an 11th level
    assert info.value.status == 422
    with pytest.raises(ValidationFailed):
        await client.move_folder(chain[0].id, chain[3].id)  # into its own descendant
    with pytest.raises(ValidationFailed):
        await client.move_folder(chain[2].id, chain[2].id)
    loose = await client.create_folder("Loose")
    with pytest.raises(ValidationFailed):  # moving Loose under L9 would be level 11
        await client.move_folder(loose.id, chain[-1].id)
    assert len(await client.folder_tree()) == 11


async def test_delete_move_to_parent_keeps_contents(client: AionClient) -> None:
    parent = await client.create_folder("Parent")
    doomed = await client.create_folder("Doomed", parent.id)
    child = await client.create_folder("Child", doomed.id)
    up = await client.upload_file(image_bytes(), "a.jpg")
    await client.move_files([up.image_id], doomed.id)

    res = await client.delete_folder(doomed.id)
    assert (res.files_affected, res.subfolders_affected, res.mode) == (1, 1, "move_to_parent")
    tree = {f.id: f for f in await client.folder_tree()}
    assert doomed.id not in tree and tree[child.id].parent_id == parent.id
    in_parent = await client.list_files(folder_id=parent.id)
    assert [f.id for f in in_parent.files] == [up.image_id]


async def test_delete_all_removes_subtree_and_files(client: AionClient) -> None:
    doomed = await client.create_folder("Doomed")
    child = await client.create_folder("Child", doomed.id)
    ups = [await client.upload_file(image_bytes((i * 40, 10, 10)), f"{i}.png")
           for i in range(3)]
    await client.move_files([ups[0].image_id], doomed.id)
    await client.move_files([ups[1].image_id], child.id)

    res = await client.delete_folder(doomed.id, mode="delete_all")
    assert (res.files_affected, res.subfolders_affected) == (2, 1)
    assert await client.folder_tree() == []
    remaining = await client.list_files()
    assert [f.id for f in remaining.files] == [ups[2].image_id]
    with pytest.raises(NotFound):
        await client.get_file(ups[0].image_id)


async def test_move_files_to_folder_and_root(client: AionClient) -> None:
    folder = await client.create_folder("Target")
    ids = [(await client.upload_file(image_bytes((i, i, 200)), f"f{i}.png")).image_id
           for i in range(3)]
    res = await client.move_files(ids, folder.id)
    assert (res.moved, res.total_requested) == (3, 3)
    assert {f.id for f in (await client.list_files(folder_id=folder.id)).files} == set(ids)
    await client.move_files(ids[:1], None)
    assert {f.id for f in (await client.list_files(folder_id=folder.id)).files} == set(ids[1:])
    with pytest.raises(NotFound):
        await client.move_files(ids, "00000000-0000-4000-8000-000000000000")


async def test_missing_folder_is_not_found(client: AionClient) -> None:
    with pytest.raises(NotFound):
        await client.rename_folder("00000000-0000-4000-8000-000000000000", "x")
    with pytest.raises(NotFound):
        await client.delete_folder("00000000-0000-4000-8000-000000000000")
