"""Uploads: stream, stream-batch (with and without immediate results), duplicates, quota."""

from __future__ import annotations

import hashlib
import io
import zipfile

import pytest

from aionfs.api import AionClient, UploadItem
from aionfs.api.errors import AmbiguousUpload, PayloadTooLarge, QuotaExceeded, ValidationFailed
from aionfs.emulator.demo import make_docx, make_pdf
from tests.conftest import EmulatorProcess, make_client
from tests.media import image_bytes


async def test_stream_upload_of_each_accepted_type(client: AionClient) -> None:
    files = {
        "photo.jpg": image_bytes(fmt="JPEG"), "shot.png": image_bytes(fmt="PNG"),
        "anim.gif": image_bytes(fmt="GIF"), "web.webp": image_bytes(fmt="WEBP"),
        "report.pdf": make_pdf(["Quarterly report", "All poles inspected."]),
        "letter.docx": make_docx(["Dear team,", "The bridge passed."]),
        "notes.txt": b"plain text notes\n", "readme.md": b"# Title\n\nSome *markdown*.\n",
    }
    media = {}
    for name, data in files.items():
        res = await client.upload_file(data, name, title=name.upper(), tags=["t1", "t2"])
        assert not res.skipped and res.status == "completed"
        media[name] = res.media_type
        details = await client.get_file(res.image_id)
        assert (details.title, details.tags) == (name.upper(), ["t1", "t2"])
        assert details.hash == hashlib.sha256(data).hexdigest()
    assert {k for k, v in media.items() if v == "document"} == {
        "report.pdf", "letter.docx", "notes.txt", "readme.md"}
    pdf_id = [f.id async for f in client.iter_files(search="quarterly")][0]
    text = await client.document_text(pdf_id)
    assert "All poles inspected." in text.text and text.page_count == 1
    docx = [f async for f in client.iter_files(search="bridge passed")]
    assert [f.filename for f in docx] == ["letter.docx"]


async def test_unsupported_and_oversize_uploads_are_refused(
        client: AionClient, emulator: EmulatorProcess, tenant_key: str) -> None:
    with pytest.raises(ValidationFailed) as info:
        await client.upload_file(b"\x7fELF\x02\x01\x01" + b"\0" * 100, "tool.bin")
    assert info.value.status == 422 and "accepted" in str(info.value)
    fake_zip = io.BytesIO()
    with zipfile.ZipFile(fake_zip, "w") as z:
        z.writestr("hello.txt", "not a docx")
    with pytest.raises(ValidationFailed):
        await client.upload_file(fake_zip.getvalue(), "archive.zip")
    with pytest.raises(ValidationFailed):
        await client.upload_file(b"\xff\xfe\xfa invalid utf-8", "bad.txt")
    with pytest.raises(PayloadTooLarge) as big:
        await client.upload_file(b"\0" * (100 * 1024 * 1024 + 1), "huge.txt")
    assert big.value.status == 413
    assert (await client.list_files()).total_count == 0


async def test_batch_upload_small_has_immediate_results(client: AionClient) -> None:
    items = [UploadItem(f"b{i}.png", image_bytes((i * 50, 0, 0), fmt="PNG"), "image/png")
             for i in range(3)]
    items.append(UploadItem("bad.exe", b"MZ\x90\x00 not accepted", "application/octet-stream"))
    batch, results = await client.upload_batch(items, tags=["batch"])
    assert (batch.total_files, batch.accepted_files, batch.rejected_files) == (4, 3, 1)
    assert batch.rejections and batch.rejections[0].filename == "bad.exe"
    assert [r.filename for r in results] == ["b0.png", "b1.png", "b2.png"]
    listed = {f.id: f for f in (await client.list_files(tags=["batch"])).files}
    assert set(listed) == {r.image_id for r in results}


async def test_batch_upload_large_reads_the_session(client: AionClient) -> None:
    items = [UploadItem(f"s{i}.jpg", image_bytes((0, i * 20, 0)), "image/jpeg")
             for i in range(8)]
    batch, results = await client.upload_batch(items)
    assert batch.immediate_results is None  # > 5 files: results come from the session
    assert [r.filename for r in results] == [f"s{i}.jpg" for i in range(8)]
    assert all(r.status == "completed" and r.image_id for r in results)


async def test_batch_limit_of_the_plan(emulator: EmulatorProcess) -> None:
    key = emulator.new_tenant(plan="free", rpm=0)
    async with make_client(emulator, key, plan="free") as free:
        items = [UploadItem(f"{i}.png", image_bytes((i, 0, 0), fmt="PNG")) for i in range(11)]
        with pytest.raises(PayloadTooLarge):
            await free.upload_batch(items)
        batch, _ = await free.upload_batch(items[:10])
        assert batch.accepted_files == 10


async def test_duplicates_check_and_skip(client: AionClient) -> None:
    data = image_bytes((5, 6, 7))
    sha = hashlib.sha256(data).hexdigest()
    other = hashlib.sha256(b"never uploaded").hexdigest()
    assert (await client.check_duplicates([sha])).unique == [sha]
    first = await client.upload_file(data, "one.jpg")
    dup = await client.check_duplicates([sha, other])
    assert (dup.duplicates, dup.unique) == ([sha], [other])
    skipped = await client.upload_file(data, "again.jpg", skip_duplicates=True)
    assert skipped.skipped and skipped.skipped_existing_image_id == first.image_id
    copy = await client.upload_file(data, "copy.jpg")  # without skip: a second file
    assert copy.image_id != first.image_id
    assert (await client.list_files()).total_count == 2
    many = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(600)]
    res = await client.check_duplicates(many)  # sent as 250 + 250 + 100
    assert len(res.unique) == 600


async def test_quota(emulator: EmulatorProcess) -> None:
    key = emulator.new_tenant(plan="free", rpm=0, quota=2)
    async with make_client(emulator, key, plan="free") as c:
        q = await c.quota_check(1)
        assert (q.can_proceed, q.available, q.monthly_limit, q.max_batch_size) == (
            True, 2, 2, 10)
        await c.upload_file(image_bytes((1, 1, 1)), "1.jpg")
        await c.upload_file(image_bytes((2, 2, 2)), "2.jpg")
        assert not (await c.quota_check(1)).can_proceed
        with pytest.raises(QuotaExceeded) as info:
            await c.upload_file(image_bytes((3, 3, 3)), "3.jpg")
        assert info.value.status == 402 and info.value.code == "USAGE_LIMIT_EXCEEDED"


async def test_upload_that_breaks_off_after_landing_is_not_stored_twice(
        emulator: EmulatorProcess) -> None:
    key = emulator.new_tenant()
    async with make_client(emulator, key) as c:
        data = image_bytes((90, 91, 92))
        emulator.set_faults(key, "reset:1,limit:1")  # the answer never arrives whole
        try:
            with pytest.raises(AmbiguousUpload):
                # Landed, but the client cannot prove it was this upload: it says so.
                await c.upload_file(data, "x.jpg")
        finally:
            emulator.set_faults(key, "")
        assert (await c.list_files()).total_count == 1

        # When the caller knows the content was new, the re-send learns the id.
        data2 = image_bytes((93, 94, 95))
        emulator.set_faults(key, "reset:1,limit:1")
        try:
            res = await c.upload_file(data2, "y.jpg", known_new=True)
        finally:
            emulator.set_faults(key, "")
        assert res.skipped and res.skipped_existing_image_id == res.image_id
        assert (await c.list_files()).total_count == 2
