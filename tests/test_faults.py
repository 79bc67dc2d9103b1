"""Under injected faults the client retries what is safe and never corrupts data."""

from __future__ import annotations

import hashlib

import pytest

from aionfs.api.errors import ServerError
from aionfs.api.retry import RetryPolicy
from tests.conftest import EmulatorProcess, make_client
from tests.media import image_bytes, noise_jpeg


async def test_reads_survive_5xx_resets_and_429_bursts(emulator: EmulatorProcess) -> None:
    key = emulator.new_tenant()
    async with make_client(emulator, key) as c:
        folder = await c.create_folder("F")
        ids = [(await c.upload_file(image_bytes((i, 2 * i, 3)), f"{i}.jpg")).image_id
               for i in range(12)]
        await c.move_files(ids, folder.id)
        emulator.set_faults(key, "500:0.2,reset:0.1,429:0.05,burst:2", seed=11)
        try:
            for _ in range(5):
                seen = [f.id async for f in c.iter_files(folder_id=folder.id, page_size=5)]
                assert sorted(seen) == sorted(ids)
                assert [f.id for f in await c.folder_tree()] == [folder.id]
                details = await c.get_file(ids[3])
                assert details.id == ids[3]
        finally:
            emulator.set_faults(key, "")
        assert c.stats.failures > 0  # faults did happen, and were absorbed
    statuses = {e["status"] for e in emulator.requests(key)}
    assert {500, 429, "reset"} & statuses


async def test_download_resumes_after_resets(emulator: EmulatorProcess) -> None:
    key = emulator.new_tenant()
    async with make_client(emulator, key) as c:
        data = noise_jpeg((1400, 1000), seed=5)
        up = await c.upload_file(data, "n.jpg")
        since = len(emulator.requests(key))
        emulator.set_faults(key, "reset:1,limit:2,blob-only:1")  # two transfers break off
        try:
            got = await c.download_bytes(up.image_id)
        finally:
            emulator.set_faults(key, "")
        assert hashlib.sha256(got).hexdigest() == hashlib.sha256(data).hexdigest()
        log = emulator.requests(key)[since:]
        blob = [e for e in log if e["kind"] == "blob"]
        assert [e["status"] for e in blob][-1] in (200, 206)
        assert any(e["range"] for e in blob)  # resumed where it broke off, not from 0
        assert sum(e["bytes"] for e in blob) < 2 * len(data)


async def test_non_idempotent_requests_are_not_resent_after_5xx(
        emulator: EmulatorProcess) -> None:
    key = emulator.new_tenant()
    async with make_client(emulator, key) as c:
        emulator.set_faults(key, "500:1,limit:1")
        try:
            with pytest.raises(ServerError):
                await c.create_folder("Once")
        finally:
            emulator.set_faults(key, "")
        creates = [e for e in emulator.requests(key) if e["method"] == "POST"]
        assert len(creates) == 1
        await c.create_folder("Once")  # the failed attempt left nothing behind


async def test_network_down_fails_promptly(emulator: EmulatorProcess) -> None:
    from aionfs.api.errors import NetworkError

    key = emulator.new_tenant()
    async with make_client(emulator, key, retry=RetryPolicy(max_attempts=3, base_delay=0.01,
                                                           max_delay=0.05)) as c:
        emulator.set_faults(key, "down:1")
        try:
            with pytest.raises(NetworkError):
                await c.folder_tree()
        finally:
            emulator.set_faults(key, "")
        assert c.stats.requests == 3
        assert await c.folder_tree() == []


async def test_the_client_says_when_the_api_answers_again(emulator: EmulatorProcess) -> None:
    """A mount back from sleep or a network loss catches up at once, not after its
    backoff: the client tells it when the API answers again."""
    key = emulator.new_tenant()
    back: list[bool] = []
    async with make_client(emulator, key, retry=RetryPolicy(max_attempts=1)) as c:
        c.on_reachable.append(lambda: back.append(True))
        await c.folder_tree()
        assert c.stats.reachable is True and back == []  # first contact is no return
        emulator.set_faults(key, "500:1.0")
        with pytest.raises(ServerError):
            await c.folder_tree()
        assert c.stats.reachable is False
        emulator.set_faults(key, "")
        await c.folder_tree()
    assert c.stats.reachable is True and back == [True]
