"""Assembly of the emulator: shared context, the per-request pipeline, the ASGI app.

Every API request goes: fault injection → authentication (401 envelope
`INVALID_API_KEY`) → per-key rate limit (429 + Retry-After) → completion of
due processing → the handler. Handlers raise `ApiFailure` or `Invalid`,
which are rendered in the endpoint's error shape. Storage (presigned) and
admin routes skip authentication and rate limits.
"""

from __future__ import annotations

import json
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

import trio
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from .blobs import BlobStore
from .faults import EmulatedFault, Faults
from .limits import WindowLimiter
from .pages import Pages
from .responses import ApiFailure, Invalid, json_response, request_id
from .state import State, Tenant

log = logging.getLogger(__name__)

API_PREFIX = "/api/v2"

Handler = Callable[["Emulator", Request, Tenant], Awaitable[Response]]


@dataclass
class Emulator:
    """Everything the handlers share."""

    data_dir: Path
    faults: Faults = field(default_factory=Faults)
    semantic_latency: float = 0.0
    state: State = field(init=False)
    pages: Pages = field(init=False)
    blobs: BlobStore = field(init=False)
    limiter: WindowLimiter = field(default_factory=WindowLimiter)
    tenant_faults: dict[str, Faults] = field(default_factory=dict)
    request_log: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=200_000))
    log_offset: int = 0

    def __post_init__(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.state = State(self.data_dir / "emulator.sqlite3")
        self.pages = Pages(self.state.db)
        self.blobs = BlobStore(self.data_dir / "blobs")

    def record(self, entry: dict[str, Any]) -> None:
        if len(self.request_log) == self.request_log.maxlen:
            self.log_offset += 1
        self.request_log.append(entry)

    def faults_for(self, api_key: str | None, blob_tag: str | None) -> Faults:
        """The faults of the workspace a request belongs to, else the global ones.

        API requests are attributed by their key, storage requests by the
        tenant tag their presigned URL carries.
        """
        if self.tenant_faults:
            if api_key is not None:
                tenant = self.state.tenant_by_key(api_key)
                if tenant is not None and tenant.id in self.tenant_faults:
                    return self.tenant_faults[tenant.id]
            elif blob_tag:
                for tid, faults in self.tenant_faults.items():
                    if tid.startswith(blob_tag):
                        return faults
        return self.faults


def bearer_key(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    scheme, _, token = auth.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def api(handler: Handler, *, flat_errors: bool = False) -> Callable[[Request], Awaitable[Response]]:
    """Wrap a handler with authentication, rate limiting and error rendering."""

    async def endpoint(request: Request) -> Response:
        emu: Emulator = request.app.state.emulator
        key = bearer_key(request)
        tenant = emu.state.tenant_by_key(key) if key else None
        if tenant is None:
            return ApiFailure(401, "INVALID_API_KEY", "API key is invalid or missing").render(
                request)
        request.scope["state"]["tenant"] = tenant.id
        wait = emu.limiter.check(tenant.id, tenant.rate_per_minute)
        if wait is not None:
            return ApiFailure(429, "RATE_LIMIT_ERROR",
                              f"rate limit of {tenant.rate_per_minute} requests per minute "
                              "exceeded", headers={"Retry-After": str(int(wait))}
                              ).render(request)
        emu.state.complete_due(tenant)
        try:
            return await handler(emu, request, tenant)
        except Invalid as exc:
            return exc.render()
        except ApiFailure as exc:
            if flat_errors and exc.status not in (401, 429):
                exc.flat = True
            return exc.render(request)

    return endpoint


def base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


class FaultAndLogMiddleware:
    """Outermost layer: request log (bytes out, auth header seen) and fault injection."""

    def __init__(self, app: Any, emu: Emulator) -> None:
        self.app, self.emu = app, emu

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        scope.setdefault("state", {})
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        kind = ("admin" if path.startswith("/_emulator") else
                "blob" if path.startswith("/storage/") else "api")
        entry: dict[str, Any] = {
            "t": time.time(), "method": scope["method"], "path": path,
            "query": scope.get("query_string", b"").decode("latin-1"), "kind": kind,
            "auth": "authorization" in headers, "range": headers.get("range"),
            "status": None, "bytes": 0,
        }
        self.emu.record(entry)
        auth = headers.get("authorization", "")
        key = auth[7:].strip() if auth.lower().startswith("bearer ") else None
        tag = parse_qs(entry["query"]).get("t", [None])[0] if kind == "blob" else None
        faults = self.emu.faults_for(key, tag) if kind != "admin" else None
        listing = scope["method"] == "GET" and path == API_PREFIX + "/user-files"
        action = faults.decide(kind == "blob", listing) if faults and faults.active else None
        if faults and faults.latency and kind != "admin":
            await trio.sleep(faults.latency)
        if action == "down":
            # Headers promising a body that never comes: the client sees the
            # connection break, as when the network drops.
            entry["status"] = "reset"
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-length", b"1000")]})
            raise EmulatedFault("emulated network down")
        if action in ("429", "5xx"):
            status = 429 if action == "429" else faults.pick_5xx()  # type: ignore[union-attr]
            code = "RATE_LIMIT_ERROR" if status == 429 else "INTERNAL_ERROR"
            req = Request(scope)
            # The user-files endpoints answer 5xx in their flat shape.
            flat = status != 429 and path.startswith(API_PREFIX + "/user-files") \
                and "/upload/" not in path
            resp = ApiFailure(status, code, "injected fault", flat=flat,
                              headers={"Retry-After": "1"} if status == 429 else None
                              ).render(req)
            entry["status"] = status
            tenant = self.emu.state.tenant_by_key(key) if key else None
            entry["tenant"] = tenant.id if tenant else None
            await resp(scope, receive, send)
            return
        if faults and faults.nonconforming and scope["method"] == "GET" \
                and path == API_PREFIX + "/folders":
            entry["status"] = 200
            wrong = json_response({"folders": [{"id": 7, "name": None}]})
            await wrong(scope, receive, send)
            return
        if faults and listing and faults.drift:
            # (the query as the route reads it: offset one less, the rest unchanged)
            query = parse_qs(entry["query"], keep_blank_values=True)
            if int(query.get("offset", ["0"])[0] or 0) > 0:
                query["offset"] = [str(int(query["offset"][0]) - 1)]
                scope = {**scope, "query_string": urlencode(query, doseq=True).encode()}
        if faults and listing and faults.short:
            await self._short_page(scope, receive, send, entry)
            return
        if action == "empty":
            entry["status"] = "empty"
            tenant = self.emu.state.tenant_by_key(key) if key else None
            entry["tenant"] = tenant.id if tenant else None
            empty = json_response({"files": [], "total_count": 0, "has_more": False})
            await empty(scope, receive, send)
            return
        reset = action == "reset"
        stall = faults.stall if faults and kind != "admin" and not (
            faults.api_only if kind == "blob" else faults.blob_only) else 0.0
        state = {"sent": 0, "limit": None}

        async def counting_send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                entry["status"] = message["status"]
                if reset or stall:
                    length = dict(message.get("headers", [])).get(b"content-length")
                    state["limit"] = max(0, int(length) // 2) if length else 0
                scope["state"].setdefault("request_id", None)
                rid = scope["state"].get("request_id")
                if rid:
                    message.setdefault("headers", []).append((b"x-request-id", rid.encode()))
            elif message["type"] == "http.response.body":
                body = message.get("body", b"")
                if reset and state["limit"] is not None:
                    room = state["limit"] - state["sent"]
                    if len(body) >= room:
                        if room > 0:
                            await send({"type": "http.response.body", "body": body[:room],
                                        "more_body": True})
                        entry["bytes"] += max(room, 0)
                        entry["status"] = "reset"
                        raise EmulatedFault("emulated reset mid-body")
                if stall and state["limit"] is not None:
                    room = state["limit"] - state["sent"]
                    if 0 <= room < len(body):  # the halfway point is in this piece
                        await send({"type": "http.response.body", "body": body[:room],
                                    "more_body": True})
                        await trio.sleep(stall)
                        message = {**message, "body": body[room:]}
                state["sent"] += len(body)
                entry["bytes"] += len(body)
            await send(message)

        try:
            await self.app(scope, receive, counting_send)
        finally:
            st = scope["state"]
            entry["tenant"] = st.get("tenant") or st.get("tenant_tag")

    async def _short_page(self, scope: dict[str, Any], receive: Any, send: Any,
                          entry: dict[str, Any]) -> None:
        """A listing page without its last item, its total and has_more as they were."""
        parts: list[bytes] = []
        start: dict[str, Any] = {}

        async def keep(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            else:
                parts.append(message.get("body", b""))

        try:
            await self.app(scope, receive, keep)
        finally:
            st = scope["state"]
            entry["tenant"] = st.get("tenant") or st.get("tenant_tag")
        body = b"".join(parts)
        doc = json.loads(body) if start.get("status") == 200 else None
        if isinstance(doc, dict) and doc.get("files"):
            doc["files"] = doc["files"][:-1]
            body = json.dumps(doc).encode()
        headers = [(k, v) for k, v in start.get("headers", []) if k != b"content-length"]
        entry["status"] = start.get("status")
        await send({**start, "headers": [*headers,
                                         (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


def build_app(emu: Emulator) -> Any:
    from . import admin, routes_files, routes_folders, routes_search, routes_uploads

    routes: list[Route] = []
    for module in (routes_folders, routes_uploads, routes_files, routes_search):
        for method, path, handler, flat in module.ROUTES:
            routes.append(Route(API_PREFIX + path, api(handler, flat_errors=flat),
                                methods=[method]))
    routes += admin.ROUTES

    async def not_found(request: Request, exc: Exception) -> Response:
        return ApiFailure(404, "NOT_FOUND", "no such endpoint").render(request)

    async def not_allowed(request: Request, exc: Exception) -> Response:
        return ApiFailure(405, "METHOD_NOT_ALLOWED", "method not allowed").render(request)

    async def server_error(request: Request, exc: Exception) -> Response:
        if not isinstance(exc, EmulatedFault | ClientDisconnect):  # (the client left)
            log.error("handler failed: %s %s", request.method, request.url.path, exc_info=exc)
        return ApiFailure(500, "INTERNAL_ERROR", "internal error").render(request)

    app = Starlette(routes=routes, exception_handlers={404: not_found, 405: not_allowed,
                                                       500: server_error})
    app.state.emulator = emu

    async def ensure_rid(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            request_id(Request(scope))
        await app(scope, receive, send)

    return FaultAndLogMiddleware(ensure_rid, emu)
