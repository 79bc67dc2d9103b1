"""Fakes at the client boundary, for the unit tier: no network, no FUSE.

`FakeStorage` plays the API's download endpoint and the storage host behind
presigned URLs, in memory: a transfer writes an object's bytes into the
cache file in pieces, reporting progress as `BlobFetcher` does, and can be
held halfway (`hold_at`) to see what readers get meanwhile.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import trio
import trio.lowlevel

from aionfs.api import PresignedUrl
from aionfs.api.ratelimit import RateLimiter
from aionfs.api.transfer import Expected

PIECE = 64 << 10


class FakeStorage:
    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}  # file id → bytes
        self.limiter = RateLimiter(None)
        self.url_requests = 0
        self.transfers: list[tuple[str, int, int]] = []  # (file id, start, end)
        self.hold_at: int | None = None  # a transfer pauses once past this offset…
        self.release = trio.Event()  # …until this is set
        self.held = trio.Event()  # set when a transfer pauses there

    def put(self, file_id: str, data: bytes) -> None:
        self.objects[file_id] = data

    async def presigned_url(self, file_id: str, *, priority: Any = None) -> PresignedUrl:
        self.url_requests += 1
        return PresignedUrl(f"mem://{file_id}", time.time() + 3600)

    async def fetch_into(self, url: str, fd: int, *, start: int, end: int,
                         progress: Callable[[int], None], expect: Expected | None = None
                         ) -> int:
        file_id = url.removeprefix("mem://")
        data = self.objects[file_id]
        if expect is not None:
            expect.check(len(data), None)
        self.transfers.append((file_id, start, end))
        pos = start
        while pos <= end:
            if self.hold_at is not None and pos > self.hold_at:
                self.held.set()
                await self.release.wait()
            stop = min(pos + PIECE, end + 1)
            os.pwrite(fd, data[pos:stop], pos)
            pos = stop
            progress(pos)
            await trio.lowlevel.checkpoint()
        return pos


def file_item(file_id: str, size: int, **extra: Any) -> dict[str, Any]:
    """A store row as sync writes it from a list item."""
    row: dict[str, Any] = {
        "id": file_id, "title": None, "filename": f"{file_id}.jpg", "size": size,
        "media_type": "image", "format": "jpeg", "content_type": "image/jpeg",
        "width": None, "height": None, "tags": "[]", "description": None,
        "visible_text": None, "description_status": None, "variant_status": None,
        "page_count": None, "source_url": None, "domain": None,
        "created_at": "2026-01-01T00:00:00+00:00", "content_created_at": None}
    row.update(extra)
    return row


class FakeClient:
    """The API calls the filesystem core and the views make, answered from memory."""

    def __init__(self) -> None:
        self.tag_updates: list[tuple[str, list[str]]] = []
        self.families = ["red", "blue"]
        self.limiter = RateLimiter(None)

    async def update_file(self, file_id: str, **fields: Any) -> None:
        self.tag_updates.append((file_id, fields["tags"]))

    async def color_families(self) -> list[Any]:
        return [SimpleNamespace(name=n) for n in self.families]


class KernelRecorder:
    """The kernel's notification calls, recorded (for fs.notify.KernelCalls)."""

    def __init__(self) -> None:
        self.entries: list[tuple[int, bytes, int]] = []
        self.inodes: list[tuple[int, bool]] = []

    def invalidate_inode(self, inode: int, attr_only: bool) -> None:
        self.inodes.append((inode, attr_only))

    def invalidate_entry_async(self, parent: int, name: bytes, deleted: int) -> None:
        self.entries.append((parent, name, deleted))

    def invalidate_entry(self, parent: int, name: bytes, deleted: int) -> None:
        self.entries.append((parent, name, deleted))


def folder_item(folder_id: str, name: str, parent_id: str | None = None) -> dict[str, Any]:
    return {"id": folder_id, "name": name, "parent_id": parent_id, "file_count": 0,
            "created_at": "2026-01-01T00:00:00+00:00", "updated_at": "2026-01-01T00:00:00+00:00"}


def place(store: Any, folders: dict[str, str], files: dict[str, list[dict[str, Any]]]) -> None:
    """A crawled library in the store: folders (id → name, at the root), files by
    folder key ('' the root), every listing complete, the crawl over."""
    with store.transaction():
        store.upsert_folders([folder_item(fid, name) for fid, name in folders.items()])
        for key, rows in files.items():
            store.upsert_files(rows)
            store.place_files([r["id"] for r in rows], key)
        for key in {"", *folders, *files}:
            store.rename_dir(key)
            store.set_listing(key, True, len(files.get(key, [])))
    store.start_crawl()
    with store.transaction():
        store.end_crawl()
