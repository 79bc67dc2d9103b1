"""The emulator over raw HTTP: bad input gets the spec's errors, in the spec's shapes."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.conftest import CONTRACT, EmulatorProcess

UUID0 = "00000000-0000-4000-8000-000000000000"


@pytest.fixture
async def raw(emulator: EmulatorProcess, tenant_key: str) -> AsyncIterator[httpx.AsyncClient]:
    async def check(response: httpx.Response) -> None:
        await response.aread()
        CONTRACT.check_response(response.request.method, str(response.request.url),
                                response.status_code, response.headers.get("content-type", ""),
                                response.content)

    async with httpx.AsyncClient(base_url=emulator.base_url + "/",
                                 headers={"Authorization": f"Bearer {tenant_key}"},
                                 event_hooks={"response": [check]}) as c:
        yield c


def loc(resp: httpx.Response) -> list[object]:
    assert resp.status_code == 422, resp.text
    return resp.json()["detail"][0]["loc"]  # type: ignore[no-any-return]


@pytest.mark.parametrize(("params", "where"), [
    ({"limit": 0}, ["query", "limit"]), ({"limit": 101}, ["query", "limit"]),
    ({"limit": "ten"}, ["query", "limit"]), ({"offset": -1}, ["query", "offset"]),
    ({"sort_by": "colour"}, ["query", "sort_by"]), ({"sort_order": "up"}, ["query", "sort_order"]),
    ({"folder_id": "not-a-uuid"}, ["query", "folder_id"]),
    ({"date_from": "yesterday"}, ["query", "date_from"]),
    ({"has_description": "maybe"}, ["query", "has_description"]),
    ({"search_mode": "fuzzy", "search": "x"}, ["query", "search_mode"]),
])
async def test_list_parameters_are_validated(raw: httpx.AsyncClient, params: dict[str, object],
                                             where: list[str]) -> None:
    assert loc(await raw.get("user-files", params=params)) == where


async def test_too_many_ids(raw: httpx.AsyncClient) -> None:
    ids = [UUID0] * 501
    assert loc(await raw.get("user-files", params={"ids": ids})) == ["query", "ids"]


async def test_malformed_uuids(raw: httpx.AsyncClient) -> None:
    assert loc(await raw.patch("user-files/xyz", json={"title": "t"})) == ["path", "image_id"]
    assert loc(await raw.delete("folders/123")) == ["path", "folder_id"]
    assert loc(await raw.get("user-files/xyz/download")) == ["path", "image_id"]
    assert loc(await raw.post("folders/move-files", json={"file_ids": ["nope"]})) == [
        "body", "file_ids", 0]
    # details accept a prefix, so a bad id there is simply not found (flat shape)
    missing = await raw.get("user-files/zzzzzzzz")
    assert missing.status_code == 404 and missing.json()["error"] == "FILE_NOT_FOUND"


async def test_bodies_are_validated(raw: httpx.AsyncClient) -> None:
    assert loc(await raw.post("folders", json={})) == ["body", "name"]
    assert loc(await raw.post("folders", json={"name": ""})) == ["body", "name"]
    assert loc(await raw.post("folders", json={"name": "x" * 256})) == ["body", "name"]
    assert loc(await raw.post("folders", content=b"{not json",
                              headers={"content-type": "application/json"})) == ["body"]
    assert loc(await raw.post("folders/move-files", json={"file_ids": []})) == [
        "body", "file_ids"]
    assert loc(await raw.post("folders/move-files", json={"file_ids": [UUID0] * 101})) == [
        "body", "file_ids"]
    assert loc(await raw.post("user-files/batch-delete", json={"file_ids": []})) == [
        "body", "file_ids"]
    assert loc(await raw.post("uploads/check-duplicates", json={"hashes": ["abc"]})) == [
        "body", "hashes", 0]
    assert loc(await raw.post("uploads/check-duplicates",
                              json={"hashes": ["a" * 64] * 251})) == ["body", "hashes"]
    assert loc(await raw.get("uploads/quota-check")) == ["query", "file_count"]
    assert loc(await raw.post("colors/search", json={"hex_code": "#zzz"})) == [
        "body", "hex_code"]
    assert loc(await raw.post("colors/search", json={"color_family": "warm",
                                                     "limit": 201})) == ["body", "limit"]
    assert loc(await raw.post("agents/search/images", json={"query": ""})) == ["body", "query"]
    assert loc(await raw.post("agents/search/images", json={"query": "q" * 2001})) == [
        "body", "query"]
    assert loc(await raw.delete(f"folders/{UUID0}", params={"mode": "shred"})) == [
        "query", "mode"]
    assert loc(await raw.post("user-files/upload/stream", data={"title": "no file"})) == [
        "body", "file"]


async def test_missing_or_wrong_key_is_401_envelope(emulator: EmulatorProcess) -> None:
    async with httpx.AsyncClient(base_url=emulator.base_url + "/") as anon:
        for headers in ({}, {"Authorization": "Bearer aion_" + "0" * 32},
                        {"Authorization": "Basic Zm9vOmJhcg=="}):
            r = await anon.get("folders", headers=headers)
            assert r.status_code == 401
            body = r.json()
            assert body["error"]["code"] == "INVALID_API_KEY" and body["request_id"]
            assert r.headers["x-request-id"] == body["request_id"]


async def test_unknown_endpoint_and_method(emulator: EmulatorProcess, tenant_key: str) -> None:
    auth = {"Authorization": f"Bearer {tenant_key}"}
    async with httpx.AsyncClient(base_url=emulator.base_url + "/", headers=auth) as c:
        r = await c.get("no-such-endpoint")
        assert r.status_code == 404 and r.json()["error"]["code"] == "NOT_FOUND"
        r = await c.put("folders")
        assert r.status_code == 405 and r.json()["error"]["code"] == "METHOD_NOT_ALLOWED"
