"""Upload endpoints: stream, stream-batch, sessions, duplicate check, quota check."""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

import anyio.to_thread
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response

from .analysis import MAX_UPLOAD_BYTES, Analysis, Unsupported, analyse
from .app import Emulator
from .responses import (
    ApiFailure,
    Invalid,
    check_uuid,
    field,
    json_body,
    json_response,
    length,
    q_int,
)
from .state import Tenant, iso, now_dt


def _parse_tags(raw: Any) -> list[str]:
    if raw is None or raw == "":
        return []
    tags = [t.strip() for t in str(raw).split(",") if t.strip()]
    if len(tags) > 40 or any(len(t) > 50 for t in tags):
        raise Invalid((["body", "tags"], "at most 40 tags of at most 50 characters",
                       "value_error"))
    return list(dict.fromkeys(tags))


def _form_bool(raw: Any, name: str, default: bool) -> bool:
    if raw is None:
        return default
    low = str(raw).lower()
    if low in ("true", "1", "yes", "on"):
        return True
    if low in ("false", "0", "no", "off"):
        return False
    raise Invalid((["body", name], "Input should be a valid boolean", "bool_parsing"))


def _check_quota(tenant: Tenant, count: int) -> None:
    if tenant.quota is not None and tenant.uploads_used + count > tenant.quota:
        raise ApiFailure(402, "USAGE_LIMIT_EXCEEDED",
                         f"monthly upload quota of {tenant.quota} files is exhausted",
                         details={"monthly_limit": tenant.quota, "used": tenant.uploads_used})


async def _ingest(emu: Emulator, tenant: Tenant, data: bytes, filename: str,
                  title: str | None, tags: list[str], skip_duplicates: bool) -> dict[str, Any]:
    """Store one upload; the result fields shared by stream and stream-batch."""
    started = time.monotonic()
    sha = hashlib.sha256(data).hexdigest()
    if skip_duplicates and (existing := emu.state.file_by_hash(tenant, sha)) is not None:
        return {"image_id": existing["id"], "object_key": f"uploads/{existing['id']}/"
                f"{existing['original_filename']}", "status": "skipped", "skipped": True,
                "skipped_existing_image_id": existing["id"],
                "media_type": existing["media_type"],
                "processing_time_ms": (time.monotonic() - started) * 1000}
    result: Analysis = await anyio.to_thread.run_sync(analyse, data, filename)
    blob = emu.blobs.put(data)
    variants = {name: emu.blobs.put(b) for name, b in result.variants.items()}
    colors = ({"dominant_colors": result.colors, "analytics": result.color_analytics}
              if result.colors else None)
    fid = emu.state.insert_file(tenant, {
        "title": title, "original_filename": filename, "media_type": result.media_type,
        "format": result.format, "content_type": result.content_type,
        "size_bytes": len(data), "sha256": sha, "blob": blob,
        "variants": json.dumps(variants) if variants else None,
        "width": result.width, "height": result.height, "description": result.description,
        "visible_text": result.visible_text, "colors": json.dumps(colors) if colors else None,
        "tags": tags, "page_count": result.page_count,
        "content_created_at": iso(result.content_created_at),
    })
    emu.state.count_upload(tenant, 1)
    done = tenant.processing_delay <= 0
    return {"image_id": fid, "object_key": f"uploads/{fid}/{filename}",
            "status": "completed" if done else "processing", "skipped": False,
            "skipped_existing_image_id": None, "media_type": result.media_type,
            "document_type": result.format if result.media_type == "document" else None,
            "text_extraction_status": (("completed" if done else "processing")
                                       if result.media_type == "document" else None),
            "processing_time_ms": (time.monotonic() - started) * 1000}


async def stream(emu: Emulator, request: Request, tenant: Tenant) -> Response:
    async with request.form(max_files=1, max_fields=20) as form:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise Invalid((["body", "file"], "Field required", "missing"))
        title = form.get("title")
        if isinstance(title, str) and len(title) > 255:
            raise Invalid((["body", "title"], "String should have at most 255 characters",
                           "string_too_long"))
        tags = _parse_tags(form.get("tags"))
        skip = _form_bool(form.get("skip_duplicates"), "skip_duplicates", False)
        _form_bool(form.get("auto_describe"), "auto_describe", True)
        data = await upload.read()
        filename = upload.filename or "upload"
    if len(data) > MAX_UPLOAD_BYTES:
        raise ApiFailure(413, "FILE_TOO_LARGE", "File too large: the limit is 100 MB")
    if not skip or emu.state.file_by_hash(tenant, hashlib.sha256(data).hexdigest()) is None:
        _check_quota(tenant, 1)
    try:
        res = await _ingest(emu, tenant, data, filename, title or None, tags, skip)
    except Unsupported as exc:
        raise Invalid((["body", "file"], f"{exc}", "unsupported_file_type")) from None
    res.update({"upload_method": "STREAMING", "s3_upload_completed": True,
                "variants_queued": res["media_type"] == "image" and not res["skipped"],
                "description_queued": not res["skipped"], "storage_target": "default"})
    return json_response(res)


async def stream_batch(emu: Emulator, request: Request, tenant: Tenant) -> Response:
    async with request.form(max_files=tenant.batch_limit + 1, max_fields=20) as form:
        uploads = [u for u in form.getlist("files") if isinstance(u, UploadFile)]
        if not uploads:
            raise Invalid((["body", "files"], "Field required", "missing"))
        if len(uploads) > tenant.batch_limit:
            raise ApiFailure(413, "BATCH_TOO_LARGE",
                             f"too many files: the {tenant.plan.upper()} plan allows "
                             f"{tenant.batch_limit} per batch")
        tags = _parse_tags(form.get("tags"))
        skip = _form_bool(form.get("skip_duplicates"), "skip_duplicates", False)
        items = [(u.filename or f"file{i}", await u.read()) for i, u in enumerate(uploads)]
    _check_quota(tenant, len(items))
    results, rejections = [], []
    for index, (name, data) in enumerate(items):
        if len(data) > MAX_UPLOAD_BYTES:
            rejections.append({"filename": name, "index": index, "reason":
                               "file exceeds 100 MB", "retryable": False})
            continue
        try:
            res = await _ingest(emu, tenant, data, name, None, tags, skip)
        except Unsupported as exc:
            rejections.append({"filename": name, "index": index,
                               "reason": f"{exc}", "retryable": False})
            continue
        res.update({"filename": name, "error": None, "storage_target": "default"})
        results.append(res)
    created = iso(now_dt())
    sid = emu.state.save_session(tenant, {
        "created_at": created, "tags": tags, "rejections": rejections,
        "results": [{"image_id": r["image_id"], "filename": r["filename"],
                     "object_key": r["object_key"], "status": r["status"],
                     "processing_time_ms": r["processing_time_ms"]} for r in results]})
    body = {
        "session_id": sid, "total_files": len(items), "accepted_files": len(results),
        "rejected_files": len(rejections),
        "status": "completed" if results else "failed",
        "immediate_results": results if len(items) <= 5 else None,
        "status_url": f"/api/v2/uploads/sessions/{sid}/status",
        "websocket_channel": f"batch.{sid}",
        "rejections": rejections or None,
    }
    return json_response(body)


def _session_or_404(emu: Emulator, request: Request, tenant: Tenant) -> dict[str, Any]:
    sid = check_uuid(request.path_params["session_id"], ["path", "session_id"])
    doc = emu.state.session(tenant, sid)
    if doc is None:
        raise ApiFailure(404, "SESSION_NOT_FOUND", "upload session not found")
    return doc


def _counts(doc: dict[str, Any]) -> dict[str, int]:
    res = doc["results"]
    skipped = sum(r["status"] == "skipped" for r in res)
    return {"total_files": len(res) + len(doc["rejections"]),
            "completed": len(res) - skipped, "failed": len(doc["rejections"]),
            "skipped": skipped}


async def session_status(emu: Emulator, request: Request, tenant: Tenant) -> Response:
    doc = _session_or_404(emu, request, tenant)
    c = _counts(doc)
    sid = request.path_params["session_id"]
    return json_response({
        "session_id": sid, "status": "completed" if c["completed"] or c["skipped"] else "failed",
        "total_files": c["total_files"], "completed_files": c["completed"],
        "failed_files": c["failed"], "skipped_files": c["skipped"], "pending_files": 0,
        "progress_percentage": 100.0, "created_at": doc["created_at"],
        "started_at": doc["created_at"], "completed_at": doc["created_at"],
        "recent_completions": [], "recent_errors": [
            {"filename": r["filename"], "index": r["index"], "error": r["reason"],
             "retryable": r["retryable"]} for r in doc["rejections"][-10:]],
        "results_url": f"/api/v2/uploads/sessions/{sid}/results",
        "websocket_channel": f"batch.{sid}"})


async def session_results(emu: Emulator, request: Request, tenant: Tenant) -> Response:
    """Results of accepted files (rejected ones never got an id: see the batch answer)."""
    doc = _session_or_404(emu, request, tenant)
    offset = q_int(request, "offset", 0, ge=0) or 0
    limit = q_int(request, "limit", 100, ge=1, le=500) or 100
    res = doc["results"]
    page = [{**r, "created_at": doc["created_at"], "tags": doc["tags"], "error_message": None}
            for r in res[offset:offset + limit]]
    return json_response({"session_id": request.path_params["session_id"], "results": page,
                          "total_count": len(res), "offset": offset, "limit": limit,
                          "has_more": offset + len(page) < len(res), "summary": _counts(doc)})


async def check_duplicates(emu: Emulator, request: Request, tenant: Tenant) -> Response:
    doc = await json_body(request)
    hashes = field(doc, "hashes", list, required=True, check=length(1, 250))
    for n, h in enumerate(hashes):
        if not isinstance(h, str) or len(h) != 64 or any(c not in "0123456789abcdef"
                                                         for c in h.lower()):
            raise Invalid((["body", "hashes", n], "a SHA-256 hex digest is expected",
                           "value_error"))
    hashes = [h.lower() for h in hashes]
    present = emu.state.hashes_present(tenant, hashes)
    return json_response({"duplicates": [h for h in hashes if h in present],
                          "unique": [h for h in hashes if h not in present]})


async def quota_check(emu: Emulator, request: Request, tenant: Tenant) -> Response:
    count = q_int(request, "file_count", None, ge=1, required=True) or 1
    quota = tenant.quota
    available = None if quota is None else max(0, quota - tenant.uploads_used)
    ok = available is None or count <= available
    return json_response({
        "can_proceed": ok, "requested": count, "available": available,
        "monthly_limit": quota, "current_usage": tenant.uploads_used, "prepaid_credits": 0,
        "max_batch_size": tenant.batch_limit, "max_concurrent_uploads": 10,
        "message": None if ok else f"only {available} uploads left this month"})


async def usage_summary(emu: Emulator, request: Request, tenant: Tenant) -> Response:
    """The shape of api/usage.md's example; `plan.name` is what clients learn the plan by."""
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    quota = tenant.quota
    used = tenant.uploads_used
    remaining = None if quota is None else max(0, quota - used)
    percent = 0.0 if not quota else round(100.0 * used / quota, 2)
    return json_response({
        "period": {"start": start.isoformat().replace("+00:00", "Z"),
                   "end": now.isoformat().replace("+00:00", "Z")},
        "usage": {"describe_count": used, "total_requests": used,
                  "successful_requests": used, "failed_requests": 0},
        "performance": {"avg_response_time_ms": 5.0},
        "limits": {"monthly_limit": quota, "used_this_month": used, "remaining": remaining,
                   "percentage_used": percent},
        "plan": {"name": tenant.plan.capitalize(), "requests_limit": quota,
                 "requests_used": used, "requests_remaining": remaining,
                 "usage_percentage": percent, "renewal_date": None},
        "total_credits": used})


ROUTES = [
    ("GET", "/usage/summary", usage_summary, False),
    ("POST", "/user-files/upload/stream", stream, False),
    ("POST", "/user-files/upload/stream-batch", stream_batch, False),
    ("GET", "/uploads/sessions/{session_id}/status", session_status, False),
    ("GET", "/uploads/sessions/{session_id}/results", session_results, False),
    ("POST", "/uploads/check-duplicates", check_duplicates, False),
    ("GET", "/uploads/quota-check", quota_check, False),
]
