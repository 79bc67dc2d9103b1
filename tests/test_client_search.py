"""Colors, semantic image search and document text through the client."""

from __future__ import annotations

import pytest

from aionfs.api import AionClient
from aionfs.api.errors import NotFound, ValidationFailed
from tests.media import image_bytes

WALNUT = (196, 168, 124)
NAVY = (0, 0, 128)


async def test_families(client: AionClient) -> None:
    names = [f.name for f in await client.color_families()]
    assert names == ["neutral", "earth_tone", "warm", "cool", "metallic", "pastel", "vibrant"]


async def test_image_colors_come_from_pixels(client: AionClient) -> None:
    up = await client.upload_file(image_bytes(WALNUT, (90, 60), "PNG", accent=NAVY), "table.png")
    colors = await client.image_colors(up.image_id)
    assert colors.status == "completed" and colors.color_analysis is not None
    dom = colors.color_analysis.dominant_colors
    assert [c.rank for c in dom] == list(range(1, len(dom) + 1))
    first, second = dom[0], dom[1]
    assert first.hex == "#C4A87C" and first.name == "Walnut" and first.family == "earth_tone"
    assert 60 <= first.percentage <= 70 and 30 <= second.percentage <= 40
    assert second.name == "Navy" and second.rgb is not None and second.rgb.b == 128
    assert first.lab is not None and abs(first.lab.l - 70.3) < 1
    doc = await client.upload_file(b"text\n", "a.txt")
    assert (await client.image_colors(doc.image_id)).status == "failed"


async def test_color_search_by_hex_name_and_family(client: AionClient) -> None:
    walnut = (await client.upload_file(image_bytes(WALNUT), "w.jpg")).image_id
    navy = (await client.upload_file(image_bytes(NAVY, fmt="PNG"), "n.png")).image_id
    both = (await client.upload_file(image_bytes(WALNUT, accent=NAVY, fmt="PNG"),
                                     "b.png")).image_id

    async def hits(**kw: object) -> list[str]:
        return [r.image_id for r in (await client.color_search(**kw)).results]

    by_hex = await client.color_search(hex_code="#C4A87C")
    assert {r.image_id for r in by_hex.results} == {walnut, both}
    assert by_hex.results[0].match_score >= by_hex.results[-1].match_score
    assert all(0 <= r.match_score <= 1 for r in by_hex.results)
    assert set(await hits(hex_code="c4a87c")) == {walnut, both}  # without '#'
    assert set(await hits(hex_code="#00008B", delta_e_threshold=20)) == {navy, both}
    assert await hits(hex_code="#00008B", delta_e_threshold=1) == []
    assert set(await hits(color_name="navy")) == {navy, both}
    assert set(await hits(color_family="earth_tone")) == {walnut, both}
    assert await hits(color_family="earth_tone", min_percentage=80) == [walnut]
    page = await client.color_search(hex_code="#C4A87C", limit=1, offset=1)
    assert page.total_count == 2 and len(page.results) == 1
    with pytest.raises(ValidationFailed):
        await client.color_search(color_family="plaid")
    with pytest.raises(ValidationFailed):
        await client.color_search(color_name="not a color")
    with pytest.raises(ValueError):
        await client.color_search()


async def test_semantic_search_is_ranked_and_deterministic(client: AionClient) -> None:
    pole = (await client.upload_file(image_bytes((120, 90, 60)), "rusty_utility_pole.jpg",
                                     title="Utility pole", tags=["rust"])).image_id
    crack = (await client.upload_file(image_bytes((150, 150, 150)), "cracked_concrete.jpg",
                                      tags=["concrete"])).image_id
    await client.upload_file(b"utility pole inventory\n", "poles.txt")  # not an image
    res = await client.search_images("rusty utility poles")
    assert res.success and res.result_ids[0] == pole
    assert crack not in res.result_ids
    assert all(0 <= r.score <= 1 for r in res.results) and res.results[0].score == 1.0
    again = await client.search_images("rusty utility poles")
    assert [(r.image_id, r.score) for r in again.results] == [
        (r.image_id, r.score) for r in res.results]
    concrete = await client.search_images("concrete cracks")
    assert concrete.result_ids == [crack]
    assert (await client.search_images("zebra")).count == 0
    folder = await client.create_folder("Poles")
    await client.move_files([pole], folder.id)
    scoped = await client.search_images("pole", folder_id=folder.id)
    assert scoped.result_ids == [pole] and scoped.results[0].folder_id == folder.id


async def test_document_text(client: AionClient) -> None:
    doc = await client.upload_file("# Heading\n\nBody with ünïcode.\n".encode(), "n.md")
    text = await client.document_text(doc.image_id)
    assert text.text == "# Heading\n\nBody with ünïcode.\n" and text.filename == "n.md"
    img = await client.upload_file(image_bytes(), "i.jpg")
    with pytest.raises(NotFound):
        await client.document_text(img.image_id)
