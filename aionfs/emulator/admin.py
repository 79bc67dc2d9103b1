"""Routes outside the API: the storage host and the emulator's admin interface.

Storage (`/storage/<key>`) plays S3 behind presigned URLs: no API key, HMAC
signature and expiry checked (403 otherwise), Range → 206, and a request
carrying an Authorization header is refused with 400 as S3 does.

Admin (`/_emulator/...`, for tests and benchmarks; loopback test server only):

    POST /_emulator/tenants          {"plan", "rpm"?, "quota"?, "processing_delay"?}
                                     → {"api_key", "tenant_id"}: a new workspace
    PATCH /_emulator/tenant          (Bearer key) change that workspace's plan, rpm,
                                     quota, uploads_used or processing_delay
    PUT  /_emulator/tenant/faults    (Bearer key) {"spec", "seed"?}: faults for one workspace
    PATCH /_emulator/tenant/urls     (Bearer key) {"lifetime"?, "list_full_url"?}: how that
                                     workspace's URLs are presigned (blobs.UrlPolicy)
    POST /_emulator/tenant/bulk      (Bearer key) {"files", "folders"}: synthetic rows
    GET  /_emulator/requests?since=N (Bearer key) the request log of that workspace
                                     (API and storage requests), from entry N
    GET  /_emulator/health           liveness
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, BinaryIO

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from .app import Emulator, bearer_key
from .faults import Faults, FaultSpecError
from .responses import json_response


class _LocalFile:
    """A blob file read in the event loop: a local file in the page cache reads a
    1 MiB piece in well under a millisecond, while anyio's worker thread hop per
    stat, open, seek and read made every answer cost about 2 ms before its first
    byte, a latency no storage host on loopback has (first reads are benchmarked)."""

    def __init__(self, f: BinaryIO) -> None:
        self._f = f

    async def seek(self, pos: int) -> None:
        self._f.seek(pos)

    async def read(self, n: int) -> bytes:
        return self._f.read(n)


class _BlobResponse(FileResponse):
    chunk_size = 1024 * 1024  # fewer, larger writes: storage throughput is benchmarked

    @asynccontextmanager
    async def _open_file(self) -> AsyncIterator[_LocalFile]:  # type: ignore[override]
        with open(self.path, "rb") as f:  # noqa: ASYNC230 (the point: see _LocalFile)
            yield _LocalFile(f)


def _s3_error(status: int, code: str, message: str) -> Response:
    body = (f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code>'
            f"<Message>{message}</Message></Error>")
    return Response(body, status_code=status, media_type="application/xml")


async def storage(request: Request) -> Response:
    emu: Emulator = request.app.state.emulator
    key = request.path_params["key"]
    if "authorization" in request.headers:
        return _s3_error(400, "InvalidArgument",
                         "Only one auth mechanism allowed; only the X-Amz-Algorithm query "
                         "parameter, Signature query string parameter or the Authorization "
                         "header should be specified")
    qp = request.query_params
    tag = qp.get("t", "")
    ctype = qp.get("ct")
    request.scope["state"]["tenant_tag"] = tag  # refused requests are the workspace's too
    problem = emu.blobs.verify(key, tag, qp.get("expires"), qp.get("sig"), ctype)
    if problem:
        return _s3_error(403, "AccessDenied", problem)
    try:
        path = emu.blobs.path(key)
        found = os.stat(path)
    except (KeyError, FileNotFoundError):
        return _s3_error(404, "NoSuchKey", "The specified key does not exist.")
    return _BlobResponse(path, media_type=ctype or "application/octet-stream",
                         headers={"Cache-Control": "private, max-age=3600"}, stat_result=found)


def _tenant_or_401(emu: Emulator, request: Request) -> Any:
    """The workspace of the request's Bearer key, or None."""
    key = bearer_key(request)
    return emu.state.tenant_by_key(key) if key else None


def _for_tenant(fn: Callable[[Emulator, Request, Any], Awaitable[Response]]
                ) -> Callable[[Request], Awaitable[Response]]:
    """Admin routes that act on the workspace of the caller's Bearer key."""

    async def endpoint(request: Request) -> Response:
        emu: Emulator = request.app.state.emulator
        tenant = _tenant_or_401(emu, request)
        if tenant is None:
            return json_response({"error": "unknown key"}, 401)
        try:
            return await fn(emu, request, tenant)
        except (ValueError, FaultSpecError) as exc:
            return json_response({"error": str(exc)}, 400)

    return endpoint


async def create_tenant(request: Request) -> Response:
    emu: Emulator = request.app.state.emulator
    doc = await request.json() if await request.body() else {}
    try:
        key, tenant = emu.state.create_tenant(
            doc.get("plan", "free"), rpm=doc.get("rpm"), quota=doc.get("quota"),
            processing_delay=float(doc.get("processing_delay", 0.0)))
    except ValueError as exc:
        return json_response({"error": str(exc)}, 400)
    return json_response({"api_key": key, "tenant_id": tenant.id}, 201)


@_for_tenant
async def patch_tenant(emu: Emulator, request: Request, tenant: Any) -> Response:
    emu.state.set_tenant(tenant, **(await request.json()))
    return json_response({"ok": True})


@_for_tenant
async def put_faults(emu: Emulator, request: Request, tenant: Any) -> Response:
    doc = await request.json()
    emu.tenant_faults[tenant.id] = Faults.parse(doc.get("spec", ""), seed=int(doc.get("seed", 0)))
    return json_response({"ok": True})


@_for_tenant
async def patch_urls(emu: Emulator, request: Request, tenant: Any) -> Response:
    emu.blobs.set_policy(tenant.id, **(await request.json()))
    return json_response({"ok": True})


@_for_tenant
async def bulk(emu: Emulator, request: Request, tenant: Any) -> Response:
    """Seed many synthetic files (sharing one small JPEG) for benchmarks."""
    import io

    from PIL import Image

    doc = await request.json()
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (120, 130, 140)).save(buf, "JPEG")
    data = buf.getvalue()
    key = emu.blobs.put(data)
    emu.state.bulk_insert(tenant, int(doc.get("files", 0)), int(doc.get("folders", 0)), key,
                          len(data))
    return json_response({"ok": True})


@_for_tenant
async def requests_log(emu: Emulator, request: Request, tenant: Any) -> Response:
    since = int(request.query_params.get("since", "0"))
    start = max(0, since - emu.log_offset)
    entries = list(emu.request_log)[start:]
    mine = [e for e in entries if e.get("tenant") in (tenant.id, tenant.id[:8])]
    return json_response({"next": emu.log_offset + len(emu.request_log), "entries": mine})


async def health(request: Request) -> Response:
    return json_response({"ok": True})


ROUTES = [
    Route("/storage/{key}", storage, methods=["GET", "HEAD"]),
    Route("/_emulator/tenants", create_tenant, methods=["POST"]),
    Route("/_emulator/tenant", patch_tenant, methods=["PATCH"]),
    Route("/_emulator/tenant/faults", put_faults, methods=["PUT"]),
    Route("/_emulator/tenant/urls", patch_urls, methods=["PATCH"]),
    Route("/_emulator/requests", requests_log, methods=["GET"]),
    Route("/_emulator/tenant/bulk", bulk, methods=["POST"]),
    Route("/_emulator/health", health, methods=["GET"]),
]
