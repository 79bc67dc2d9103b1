"""Files through the client: listing with every filter and sort, details, updates, deletes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from aionfs.api import AionClient
from aionfs.api.errors import NotFound, ValidationFailed
from tests.media import image_bytes


async def upload(client: AionClient, name: str, color: tuple[int, int, int], *,
                 title: str | None = None, tags: list[str] | None = None,
                 size: tuple[int, int] = (64, 48)) -> str:
    fmt = {"jpg": "JPEG", "png": "PNG", "webp": "WEBP", "gif": "GIF"}[name.rsplit(".", 1)[1]]
    res = await client.upload_file(image_bytes(color, size, fmt), name, title=title, tags=tags)
    return res.image_id


async def test_list_pagination_covers_every_file_once(client: AionClient) -> None:
    ids = {await upload(client, f"p{i}.png", (i * 9, 0, 0)) for i in range(25)}
    pages = [p async for p in client.iter_file_pages(page_size=7, sort_by="created_at")]
    assert [len(p.files) for p in pages] == [7, 7, 7, 4]
    assert all(p.total_count == 25 for p in pages)
    assert [p.has_more for p in pages] == [True, True, True, False]
    seen = [f.id for p in pages for f in p.files]
    assert len(seen) == len(set(seen)) == 25 and set(seen) == ids


async def test_sorts(client: AionClient) -> None:
    a = await upload(client, "a.png", (1, 1, 1), title="banana", size=(10, 10))
    b = await upload(client, "b.png", (2, 2, 2), title="Apple", size=(300, 300))
    c = await upload(client, "c.png", (3, 3, 3), title="cherry", size=(80, 80))

    async def order(**kw: str) -> list[str]:
        return [f.id for f in (await client.list_files(**kw)).files]

    assert await order(sort_by="created_at") == [c, b, a]  # newest first by default
    assert await order(sort_by="created_at", sort_order="asc") == [a, b, c]
    assert await order(sort_by="title", sort_order="asc") == [b, a, c]  # case-insensitive
    sizes = [f.size_bytes for f in (await client.list_files(sort_by="size_bytes")).files]
    assert sizes == sorted(sizes, reverse=True)
    with pytest.raises(ValueError):
        await client.list_files(sort_by="colour")


async def test_filters(client: AionClient) -> None:
    red = await upload(client, "red.png", (220, 20, 20), tags=["safety", "pole"])
    blue = await upload(client, "blue.jpg", (20, 20, 220), tags=["safety"], title="river")
    note = (await client.upload_file(b"cracked concrete near the river\n", "note.txt")).image_id
    link = (await client.create_link("https://example.com/a", tags=["pole"])).id

    async def ids(**kw: object) -> set[str]:
        return {f.id async for f in client.iter_files(**kw)}

    assert await ids(tags=["safety"]) == {red, blue}
    assert await ids(tags=["safety", "pole"]) == {red}  # AND
    assert await ids(media_types=["document"]) == {note}
    assert await ids(media_types=["image", "link"]) == {red, blue, link}
    assert await ids(ids=[red, note]) == {red, note}
    assert await ids(search="river") == {blue, note}
    assert await ids(search="cracked concrete") == {note}
    assert await ids(search="river", search_mode="visible_text") == {note}
    assert await ids(search="river", search_mode="metadata") == {blue, note}
    assert await ids(search="nothing-like-this") == set()
    assert await ids(has_description=True) == {red, blue, note, link}
    now = datetime.now(UTC)
    assert await ids(date_from=now - timedelta(hours=1)) == {red, blue, note, link}
    assert await ids(date_to=now - timedelta(hours=1)) == set()


async def test_list_items_carry_no_folder_id(client: AionClient) -> None:
    folder = await client.create_folder("F")
    fid = await upload(client, "x.png", (9, 9, 9))
    await client.move_files([fid], folder.id)
    raw = await client._api.get("user-files", params={"limit": 5})
    item = raw.json()["files"][0]
    assert "folder_id" not in item and "updated_at" not in item
    assert [f.id for f in (await client.list_files(folder_id=folder.id)).files] == [fid]


async def test_details_update_delete(client: AionClient) -> None:
    data = image_bytes((196, 168, 124), (120, 80))
    up = await client.upload_file(data, "walnut table.jpg", tags=["wood"])
    details = await client.get_file(up.image_id)
    import hashlib

    assert details.hash == hashlib.sha256(data).hexdigest()
    assert details.original_filename == "walnut table.jpg"
    assert details.size_bytes == len(data) and details.dimensions is not None
    assert (details.dimensions.width, details.dimensions.height) == (120, 80)
    assert "walnut" in (details.upload_description or "").lower()
    # an 8-character prefix works too, as on the service
    assert (await client.get_file(up.image_id[:8])).id == up.image_id

    updated = await client.update_file(up.image_id, title="Walnut", tags=["wood", "table"])
    assert (updated.title, updated.tags) == ("Walnut", ["wood", "table"])
    after = await client.get_file(up.image_id)
    assert after.updated_at is not None and after.updated_at >= details.updated_at  # type: ignore[operator]
    assert (await client.list_files(search="Walnut", search_mode="metadata")).total_count == 1

    # The client refuses what the API would refuse, without a request.
    sent = client.stats.requests
    with pytest.raises(ValidationFailed):
        await client.update_file(up.image_id, tags=[f"t{i}" for i in range(41)])
    with pytest.raises(ValidationFailed):
        await client.update_file(up.image_id, title="x" * 256)
    assert client.stats.requests == sent

    deleted = await client.delete_file(up.image_id)
    assert deleted.id == up.image_id
    with pytest.raises(NotFound):
        await client.get_file(up.image_id)
    with pytest.raises(NotFound):
        await client.delete_file(up.image_id)
    assert (await client.list_files()).total_count == 0


async def test_batch_delete_reports_each_file(client: AionClient) -> None:
    ids = [await upload(client, f"{i}.gif", (i, 50, 50)) for i in range(3)]
    missing = "00000000-0000-4000-8000-000000000000"
    res = await client.batch_delete([*ids[:2], missing])
    assert {d.id for d in res.deleted} == set(ids[:2])
    assert [f.id for f in res.failed] == [missing]
    assert res.summary == {"total": 3, "deleted": 2, "skipped": 0, "failed": 1}
    assert [f.id for f in (await client.list_files()).files] == [ids[2]]


async def test_links_are_files_without_bytes(client: AionClient) -> None:
    folder = await client.create_folder("Refs")
    link = await client.create_link("https://www.example.org/page?x=1", title="Example",
                                    tags=["ref"], folder_id=folder.id)
    assert (link.domain, link.is_duplicate) == ("example.org", False)
    again = await client.create_link("https://www.example.org/page?x=1")
    assert again.is_duplicate and again.id == link.id
    listed = (await client.list_files(folder_id=folder.id)).files
    assert [(f.media_type, f.source_url) for f in listed] == [
        ("link", "https://www.example.org/page?x=1")]
    with pytest.raises(NotFound):
        await client.presigned_url(link.id)
    with pytest.raises(ValidationFailed):
        await client.create_link("ftp://example.org/x")
