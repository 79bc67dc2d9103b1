"""Rows of the emulator's state rendered as the API's JSON objects."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from .blobs import BlobStore
from .state import iso, now_dt


def is_ready(row: sqlite3.Row, now_iso: str | None = None) -> bool:
    return row["ready_at"] <= (now_iso or iso(now_dt()))


def _statuses(row: sqlite3.Row, ready: bool) -> dict[str, Any]:
    done = "completed" if ready else "processing"
    media = row["media_type"]
    return {
        "description_status": done,
        "variant_status": done if media == "image" else None,
        "text_extraction_status": done if media == "document" else None,
        "crawl_status": done if media == "link" else None,
    }


def signed(base: str, blobs: BlobStore, key: str | None, row: sqlite3.Row,
           original: bool = False) -> str | None:
    """An absolute presigned URL for one of the row's blobs: its original (served
    with the file's content type) or a rendition (JPEG)."""
    if not key:
        return None
    ctype = (row["content_type"] or "application/octet-stream") if original else "image/jpeg"
    return base + blobs.sign(key, row["tenant"], content_type=ctype)


def _list_full_url(base: str, blobs: BlobStore, row: sqlite3.Row,
                   variants: dict[str, str]) -> str | None:
    """A list item's `full_url`: the original ("URL to full/original image", the
    UserFile schema), or the 1024 px variant where the workspace's URL policy plays
    the details schema's reading."""
    if row["media_type"] != "image":
        return None
    if blobs.policy(row["tenant"]).list_full_url == "large":
        return signed(base, blobs, variants.get("large_1024"), row)
    return signed(base, blobs, row["blob"], row, original=True)


def file_item(row: sqlite3.Row, blobs: BlobStore, base: str, now_iso: str) -> dict[str, Any]:
    """One item of `GET /user-files` (no folder id, no updated_at: as the service)."""
    ready = is_ready(row, now_iso)
    variants = json.loads(row["variants"]) if row["variants"] and ready else {}
    media = row["media_type"]
    item: dict[str, Any] = {
        "id": row["id"],
        "title": row["title"],
        "filename": row["original_filename"],
        "thumbnail_url": signed(base, blobs, variants.get("small_256"), row),
        "upload_description": row["description"] if ready else None,
        "visible_text": row["visible_text"] if ready else None,
        "tags": json.loads(row["tags"]),
        "size_bytes": row["size_bytes"],
        "created_at": row["created_at"],
        "content_created_at": row["content_created_at"],
        "has_full_description": bool(ready and row["description"]),
        "dimensions": ({"width": row["width"], "height": row["height"]}
                       if row["width"] else None),
        "format": row["format"],
        "variant_count": len(variants) if media == "image" else None,
        "medium_url": signed(base, blobs, variants.get("medium_750"), row),
        "full_url": _list_full_url(base, blobs, row, variants),
        "document_url": (signed(base, blobs, row["blob"], row, original=True)
                         if media == "document" else None),
        "content_type": row["content_type"],
        "media_type": media,
        "document_type": row["format"] if media == "document" else None,
        "page_count": row["page_count"],
        "source_url": row["source_url"],
        "domain": row["domain"],
        **_statuses(row, ready),
    }
    return item


def file_details(row: sqlite3.Row, blobs: BlobStore, base: str) -> dict[str, Any]:
    now_iso = iso(now_dt())
    item = file_item(row, blobs, base, now_iso)
    ready = is_ready(row, now_iso)
    item.pop("filename")
    item.pop("has_full_description")
    item.pop("variant_count")
    desc = row["description"] if ready else None
    variants = json.loads(row["variants"]) if row["variants"] and ready else {}
    item.update({
        "full_url": signed(base, blobs, variants.get("large_1024"), row),
        "object_key": f"uploads/{row['id']}/{row['original_filename'] or 'link'}",
        "content_type": row["content_type"] or "text/html",
        "dimensions": item["dimensions"] or {},
        "format": row["format"] or row["media_type"],
        "original_url": signed(base, blobs, row["blob"], row, original=True),
        "description_generated_at": row["ready_at"] if desc else None,
        "full_descriptions": ([{"id": row["id"], "description": desc,
                                "visible_text": item["visible_text"],
                                "confidence_score": 0.9, "processing_time_ms": 0,
                                "created_at": row["ready_at"]}] if desc else []),
        "updated_at": row["updated_at"],
        "upload_method": "LINK" if row["media_type"] == "link" else "STREAMING",
        "original_filename": row["original_filename"],
        "hash": row["sha256"] or "",
        "processing_history": [{"id": row["id"], "status": item["description_status"],
                                "created_at": row["created_at"],
                                "completed_at": row["ready_at"] if ready else None,
                                "error_message": None}],
        "page_title": row["title"] if row["media_type"] == "link" else None,
    })
    return item


def color_analysis(row: sqlite3.Row) -> dict[str, Any] | None:
    if not row["colors"]:
        return None
    doc = json.loads(row["colors"])
    return {"version": "1.0", "dominant_colors": doc["dominant_colors"],
            "analytics": doc["analytics"], "extracted_at": row["ready_at"]}
