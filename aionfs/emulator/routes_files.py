"""File endpoints: list (every filter and sort), details, update, delete, links, bytes."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from .app import Emulator, base_url
from .pages import SORTS
from .responses import (
    ApiFailure,
    Invalid,
    check_uuid,
    field,
    json_body,
    json_response,
    length,
    q_bool,
    q_choice,
    q_datetime,
    q_int,
)
from .state import Tenant, iso, now_dt
from .views import file_details, file_item, signed

VARIANT_TYPES = ("tiny_64", "small_256", "medium_750", "large_1024", "original")
MAX_TAGS, MAX_TAG_LEN, MAX_TITLE = 40, 50, 255


def fts_query(text: str, mode: str) -> str | None:
    """User text → FTS5 query: every word must match (as a prefix)."""
    words = re.findall(r"\w+", text.lower())
    if not words:
        return None
    q = " AND ".join(f'"{w}"*' for w in words)
    if mode == "metadata":
        return f"{{title filename description tags}} : ({q})"
    if mode == "visible_text":
        return f"visible_text : ({q})"
    return q


async def list_files(emu: Emulator, request: Request, tenant: Tenant) -> Response:
    qp = request.query_params
    limit = q_int(request, "limit", 20, ge=1, le=100)
    offset = q_int(request, "offset", 0, ge=0)
    sort_by = q_choice(request, "sort_by", tuple(SORTS), "content_created_at")
    order = q_choice(request, "sort_order", ("asc", "desc"), "desc")
    mode = q_choice(request, "search_mode", ("all", "metadata", "visible_text"), "all")
    where = ["f.tenant = ?", "f.deleted_at IS NULL"]
    args: list[Any] = [tenant.id]
    if (folder := qp.get("folder_id")) is not None:
        where.append("f.folder_id = ?")
        args.append(check_uuid(folder, ["query", "folder_id"]))
    if (search := qp.get("search")) is not None and search.strip():
        fq = fts_query(search, mode)
        if fq is None:
            return json_response({"files": [], "total_count": 0, "has_more": False})
        where.append("f.seq IN (SELECT rowid FROM files_fts WHERE files_fts MATCH ?)")
        args.append(fq)
    for tag in qp.getlist("tags"):
        where.append("EXISTS (SELECT 1 FROM json_each(f.tags) WHERE value = ?)")
        args.append(tag)
    if media := qp.getlist("media_types"):
        where.append(f"f.media_type IN ({','.join('?' * len(media))})")
        args += media
    if ids := qp.getlist("ids"):
        if len(ids) > 500:
            raise Invalid((["query", "ids"], "at most 500 ids", "too_long"))
        where.append(f"f.id IN ({','.join('?' * len(ids))})")
        args += [check_uuid(i, ["query", "ids", n]) for n, i in enumerate(ids)]
    if (hd := q_bool(request, "has_description")) is not None:
        now = iso(now_dt())
        cond = "(f.description IS NOT NULL AND f.ready_at <= ?)"
        where.append(cond if hd else f"NOT {cond}")
        args.append(now)
    if (dfrom := q_datetime(request, "date_from")) is not None:
        where.append("f.created_at >= ?")
        args.append(iso(dfrom))
    if (dto := q_datetime(request, "date_to")) is not None:
        where.append("f.created_at <= ?")
        args.append(iso(dto))
    rows, total = emu.pages.page(" AND ".join(where), args, sort_by, order, limit, offset)
    base, now = base_url(request), iso(now_dt())
    files = [file_item(r, emu.blobs, base, now) for r in rows]
    return json_response({"files": files, "total_count": total,
                          "has_more": offset + len(files) < total})


def _file_or_404(emu: Emulator, tenant: Tenant, file_id: str, prefix: bool = False) -> Any:
    row = emu.state.file(tenant, file_id, prefix=prefix)
    if row is None:
        raise ApiFailure(404, "FILE_NOT_FOUND", "File not found")
    return row


async def details(emu: Emulator, request: Request, tenant: Tenant) -> Response:
    # Accepts a full UUID or an 8-character prefix (as the service does).
    row = _file_or_404(emu, tenant, request.path_params["image_id"].lower(), prefix=True)
    return json_response(file_details(row, emu.blobs, base_url(request)))


def _tags(value: Any, loc: list[Any]) -> list[str]:
    if len(value) > MAX_TAGS:
        raise Invalid((loc, f"at most {MAX_TAGS} tags", "too_long"))
    out: list[str] = []
    for n, tag in enumerate(value):
        if not isinstance(tag, str) or not tag.strip() or len(tag) > MAX_TAG_LEN or "," in tag:
            raise Invalid(([*loc, n], f"tags are 1-{MAX_TAG_LEN} characters without commas",
                           "value_error"))
        if tag.strip() not in out:
            out.append(tag.strip())
    return out


async def update(emu: Emulator, request: Request, tenant: Tenant) -> Response:
    fid = check_uuid(request.path_params["image_id"], ["path", "image_id"])
    doc = await json_body(request)
    changes: dict[str, Any] = {}
    if "title" in doc:
        title = field(doc, "title", str, check=length(0, MAX_TITLE))
        changes["title"] = title or None
    if "tags" in doc and doc["tags"] is not None:
        changes["tags"] = json.dumps(_tags(field(doc, "tags", list), ["body", "tags"]))
    _file_or_404(emu, tenant, fid)
    if changes:
        emu.state.update_file(tenant, fid, **changes)
    row = _file_or_404(emu, tenant, fid)
    return json_response({"id": fid, "title": row["title"], "tags": json.loads(row["tags"]),
                          "updated_at": row["updated_at"]})


async def delete(emu: Emulator, request: Request, tenant: Tenant) -> Response:
    fid = check_uuid(request.path_params["image_id"], ["path", "image_id"])
    ts = emu.state.delete_file(tenant, fid)
    if ts is None:
        raise ApiFailure(404, "FILE_NOT_FOUND", "File not found")
    return json_response({"id": fid, "deleted_at": ts, "message": "File deleted successfully"})


async def batch_delete(emu: Emulator, request: Request, tenant: Tenant) -> Response:
    doc = await json_body(request)
    ids = field(doc, "file_ids", list, required=True, check=length(1, 100))
    ids = [check_uuid(i if isinstance(i, str) else "", ["body", "file_ids", n])
           for n, i in enumerate(ids)]
    deleted, skipped, failed = [], [], []
    seen: set[str] = set()
    for fid in ids:
        if fid in seen:
            skipped.append({"id": fid, "status": "skipped", "message": "duplicate id"})
            continue
        seen.add(fid)
        ts = emu.state.delete_file(tenant, fid)
        if ts is None:
            failed.append({"id": fid, "status": "failed", "message": "File not found"})
        else:
            deleted.append({"id": fid, "status": "deleted", "deleted_at": ts})
    return json_response({"deleted": deleted, "skipped": skipped, "failed": failed,
                          "summary": {"total": len(ids), "deleted": len(deleted),
                                      "skipped": len(skipped), "failed": len(failed)}})


async def create_link(emu: Emulator, request: Request, tenant: Tenant) -> Response:
    doc = await json_body(request)
    url = field(doc, "url", str, required=True, check=length(1, 2048))
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ApiFailure(400, "INVALID_URL", "Invalid URL: an http(s) URL is required")
    title = field(doc, "title", str, check=length(0, 500))
    tags = _tags(field(doc, "tags", list, default=[]) or [], ["body", "tags"])
    folder = field(doc, "folder_id", str)
    if folder is not None:
        folder = check_uuid(folder, ["body", "folder_id"])
        if emu.state.folder(tenant, folder) is None:
            raise ApiFailure(404, "FOLDER_NOT_FOUND", "folder not found")
    existing = emu.state.db.execute(
        "SELECT * FROM files WHERE tenant=? AND source_url=? AND deleted_at IS NULL",
        (tenant.id, url)).fetchone()
    if existing is not None:
        row, dup = existing, True
    else:
        domain = parts.hostname.removeprefix("www.")
        fid = emu.state.insert_link(tenant, url, domain, title, tags, folder)
        row, dup = emu.state.file(tenant, fid), False
    return json_response({"id": row["id"], "source_url": row["source_url"],
                          "title": row["title"], "domain": row["domain"],
                          "crawl_status": "completed" if dup else "queued",
                          "is_duplicate": dup, "created_at": row["created_at"]}, 201)


def _redirect(emu: Emulator, request: Request, key: str, row: Any) -> Response:
    return RedirectResponse(signed(base_url(request), emu.blobs, key, row,
                                   original=key == row["blob"]), status_code=302)


async def download(emu: Emulator, request: Request, tenant: Tenant) -> Response:
    fid = check_uuid(request.path_params["image_id"], ["path", "image_id"])
    row = _file_or_404(emu, tenant, fid)
    if not row["blob"]:
        raise ApiFailure(404, "FILE_NOT_FOUND", "this file (a saved link) has no bytes")
    return _redirect(emu, request, row["blob"], row)


async def variant(emu: Emulator, request: Request, tenant: Tenant) -> Response:
    fid = check_uuid(request.path_params["image_id"], ["path", "image_id"])
    vtype = request.path_params["variant_type"]
    row = _file_or_404(emu, tenant, fid)
    if vtype not in VARIANT_TYPES:
        raise ApiFailure(404, "VARIANT_NOT_FOUND",
                         f"unknown variant {vtype!r}; one of {', '.join(VARIANT_TYPES)}")
    if vtype == "original" and row["blob"]:
        return _redirect(emu, request, row["blob"], row)
    variants = json.loads(row["variants"] or "{}")
    if vtype not in variants or row["ready_at"] > iso(now_dt()):
        raise ApiFailure(404, "VARIANT_NOT_FOUND", f"variant {vtype} is not available")
    return _redirect(emu, request, variants[vtype], row)


ROUTES = [
    ("GET", "/user-files", list_files, True),
    ("POST", "/user-files/batch-delete", batch_delete, True),
    ("POST", "/user-files/links", create_link, True),
    ("GET", "/user-files/{image_id}", details, True),
    ("PATCH", "/user-files/{image_id}", update, True),
    ("DELETE", "/user-files/{image_id}", delete, True),
    ("GET", "/user-files/{image_id}/download", download, True),
    ("GET", "/user-files/{image_id}/variant/{variant_type}", variant, True),
]
