"""`aionfs doctor --api`: the service's answers held to the vendored spec, live.

Each operation aionfs relies on is called once with safe arguments, through
the same client a mount uses, and every exchange is checked by the
contract the tests use (`api/contract.py`): the answer's status must be
declared and its JSON must match the declared schema (or a documented error
shape). A table says, per operation, the status, the time, and "conforms" or
the first difference. Read-only, and at most `BUDGET` requests (fewer on a
plan whose minute holds fewer: the rest are listed as skipped, never sent
into a 429); `--write-test FOLDER` adds an upload of one small image into
that folder, its move there, a read, a rename and its deletion.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx

from .api import AionClient, ApiSettings, Priority
from .api.contract import Contract, ContractViolation
from .api.errors import ApiError
from .api.hooks import ExchangeHooks

#: requests the read-only probe may spend
BUDGET = 15


@dataclass
class Line:
    operation: str
    status: str
    ms: float | None
    result: str

    @property
    def ok(self) -> bool:
        return self.result == "conforms" or self.result.startswith("skipped")


class _Checker(ExchangeHooks):
    """httpx hooks: each answer checked against the spec, kept for the table."""

    def __init__(self) -> None:
        super().__init__()
        self.contract = Contract()
        self.lines: list[Line] = []

    def exchange(self, response: httpx.Response, ms: float | None) -> None:
        request = response.request
        try:
            template, _ = self.contract.operation(request.method, str(request.url))
        except ContractViolation:  # (storage URLs are not operations of the spec)
            return
        try:
            self.contract.check_response(request.method, str(request.url),
                                         response.status_code,
                                         response.headers.get("content-type", ""),
                                         response.content)
            result = "conforms"
        except ContractViolation as exc:
            result = f"differs: {exc}"
        self.lines.append(Line(f"{request.method} {template}", str(response.status_code), ms,
                               result))


def _tiny_png() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (uuid.uuid4().int % 256, 90, 160)).save(buf, "PNG")
    return buf.getvalue()


async def probe(settings: ApiSettings, write_folder: str | None = None) -> list[Line]:
    """Call each operation once; the lines of the table, in the order called."""
    checker = _Checker()
    rate = settings.rate_per_minute or 0
    # (doctor's own checks spent two: the minute must hold the probe's too)
    budget = min(BUDGET, rate - 3) if rate else BUDGET
    spent = 0
    skipped: list[str] = []

    async with AionClient(settings, unlimited=True, event_hooks=checker.hooks()) as client:
        async def call(name: str, fn: Callable[[], Awaitable[Any]]) -> Any:
            nonlocal spent
            if spent >= budget:
                skipped.append(name)
                return None
            spent += 1
            before = len(checker.lines)
            try:
                return await fn()
            except (ApiError, ValueError) as exc:
                # the answer was checked by the hook; a decoding failure of ours is
                # a difference too (a field the spec allows that we do not take)
                if len(checker.lines) == before:
                    checker.lines.append(Line(name, "-", None, f"failed: {exc}"))
                elif checker.lines[-1].result == "conforms" and not isinstance(exc, ApiError):
                    checker.lines[-1].result = f"differs: aionfs cannot decode it: {exc}"
                return None

        prio = Priority.INTERACTIVE
        folders = await call("GET /api/v2/folders", lambda: client.folder_tree(priority=prio))
        page = await call("GET /api/v2/user-files",
                          lambda: client.list_files(limit=1, sort_by="created_at",
                                                    sort_order="desc", priority=prio))
        first = page.files[0].id if page is not None and page.files else None
        if folders:
            await call("GET /api/v2/folders/{folder_id}",
                       lambda: client.get_folder(folders[0].id, priority=prio))
        if first is not None:
            await call("GET /api/v2/user-files/{image_id}",
                       lambda: client.get_file(first, priority=prio))
            await call("GET /api/v2/user-files?ids",
                       lambda: client.list_files(ids=[first], limit=1, priority=prio))
            await call("GET /api/v2/user-files/{image_id}/download",
                       lambda: client.presigned_url(first, priority=prio))
            await call("GET /api/v2/user-files/{image_id}/variant/{variant_type}",
                       lambda: client.presigned_url(first, "small_256", priority=prio))
            await call("GET /api/v2/colors/images/{image_id}",
                       lambda: client.image_colors(first, priority=prio))
        await call("GET /api/v2/usage/summary", lambda: client.plan_name(priority=prio))
        await call("GET /api/v2/uploads/quota-check", lambda: client.quota_check(1))
        await call("GET /api/v2/colors/families", client.color_families)
        await call("POST /api/v2/colors/search", lambda: client.color_search(color_name="red", limit=1))
        await call("POST /api/v2/agents/search/images",
                   lambda: client.search_images("photo", limit=1))
        if write_folder is not None:
            budget += 6  # (asked for)
            await _write_test(client, call, folders or [], write_folder, checker)
    lines = checker.lines
    lines += [Line(name, "-", None, f"skipped: the plan's minute holds {rate} requests")
              for name in skipped]
    return lines


async def _write_test(client: AionClient, call: Any, folders: list[Any], path: str,
                      checker: _Checker) -> None:
    """One small image: uploaded, moved into `path`, read, renamed, deleted."""
    target = _folder_by_path(folders, path)
    if target is None:
        checker.lines.append(Line(f"write test in {path}", "-", None,
                                  "failed: no such folder in the library"))
        return
    name = f"aionfs-doctor-{uuid.uuid4().hex[:8]}.png"
    up = await call("POST /api/v2/user-files/upload/stream",
                    lambda: client.upload_file(_tiny_png(), name, content_type="image/png",
                                               title="aionfs doctor write test"))
    if up is None:
        return
    fid = up.image_id
    await call("POST /api/v2/folders/move-files", lambda: client.move_files([fid], target))
    await call("GET /api/v2/user-files/{image_id}", lambda: client.get_file(fid))
    await call("PATCH /api/v2/user-files/{image_id}",
               lambda: client.update_file(fid, title="aionfs doctor write test, renamed"))
    await call("DELETE /api/v2/user-files/{image_id}", lambda: client.delete_file(fid))


def _folder_by_path(folders: list[Any], path: str) -> str | None:
    parts = [p for p in path.strip("/").split("/") if p]
    parent: str | None = None
    for part in parts:
        match = next((f for f in folders if f.name == part and f.parent_id == parent), None)
        if match is None:
            return None
        parent = match.id
    return parent


def table(lines: list[Line]) -> str:
    width = max((len(line.operation) for line in lines), default=10)
    out = [f"{'operation':<{width}}  status  {'ms':>7}  result"]
    for line in lines:
        ms = "" if line.ms is None else f"{line.ms:.0f}"
        out.append(f"{line.operation:<{width}}  {line.status:<6}  {ms:>7}  {line.result}")
    return "\n".join(out)
