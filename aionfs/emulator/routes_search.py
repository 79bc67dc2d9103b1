"""Colors, semantic image search and document text.

Semantic search stand-in (deterministic, documented): the query's words
(lower-cased, stop words dropped, `stem` applied) are matched
against each image's fields with weights — title 3, tags 3, filename 2,
description 1, dominant color names 1, visible text 0.5. An image's score is
the sum over query words of the best field weight containing that word,
divided by 3 × the number of query words, so 1.0 means every word appears in
a title or tag. Images scoring 0 are left out; ties go to the newer upload.
"""

from __future__ import annotations

import json
import re
import time

import trio
from starlette.requests import Request
from starlette.responses import Response

from .app import Emulator, base_url
from .colors import (
    FAMILIES,
    FAMILY_NAMES,
    delta_e,
    hex_to_rgb,
    name_to_hex,
    normalize_hex,
    rgb_to_lab,
)
from .responses import (
    ApiFailure,
    Invalid,
    between,
    check_uuid,
    field,
    json_body,
    json_response,
    length,
)
from .state import Tenant, iso, now_dt
from .views import color_analysis, is_ready, signed

_STOP = frozenset(["a", "an", "and", "are", "at", "by", "for", "from", "in", "is", "of", "on", "or", "the", "to", "with", "show", "me", "find", "images", "image", "photos", "photo", "pictures", "picture"])


def stem(word: str) -> str:
    """A light English stemmer: plurals, -ing, -ed, and a final -y (rusty → rust)."""
    if word.endswith("ies") and len(word) > 4:
        word = word[:-3] + "y"
    elif word.endswith(("sses", "xes", "ches", "shes", "zes")):
        word = word[:-2]
    elif word.endswith("s") and not word.endswith("ss") and len(word) > 3:
        word = word[:-1]
    for suffix in ("ing", "ed", "y"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def words(text: str | None) -> set[str]:
    return {stem(w) for w in re.findall(r"[a-z0-9]+", (text or "").lower())}


async def families(emu: Emulator, request: Request, tenant: Tenant) -> Response:
    return json_response(FAMILIES)


async def image_colors(emu: Emulator, request: Request, tenant: Tenant) -> Response:
    fid = check_uuid(request.path_params["image_id"], ["path", "image_id"])
    row = emu.state.file(tenant, fid)
    if row is None:
        raise ApiFailure(404, "IMAGE_NOT_FOUND", "image not found")
    if row["media_type"] != "image":
        return json_response({"image_id": fid, "status": "failed", "color_analysis": None,
                              "extracted_at": None})
    if not is_ready(row):
        return json_response({"image_id": fid, "status": "processing", "color_analysis": None,
                              "extracted_at": None})
    analysis = color_analysis(row)
    return json_response({"image_id": fid, "status": "completed", "color_analysis": analysis,
                          "extracted_at": row["ready_at"]})


async def color_search(emu: Emulator, request: Request, tenant: Tenant) -> Response:
    doc = await json_body(request)
    hex_in = field(doc, "hex_code", str)
    name = field(doc, "color_name", str)
    family = field(doc, "color_family", str)
    threshold = field(doc, "delta_e_threshold", float, default=15.0, nullable=False,
                      check=between(0, 100))
    min_pct = field(doc, "min_percentage", float, default=5.0, nullable=False,
                    check=between(0, 100))
    limit = field(doc, "limit", int, default=50, nullable=False, check=between(1, 200))
    offset = field(doc, "offset", int, default=0, nullable=False, check=between(0, 10**9))
    if not (hex_in or name or family):
        raise Invalid((["body"], "provide at least one of hex_code, color_name, color_family",
                       "value_error"))
    target = None
    if hex_in:
        target = normalize_hex(hex_in)
        if target is None:
            raise Invalid((["body", "hex_code"], "a hex color like #C4A87C is expected",
                           "value_error"))
    elif name:
        target = name_to_hex(name)
        if target is None:
            raise Invalid((["body", "color_name"], f"unknown color name {name!r}",
                           "value_error"))
    if family and family not in FAMILY_NAMES:
        raise Invalid((["body", "color_family"], f"unknown color family {family!r}; see "
                       "GET /colors/families", "value_error"))
    target_lab = rgb_to_lab(hex_to_rgb(target)) if target else None
    now = iso(now_dt())
    hits = []
    for row in emu.state.db.execute(
            "SELECT * FROM files WHERE tenant=? AND deleted_at IS NULL AND media_type='image' "
            "AND colors IS NOT NULL AND ready_at<=? ORDER BY seq DESC", (tenant.id, now)):
        colors = json.loads(row["colors"])["dominant_colors"]
        best = None
        fam_pct = 0.0
        for c in colors:
            if c["percentage"] < min_pct:
                continue
            if family and c["family"] == family:
                fam_pct += c["percentage"]
            if target_lab is not None and (not family or c["family"] == family):
                lab = c["lab"]
                de = delta_e(target_lab, (lab["l"], lab["a"], lab["b"]))
                if de <= threshold:
                    score = max(0.0, 1 - de / threshold) if threshold else 1.0
                    if best is None or score > best[0]:
                        best = (score, c)
        if target_lab is not None and best is not None:
            hits.append((best[0], best[1]["percentage"], row, best[1]))
        elif target_lab is None and fam_pct > 0:
            hits.append((min(1.0, fam_pct / 100), fam_pct, row, None))
    hits.sort(key=lambda h: (-h[0], -h[1], -h[2]["seq"]))
    base = base_url(request)
    page = []
    for score, pct, row, color in hits[offset: offset + limit]:
        variants = json.loads(row["variants"] or "{}")
        page.append({
            "image_id": row["id"],
            "thumbnail_url": signed(base, emu.blobs, variants.get("small_256"), row),
            "color_analysis": color_analysis(row),
            "match_score": round(score, 4),
            "matched_hex": color["hex"] if color else None,
            "matched_percentage": round(pct, 1),
        })
    return json_response({"results": page, "total_count": len(hits), "limit": limit,
                          "offset": offset})


async def search_images(emu: Emulator, request: Request, tenant: Tenant) -> Response:
    started = time.monotonic()
    doc = await json_body(request)
    query = field(doc, "query", str, required=True, check=length(1, 2000))
    limit = field(doc, "limit", int, default=50, nullable=False, check=between(1, 500))
    folder = field(doc, "folder_id", str)
    ids = field(doc, "image_ids", list)
    qwords = [w for w in (stem(x) for x in re.findall(r"[a-z0-9]+", query.lower()))
              if w not in _STOP] or [stem(x) for x in re.findall(r"[a-z0-9]+", query.lower())]
    if emu.semantic_latency:
        await trio.sleep(emu.semantic_latency)
    sql = ("SELECT * FROM files WHERE tenant=? AND deleted_at IS NULL AND media_type='image'")
    args: list = [tenant.id]
    if folder:
        sql += " AND folder_id=?"
        args.append(check_uuid(folder, ["body", "folder_id"]))
    if ids:
        ids = [check_uuid(str(i), ["body", "image_ids", n]) for n, i in enumerate(ids)]
        sql += f" AND id IN ({','.join('?' * len(ids))})"
        args += ids
    now = iso(now_dt())
    scored = []
    for row in emu.state.db.execute(sql + " ORDER BY seq DESC", args):
        ready = row["ready_at"] <= now
        color_names = ""
        if ready and row["colors"]:
            color_names = " ".join(c["name"] for c in
                                   json.loads(row["colors"])["dominant_colors"])
        fields = [(3.0, words(row["title"])), (3.0, words(" ".join(json.loads(row["tags"])))),
                  (2.0, words(row["original_filename"]))]
        if ready:
            fields += [(1.0, words(row["description"])), (1.0, words(color_names)),
                       (0.5, words(row["visible_text"]))]
        total = sum(max((w for w, ws in fields if q in ws), default=0.0) for q in qwords)
        score = total / (3.0 * len(qwords)) if qwords else 0.0
        if score > 0:
            scored.append((round(min(score, 1.0), 4), row))
    scored.sort(key=lambda s: -s[0])  # stable: newer first among equals
    top = scored[:limit]
    base = base_url(request)
    results = []
    for score, row in top:
        variants = json.loads(row["variants"] or "{}")
        results.append({
            "image_id": row["id"], "score": score, "filename": row["original_filename"],
            "title": row["title"],
            "description": row["description"] if row["ready_at"] <= now else None,
            "folder_id": row["folder_id"],
            "thumbnail_url": signed(base, emu.blobs, variants.get("small_256"), row),
            "features": None,
        })
    ids_out = [r["image_id"] for r in results]
    elapsed = int((time.monotonic() - started) * 1000)
    summary = f"Found {len(results)} images matching {query[:80]!r}"
    return json_response({
        "success": True, "results": results, "count": len(results), "result_ids": ids_out,
        "summary": summary, "summary_raw": summary,
        "result_refs": {"search_1": {"count": len(ids_out), "ids": ids_out,
                                     "image_ids": ids_out, "id_type": "image",
                                     "label": "images"}},
        "search_strategy": {"mode": "semantic"}, "execution_time_ms": elapsed,
        "iterations": 1,
        "token_usage": {"input_tokens": 40 + 4 * len(query.split()),
                        "output_tokens": 10 + 6 * len(results),
                        "total_tokens": 50 + 4 * len(query.split()) + 6 * len(results),
                        "call_count": 1},
    })


async def document_text(emu: Emulator, request: Request, tenant: Tenant) -> Response:
    fid = check_uuid(request.path_params["document_id"], ["path", "document_id"])
    row = emu.state.file(tenant, fid)
    if row is None or row["media_type"] != "document":
        raise ApiFailure(404, "DOCUMENT_NOT_FOUND", "document not found")
    if not is_ready(row):
        raise ApiFailure(409, "DOCUMENT_PROCESSING", "text extraction is still running")
    return json_response({"document_id": fid, "filename": row["original_filename"],
                          "text": row["visible_text"] or "", "page_count": row["page_count"],
                          "metadata": {"format": row["format"]}})


ROUTES = [
    ("GET", "/colors/families", families, False),
    ("GET", "/colors/images/{image_id}", image_colors, False),
    ("POST", "/colors/search", color_search, False),
    ("POST", "/agents/search/images", search_images, False),
    ("GET", "/documents/{document_id}/text", document_text, False),
]
