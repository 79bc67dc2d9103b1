"""Downloads: the 302 to storage, Range, variants, and the key never leaving the API host."""

from __future__ import annotations

import hashlib
import io
import re

import httpx
import pytest
from PIL import Image

from aionfs.api import AionClient
from aionfs.api.errors import Forbidden, NotFound
from tests.conftest import EmulatorProcess
from tests.media import image_bytes, noise_jpeg


async def test_download_follows_redirect_without_the_key(
        client: AionClient, emulator: EmulatorProcess, tenant_key: str) -> None:
    data = noise_jpeg((900, 700))
    up = await client.upload_file(data, "noise.jpg")
    since = len(emulator.requests(tenant_key))
    got = await client.download_bytes(up.image_id)
    assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()
    log = emulator.requests(tenant_key)[since:]
    api = [e for e in log if e["kind"] == "api"]
    blob = [e for e in log if e["kind"] == "blob"]
    assert [e["status"] for e in api] == [302] and all(e["auth"] for e in api)
    assert [e["status"] for e in blob] == [200]
    assert not any(e["auth"] for e in blob), "the Authorization header reached storage"
    assert blob[0]["bytes"] == len(data)


async def test_storage_refuses_requests_carrying_a_key(client: AionClient,
                                                       tenant_key: str) -> None:
    up = await client.upload_file(image_bytes(), "a.jpg")
    url = (await client.presigned_url(up.image_id)).url
    async with httpx.AsyncClient() as raw:
        refused = await raw.get(url, headers={"Authorization": f"Bearer {tenant_key}"})
        fine = await raw.get(url)
    assert refused.status_code == 400 and b"Only one auth mechanism" in refused.content
    assert fine.status_code == 200


async def test_range_reads(client: AionClient, emulator: EmulatorProcess,
                           tenant_key: str) -> None:
    data = noise_jpeg((1000, 800), seed=3)
    up = await client.upload_file(data, "big.jpg")
    for start, end in [(0, 0), (10, 4095), (len(data) - 100, len(data) - 1), (12345, 99999)]:
        part = await client.download_bytes(up.image_id, start=start, end=end)
        assert part == data[start:end + 1]
    since = len(emulator.requests(tenant_key))
    url = await client.presigned_url(up.image_id)
    async with client.open_blob(url.url, start=len(data) - 1000) as dl:
        assert dl.status == 206 and dl.total_size == len(data) and dl.offset == len(data) - 1000
        tail = b"".join([c async for c in dl.chunks()])
    assert tail == data[-1000:]
    served = sum(e["bytes"] for e in emulator.requests(tenant_key)[since:] if e["kind"] == "blob")
    assert served == 1000  # only the range crossed the wire


async def test_variants_are_real_downscaled_images(client: AionClient) -> None:
    up = await client.upload_file(image_bytes((30, 120, 200), (1600, 1200)), "wide.png")
    expected = {"tiny_64": 64, "small_256": 256, "medium_750": 750, "large_1024": 1024}
    for variant, side in expected.items():
        img = Image.open(io.BytesIO(await client.download_bytes(up.image_id, variant=variant)))
        assert max(img.size) == side and img.size[0] > img.size[1]
    original = await client.download_bytes(up.image_id, variant="original")
    assert Image.open(io.BytesIO(original)).size == (1600, 1200)
    doc = await client.upload_file(b"plain words\n", "notes.txt")
    with pytest.raises(NotFound):
        await client.presigned_url(doc.image_id, "small_256")
    with pytest.raises(ValueError):
        await client.presigned_url(up.image_id, "huge_4096")


async def test_tampered_and_expired_urls_are_forbidden(client: AionClient) -> None:
    up = await client.upload_file(image_bytes(), "a.jpg")
    url = (await client.presigned_url(up.image_id)).url
    tampered = re.sub(r"sig=([0-9a-f])", lambda m: "sig=" + ("1" if m[1] != "1" else "2"), url)
    with pytest.raises(Forbidden):
        async with client.open_blob(tampered):
            pass
    expired = re.sub(r"expires=\d+", "expires=1000000000", url)
    with pytest.raises(Forbidden):
        async with client.open_blob(expired):
            pass
    other_key = re.sub(r"/storage/[0-9a-f]{64}", "/storage/" + "0" * 64, url)
    with pytest.raises(Forbidden):  # the signature covers the object key
        async with client.open_blob(other_key):
            pass


async def test_download_of_another_workspace_file_is_not_found(
        client: AionClient, emulator: EmulatorProcess) -> None:
    from tests.conftest import make_client

    up = await client.upload_file(image_bytes(), "mine.jpg")
    async with make_client(emulator, emulator.new_tenant()) as stranger:
        with pytest.raises(NotFound):
            await stranger.presigned_url(up.image_id)
        with pytest.raises(NotFound):
            await stranger.get_file(up.image_id)
        assert (await stranger.list_files()).total_count == 0
        assert (await stranger.check_duplicates(
            [hashlib.sha256(image_bytes()).hexdigest()])).duplicates == []
