"""The Aionvision API client: httpx under trio, typed answers, one error hierarchy.

Every request passes through `_send`, which waits for the shared rate
limiter at the caller's priority, applies the retry policy, maps failures to
`aionfs.api.errors`, and logs one line. Bytes never come from the API host:
download and variant endpoints answer 302 to a presigned URL on a storage
host, which is fetched with a second HTTP client that has no Authorization
header at all, so the key cannot leak there even by a redirect.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import random
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

import httpx
import msgspec
import trio

from . import models as m
from .errors import (
    AmbiguousUpload,
    ApiError,
    ApiTimeout,
    NetworkError,
    RateLimited,
    ServerError,
    TransientError,
    ValidationFailed,
    error_from_response,
)
from .multipart import FileContent, Multipart
from .ratelimit import Priority, RateLimiter
from .retry import RetryPolicy, with_retries
from .settings import ApiSettings
from .transfer import BlobFetcher, Expected, answer_total

log = logging.getLogger(__name__)

T = TypeVar("T")

VARIANTS = ("tiny_64", "small_256", "medium_750", "large_1024", "original")
SORT_FIELDS = ("created_at", "content_created_at", "title", "size_bytes")
PAGE_LIMIT = 100
#: Presigned URLs live an hour; stop using them a little before.
PRESIGNED_LIFETIME = 3600.0 - 120.0
#: a URL a list item carried is used while its listing is younger than this (the
#: item does not say when its URLs expire; the service's last about an hour)
LISTED_URL_FRESH = PRESIGNED_LIFETIME - 600.0

_decoders: dict[type, msgspec.json.Decoder] = {}


def decode(body: bytes, model: type[T]) -> T:
    """Decode JSON bytes straight into a model (decoders are cached per type). The
    first answer of each model is also looked over for fields the model does not
    know (a service newer than this aionfs): logged once, never refused."""
    dec = _decoders.get(model)
    if dec is None:
        dec = _decoders[model] = msgspec.json.Decoder(model)
        _note_unknown_fields(body, model)
    try:
        return dec.decode(body)  # type: ignore[no-any-return]
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ApiError(f"unexpected answer from the API ({model.__name__}): {exc}") from exc


def _note_unknown_fields(body: bytes, model: Any) -> None:
    try:
        doc = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return  # (decode says what is wrong)
    found: set[str] = set()

    def walk(value: Any, kind: Any, where: str) -> None:
        fields = getattr(kind, "__struct_fields__", None)
        if fields is None or not isinstance(value, dict):
            return
        hints = msgspec.structs.fields(kind)
        found.update(f"{where}{k}" for k in value if k not in fields)
        for f in hints:
            inner = value.get(f.encode_name)
            for candidate in getattr(f.type, "__args__", ()) or (f.type,):
                if isinstance(inner, list) and inner:
                    walk(inner[0], getattr(candidate, "__args__", (candidate,))[0],
                         f"{where}{f.name}[].")
                else:
                    walk(inner, candidate, f"{where}{f.name}.")

    walk(doc, model, "")
    if found:
        log.info("the API answers fields this aionfs does not know (%s: %s); they are "
                 "ignored", getattr(model, "__name__", model), ", ".join(sorted(found)))


MAX_TITLE, MAX_TAGS, MAX_TAG_LEN = 255, 40, 50


def check_metadata(title: str | None, tags: Sequence[str] | None,
                   max_title: int = MAX_TITLE) -> None:
    """Refuse titles and tags the API would refuse, before spending a request."""
    problems = []
    if title is not None and len(title) > max_title:
        problems.append(f"a title has at most {max_title} characters")
    if tags is not None:
        if len(tags) > MAX_TAGS:
            problems.append(f"at most {MAX_TAGS} tags")
        if any(not t.strip() or len(t) > MAX_TAG_LEN or "," in t for t in tags):
            problems.append(f"tags are 1-{MAX_TAG_LEN} characters without commas")
    if problems:
        raise ValidationFailed("; ".join(problems), code="VALIDATION_ERROR")


def _iso(value: datetime | str | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return value.isoformat()


@dataclass(frozen=True)
class PresignedUrl:
    url: str
    expires_at: float  # time.time() scale

    @property
    def fresh(self) -> bool:
        return time.time() < self.expires_at


@dataclass
class Download:
    """An open byte stream from the storage host."""

    status: int
    #: Size of the whole object, from Content-Range or Content-Length.
    total_size: int | None
    #: First byte offset this stream starts at.
    offset: int
    _response: httpx.Response = field(repr=False)

    async def chunks(self, chunk_size: int | None = 256 * 1024, *, since: int | None = None
                     ) -> AsyncIterator[bytes]:
        """The body in pieces of `chunk_size` (None: as they arrive, saving a copy).

        With `since`, only the bytes from that object offset on: a host that
        ignored the Range header answers 200 with the whole object.
        """
        skip = 0 if since is None else since - self.offset
        try:
            async for chunk in self._response.aiter_bytes(chunk_size):
                if skip > 0:
                    chunk, skip = chunk[skip:], skip - len(chunk)
                    if not chunk:
                        continue
                yield chunk
        except httpx.HTTPError as exc:
            raise _map_transport_error(exc, "download") from exc


@dataclass(frozen=True)
class UploadItem:
    """One file for `upload_batch`."""

    filename: str
    content: bytes | FileContent  # (a file's: streamed from its descriptor, api/multipart.py)
    content_type: str = "application/octet-stream"


@dataclass
class ClientStats:
    requests: int = 0
    failures: int = 0
    retries: int = 0
    bytes_downloaded: int = 0
    last_success: float | None = None  # time.time()
    last_error: str | None = None
    last_failure: float | None = None  # time.time()
    #: False while the last attempt failed in transit or with a 5xx (the API is
    #: down or out of reach); an answer of any 2xx/4xx status makes it True again
    reachable: bool | None = None


def _map_transport_error(exc: httpx.HTTPError, what: str) -> ApiError:
    not_sent = isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout))
    cls = ApiTimeout if isinstance(exc, httpx.TimeoutException) else NetworkError
    return cls(f"{what}: {type(exc).__name__}: {exc or 'connection failed'}", not_sent=not_sent)


class AionClient:
    """Async client for one workspace (one API key)."""

    def __init__(
        self,
        settings: ApiSettings,
        *,
        limiter: RateLimiter | None = None,
        retry: RetryPolicy | None = None,
        event_hooks: dict[str, list[Any]] | None = None,
        unlimited: bool = False,
    ) -> None:
        self.settings = settings
        self.plan_source = "default"  # or the command line, …, or the service (use_plan)
        self.limiter = limiter or RateLimiter(None if unlimited else settings.rate_per_minute)
        self.retry = retry or RetryPolicy(max_attempts=settings.max_attempts)
        self.stats = ClientStats()
        #: called when the API answers after being out of reach (sleep, network loss)
        self.on_reachable: list[Callable[[], None]] = []
        self._rng = random.Random()
        timeout = httpx.Timeout(settings.timeout, connect=min(10.0, settings.timeout))
        headers = {
            "Authorization": f"Bearer {settings.api_key.reveal()}",
            "User-Agent": settings.user_agent,
            "Accept": "application/json",
        }
        self._api = httpx.AsyncClient(
            base_url=settings.base_url + "/",
            headers=headers,
            timeout=timeout,
            follow_redirects=False,
            event_hooks=event_hooks or {},
        )
        # The storage host gets no credentials of ours, ever.
        self._blob = httpx.AsyncClient(
            headers={"User-Agent": settings.user_agent}, timeout=timeout, follow_redirects=False
        )
        self._fetcher = BlobFetcher(settings.user_agent, settings.timeout)

    def __repr__(self) -> str:
        return f"AionClient({self.settings.base_url!r}, key={self.settings.api_key.masked()})"

    async def __aenter__(self) -> AionClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._api.aclose()
        await self._blob.aclose()
        self._fetcher.close()

    # -- the one path every request takes ----------------------------------

    async def _send(
        self,
        method: str,
        path: str,
        *,
        priority: Priority,
        idempotent: bool,
        ok: Sequence[int] = (200, 201),
        **kw: Any,
    ) -> httpx.Response:
        what = f"{method} /{path}"
        tries = 0

        async def attempt() -> httpx.Response:
            nonlocal tries
            tries += 1
            if tries > 1:
                self.stats.retries += 1
            await self.limiter.acquire(priority)
            started = time.monotonic()
            self.stats.requests += 1
            try:
                resp = await self._api.request(method, path, **kw)
            except httpx.HTTPError as exc:
                err = _map_transport_error(exc, what)
                self._note_failure(err)
                raise err from exc
            elapsed_ms = (time.monotonic() - started) * 1000
            level = logging.DEBUG if method == "GET" else logging.INFO
            log.log(level, "%s -> %d (%.0f ms, %s)", what, resp.status_code, elapsed_ms,
                    priority.name.lower())
            if resp.status_code in ok:
                self.stats.last_success = time.time()
                self._reached()
                return resp
            err = error_from_response(resp.status_code, resp.content, resp.headers, what)
            if isinstance(err, RateLimited):
                self.limiter.on_rate_limited(err.retry_after)
            self._note_failure(err)
            raise err

        return await with_retries(what, attempt, idempotent=idempotent, policy=self.retry,
                                  rng=self._rng)

    def _reached(self) -> None:
        was = self.stats.reachable
        self.stats.reachable = True
        if was is False:
            log.info("the API answers again")
            for callback in self.on_reachable:
                callback()

    def _note_failure(self, err: ApiError) -> None:
        self.stats.failures += 1
        self.stats.last_error = str(err)
        self.stats.last_failure = time.time()
        if isinstance(err, (NetworkError, ServerError)):
            self.stats.reachable = False
        else:  # the API answered, if only to refuse
            self._reached()

    async def _json(self, model: type[T], method: str, path: str, *,
                    priority: Priority = Priority.INTERACTIVE, idempotent: bool | None = None,
                    **kw: Any) -> T:
        if idempotent is None:
            idempotent = method in ("GET", "PUT", "DELETE", "PATCH")
        resp = await self._send(method, path, priority=priority, idempotent=idempotent, **kw)
        return decode(resp.content, model)

    # -- folders -----------------------------------------------------------

    async def folder_tree(self, *, priority: Priority = Priority.INTERACTIVE) -> list[m.Folder]:
        return (await self._json(m.FolderTree, "GET", "folders", priority=priority)).folders

    async def get_folder(self, folder_id: str, *, priority: Priority = Priority.INTERACTIVE
                         ) -> m.FolderContents:
        return await self._json(m.FolderContents, "GET", f"folders/{folder_id}",
                                priority=priority, params={"limit": 1})

    async def create_folder(self, name: str, parent_id: str | None = None) -> m.Folder:
        # Not idempotent: a retry after a lost answer would meet 409 on its own folder.
        return await self._json(m.Folder, "POST", "folders",
                                json={"name": name, "parent_id": parent_id})

    async def rename_folder(self, folder_id: str, name: str) -> m.Folder:
        return await self._json(m.Folder, "PATCH", f"folders/{folder_id}", json={"name": name})

    async def move_folder(self, folder_id: str, new_parent_id: str | None) -> m.Folder:
        # Moving to the same place twice is harmless: safe to retry.
        return await self._json(m.Folder, "POST", f"folders/{folder_id}/move", idempotent=True,
                                json={"new_parent_id": new_parent_id})

    async def delete_folder(self, folder_id: str, mode: str = "move_to_parent"
                            ) -> m.FolderDeleted:
        if mode not in ("move_to_parent", "delete_all"):
            raise ValueError(f"unknown delete mode {mode!r}")
        return await self._json(m.FolderDeleted, "DELETE", f"folders/{folder_id}",
                                params={"mode": mode})

    async def move_files(self, file_ids: Sequence[str], folder_id: str | None,
                         *, priority: Priority = Priority.INTERACTIVE) -> m.FilesMoved:
        """Move any number of files; sent in requests of at most 100 ids."""
        moved = total = 0
        for chunk in _chunks(file_ids, 100):
            res = await self._json(m.FilesMoved, "POST", "folders/move-files", idempotent=True,
                                   priority=priority,
                                   json={"file_ids": chunk, "folder_id": folder_id})
            moved += res.moved
            total += res.total_requested
        return m.FilesMoved(moved=moved, total_requested=total)

    # -- files -------------------------------------------------------------

    async def list_files(
        self,
        *,
        limit: int = PAGE_LIMIT,
        offset: int = 0,
        folder_id: str | None = None,
        search: str | None = None,
        search_mode: str | None = None,
        tags: Sequence[str] | None = None,
        media_types: Sequence[str] | None = None,
        ids: Sequence[str] | None = None,
        has_description: bool | None = None,
        date_from: datetime | str | None = None,
        date_to: datetime | str | None = None,
        sort_by: str | None = None,
        sort_order: str | None = None,
        priority: Priority = Priority.INTERACTIVE,
    ) -> m.FilePage:
        """One page of `GET /user-files`. Items carry no folder id: filter by folder."""
        if not 1 <= limit <= PAGE_LIMIT:
            raise ValueError(f"limit must be 1..{PAGE_LIMIT}")
        if sort_by is not None and sort_by not in SORT_FIELDS:
            raise ValueError(f"sort_by must be one of {SORT_FIELDS}")
        params: dict[str, Any] = {"limit": limit, "offset": offset}
        optional = {
            "folder_id": folder_id, "search": search, "search_mode": search_mode,
            "tags": list(tags) if tags else None,
            "media_types": list(media_types) if media_types else None,
            "ids": list(ids) if ids else None,
            "has_description": None if has_description is None else str(has_description).lower(),
            "date_from": _iso(date_from), "date_to": _iso(date_to),
            "sort_by": sort_by, "sort_order": sort_order,
        }
        params.update({k: v for k, v in optional.items() if v is not None})
        return await self._json(m.FilePage, "GET", "user-files", priority=priority,
                                params=params)

    async def iter_file_pages(self, *, page_size: int = PAGE_LIMIT, start_offset: int = 0,
                              **filters: Any) -> AsyncIterator[m.FilePage]:
        """Every page of a listing, following `has_more`."""
        offset = start_offset
        while True:
            page = await self.list_files(limit=page_size, offset=offset, **filters)
            yield page
            if not page.has_more or not page.files:
                return
            offset += len(page.files)

    async def iter_files(self, **filters: Any) -> AsyncIterator[m.UserFile]:
        async for page in self.iter_file_pages(**filters):
            for item in page.files:
                yield item

    async def get_file(self, file_id: str, *, priority: Priority = Priority.INTERACTIVE
                       ) -> m.FileDetails:
        return await self._json(m.FileDetails, "GET", f"user-files/{file_id}", priority=priority)

    async def update_file(self, file_id: str, *, title: str | None = None,
                          tags: Sequence[str] | None = None,
                          priority: Priority = Priority.INTERACTIVE) -> m.FileUpdated:
        check_metadata(title, tags)
        body: dict[str, Any] = {}
        if title is not None:
            body["title"] = title
        if tags is not None:
            body["tags"] = list(tags)
        if not body:
            raise ValueError("update_file needs a title or tags")
        return await self._json(m.FileUpdated, "PATCH", f"user-files/{file_id}", json=body,
                                priority=priority)

    async def delete_file(self, file_id: str, *, priority: Priority = Priority.INTERACTIVE
                          ) -> m.FileDeleted:
        return await self._json(m.FileDeleted, "DELETE", f"user-files/{file_id}",
                                priority=priority)

    async def batch_delete(self, file_ids: Sequence[str]) -> m.BatchDeleted:
        """Soft-delete any number of files, 100 per request, results merged."""
        out = m.BatchDeleted(summary={"total": 0, "deleted": 0, "skipped": 0, "failed": 0})
        for chunk in _chunks(file_ids, 100):
            res = await self._json(m.BatchDeleted, "POST", "user-files/batch-delete",
                                   idempotent=True, json={"file_ids": chunk})
            out.deleted += res.deleted
            out.skipped += res.skipped
            out.failed += res.failed
            for k in out.summary:
                out.summary[k] += res.summary.get(k, 0)
        return out

    async def create_link(self, url: str, *, title: str | None = None,
                          tags: Sequence[str] | None = None,
                          folder_id: str | None = None) -> m.LinkCreated:
        check_metadata(title, tags, max_title=500)
        body = {"url": url, "title": title, "tags": list(tags) if tags else None,
                "folder_id": folder_id}
        return await self._json(m.LinkCreated, "POST", "user-files/links", json=body)

    # -- bytes -------------------------------------------------------------

    async def presigned_url(self, file_id: str, variant: str | None = None, *,
                            priority: Priority = Priority.INTERACTIVE) -> PresignedUrl:
        """Resolve the 302 of download/variant to the storage URL (one API request)."""
        if variant is not None and variant not in VARIANTS:
            raise ValueError(f"unknown variant {variant!r}; one of {VARIANTS}")
        path = (f"user-files/{file_id}/download" if variant is None
                else f"user-files/{file_id}/variant/{variant}")
        resp = await self._send("GET", path, priority=priority, idempotent=True, ok=(302, 303,
                                                                                    307))
        location = resp.headers.get("location")
        if not location:
            raise ApiError(f"GET /{path}: redirect without a Location", status=resp.status_code)
        url = str(resp.url.join(location))
        return PresignedUrl(url=url, expires_at=time.time() + PRESIGNED_LIFETIME)

    @asynccontextmanager
    async def open_blob(self, url: str, *, start: int = 0, end: int | None = None
                        ) -> AsyncIterator[Download]:
        """Stream bytes [start, end] (inclusive, like HTTP) from a presigned URL."""
        headers = {}
        if start or end is not None:
            headers["Range"] = f"bytes={start}-{'' if end is None else end}"
        what = "GET blob"
        try:
            async with self._blob.stream("GET", url, headers=headers) as resp:
                if resp.status_code not in (200, 206):
                    body = await resp.aread()
                    raise error_from_response(resp.status_code, body, resp.headers, what)
                total = answer_total(resp.status_code, resp.headers.get("content-range"),
                                     resp.headers.get("content-length"))
                offset = start if resp.status_code == 206 else 0
                dl = Download(status=resp.status_code, total_size=total, offset=offset,
                              _response=resp)
                yield dl
        except httpx.HTTPError as exc:
            raise _map_transport_error(exc, what) from exc

    async def download_bytes(self, file_id: str, *, variant: str | None = None,
                             start: int = 0, end: int | None = None,
                             priority: Priority = Priority.INTERACTIVE) -> bytes:
        """The whole object (or range) in memory, resuming after broken transfers."""
        url = await self.presigned_url(file_id, variant, priority=priority)
        return await self.blob_bytes(url.url, start=start, end=end, what=file_id)

    async def blob_bytes(self, url: str, *, start: int = 0, end: int | None = None,
                         what: str = "a presigned URL") -> bytes:
        """The bytes behind a presigned URL, in memory (no API request: storage only)."""
        buf = bytearray()
        attempts = 0
        while True:
            try:
                async with self.open_blob(url, start=start + len(buf), end=end) as dl:
                    async for chunk in dl.chunks(None, since=start + len(buf)):
                        buf += chunk
                    want = (end + 1 - start) if end is not None else (
                        None if dl.total_size is None else dl.total_size - start)
                    if want is None or len(buf) >= want:
                        self.stats.bytes_downloaded += len(buf)
                        return bytes(buf)
                    raise NetworkError("download: body ended early")
            except TransientError as exc:
                attempts += 1
                if attempts >= self.retry.max_attempts:
                    raise
                log.info("download of %s broke off at %d bytes, resuming: %s",
                         what, start + len(buf), exc)
                await trio.sleep(self.retry.delay(attempts, exc, self._rng))

    async def fetch_into(self, url: str, fd: int, *, start: int, end: int,
                         progress: Callable[[int], None], expect: Expected | None = None
                         ) -> int:
        """Write bytes [start, end] of a presigned URL into `fd` at their own offsets.

        The content cache's transfer: one attempt, no retries (the caller decides,
        e.g. with a fresh URL after a 403). `progress(pos)` runs in the trio thread
        as bytes up to `pos` are written. Returns the position after the last byte
        written (end + 1 when complete). A worker thread receives the body straight
        into the file (`transfer.py`: half the CPU of async httpx, which the daemon
        shares with FUSE requests). With `expect`, the answer must be that object
        (NotTheObject otherwise, before a byte is written).
        """
        last = start

        def counted(pos: int) -> None:
            nonlocal last
            self.stats.bytes_downloaded += pos - last
            last = pos
            progress(pos)

        return await self._fetcher.fetch_into(url, fd, start, end, counted, expect)

    # -- uploads -----------------------------------------------------------

    def _upload_fields(self, title: str | None, tags: Iterable[str] | None,
                       skip_duplicates: bool, auto_describe: bool) -> dict[str, str]:
        data = {"skip_duplicates": str(skip_duplicates).lower(),
                "auto_describe": str(auto_describe).lower()}
        if title is not None:
            data["title"] = title
        if tags:
            data["tags"] = ",".join(tags)
        return data

    async def upload_file(
        self,
        content: bytes | FileContent,
        filename: str,
        *,
        content_type: str = "application/octet-stream",
        title: str | None = None,
        tags: Sequence[str] | None = None,
        skip_duplicates: bool = False,
        auto_describe: bool = True,
        known_new: bool | None = None,
        priority: Priority = Priority.UPLOAD,
    ) -> m.UploadResult:
        """Upload one file with `POST /user-files/upload/stream`.

        An upload that broke off after it was sent may have landed. It is
        re-sent only when that cannot store the file twice: if the content's
        hash is still unknown to the workspace (one duplicate check), or if
        the caller knows the hash was new before (`known_new`), in which case
        the re-send uses skip_duplicates to learn the id of what landed.
        Otherwise `AmbiguousUpload` is raised for the caller to resolve.
        """
        check_metadata(title, tags)
        data = self._upload_fields(title, tags, skip_duplicates, auto_describe)
        sha = (content.sha256 if isinstance(content, FileContent)
               else hashlib.sha256(content).hexdigest())

        async def send(fields: dict[str, str]) -> m.UploadResult:
            body = Multipart(fields, [("file", filename, content, content_type)])
            return await self._json(
                m.UploadResult, "POST", "user-files/upload/stream", priority=priority,
                idempotent=False, content=body, headers=body.headers)

        try:
            return await send(data)
        except TransientError as first:
            log.info("upload of %r broke off (%s); checking whether it landed", filename, first)
            if known_new is None:
                dup = await self.check_duplicates([sha], priority=priority)
                if sha not in dup.duplicates:
                    return await send(data)
                raise AmbiguousUpload(
                    f"upload of {filename!r} broke off and identical content exists; "
                    "cannot tell whether it was this upload", details={"sha256": sha},
                ) from first
            if known_new:
                return await send({**data, "skip_duplicates": "true"})
            raise AmbiguousUpload(f"upload of {filename!r} broke off",
                                  details={"sha256": sha}) from first

    async def upload_batch(
        self,
        items: Sequence[UploadItem],
        *,
        tags: Sequence[str] | None = None,
        skip_duplicates: bool = False,
        auto_describe: bool = True,
        priority: Priority = Priority.UPLOAD,
    ) -> tuple[m.BatchUploadResult, list[m.SessionResultItem]]:
        """Upload several files in one `stream-batch` request.

        Returns the batch answer and one result per accepted file (fetched from
        the session when the answer has no immediate results, as for > 5 files).
        Not retried after it was sent: the caller resolves ambiguity per file.
        """
        if not items:
            raise ValueError("upload_batch needs at least one file")
        check_metadata(None, tags)
        body = Multipart(self._upload_fields(None, tags, skip_duplicates, auto_describe),
                         [("files", it.filename, it.content, it.content_type) for it in items])
        batch = await self._json(m.BatchUploadResult, "POST", "user-files/upload/stream-batch",
                                 priority=priority, idempotent=False, content=body,
                                 headers=body.headers)
        if batch.immediate_results is not None:
            results = [m.SessionResultItem(image_id=r.image_id, filename=r.filename,
                                           status=r.status, error_message=r.error)
                       for r in batch.immediate_results]
        else:
            results = [r async for r in self.iter_session_results(batch.session_id,
                                                                  priority=priority)]
        return batch, results

    async def iter_session_results(self, session_id: str, *,
                                   priority: Priority = Priority.UPLOAD
                                   ) -> AsyncIterator[m.SessionResultItem]:
        offset = 0
        while True:
            page = await self._json(m.SessionResults, "GET",
                                    f"uploads/sessions/{session_id}/results",
                                    priority=priority, params={"offset": offset, "limit": 500})
            for item in page.results:
                yield item
            if not page.has_more or not page.results:
                return
            offset += len(page.results)

    async def check_duplicates(self, hashes: Sequence[str], *,
                               priority: Priority = Priority.UPLOAD) -> m.DuplicateCheck:
        """Which SHA-256 hashes the workspace already holds (250 per request)."""
        dup: list[str] = []
        uniq: list[str] = []
        for chunk in _chunks(hashes, 250):
            res = await self._json(m.DuplicateCheck, "POST", "uploads/check-duplicates",
                                   idempotent=True, priority=priority, json={"hashes": chunk})
            dup += res.duplicates
            uniq += res.unique
        return m.DuplicateCheck(duplicates=dup, unique=uniq)

    async def plan_name(self, *, priority: Priority = Priority.INTERACTIVE) -> str | None:
        """The key's plan as the service names it (`GET /usage/summary` → `plan.name`,
        e.g. "Professional"), lowercased; None if the answer names none."""
        resp = await self._send("GET", "usage/summary", priority=priority, idempotent=True,
                                params={"period": "month"})
        try:
            name = json.loads(resp.content)["plan"]["name"]
        except (ValueError, KeyError, TypeError):
            return None
        return name.strip().lower() if isinstance(name, str) else None

    def use_plan(self, plan: str, source: str) -> None:
        """Work within this plan from now on (its request rate and batch size), unless
        a rate was given explicitly. `source`: where it came from, for status."""
        self.settings = dataclasses.replace(self.settings, plan=plan)
        self.plan_source = source
        if self.limiter.configured is not None and self.settings.requests_per_minute is None:
            self.limiter.set_rate(self.settings.rate_per_minute)

    async def quota_check(self, file_count: int = 1, *,
                          priority: Priority = Priority.UPLOAD) -> m.Quota:
        return await self._json(m.Quota, "GET", "uploads/quota-check", priority=priority,
                                params={"file_count": file_count})

    # -- colors, search, documents -------------------------------------------

    async def color_families(self) -> list[m.ColorFamily]:
        return await self._json(list[m.ColorFamily], "GET", "colors/families")  # type: ignore[arg-type]

    async def image_colors(self, image_id: str, *, priority: Priority = Priority.INTERACTIVE
                           ) -> m.ImageColors:
        return await self._json(m.ImageColors, "GET", f"colors/images/{image_id}",
                                priority=priority)

    async def color_search(
        self,
        *,
        hex_code: str | None = None,
        color_name: str | None = None,
        color_family: str | None = None,
        delta_e_threshold: float | None = None,
        min_percentage: float | None = None,
        limit: int = 50,
        offset: int = 0,
        priority: Priority = Priority.INTERACTIVE,
    ) -> m.ColorSearchPage:
        if not (hex_code or color_name or color_family):
            raise ValueError("color_search needs a hex code, a color name or a family")
        body: dict[str, Any] = {"limit": limit, "offset": offset}
        for key, val in (("hex_code", hex_code), ("color_name", color_name),
                         ("color_family", color_family),
                         ("delta_e_threshold", delta_e_threshold),
                         ("min_percentage", min_percentage)):
            if val is not None:
                body[key] = val
        return await self._json(m.ColorSearchPage, "POST", "colors/search", idempotent=True,
                                priority=priority, json=body)

    async def search_images(self, query: str, *, limit: int = 50, folder_id: str | None = None,
                            image_ids: Sequence[str] | None = None,
                            priority: Priority = Priority.INTERACTIVE) -> m.ImageSearch:
        """Semantic image search (costs AI tokens and seconds of latency)."""
        body: dict[str, Any] = {"query": query, "limit": limit}
        if folder_id:
            body["folder_id"] = folder_id
        if image_ids:
            body["image_ids"] = list(image_ids)
        return await self._json(m.ImageSearch, "POST", "agents/search/images", idempotent=True,
                                priority=priority, json=body)

    async def document_text(self, document_id: str, *,
                            priority: Priority = Priority.INTERACTIVE) -> m.DocumentText:
        return await self._json(m.DocumentText, "GET", f"documents/{document_id}/text",
                                priority=priority)

    def statistics(self) -> dict[str, Any]:
        return {"client": self.stats.__dict__.copy(), "limiter": self.limiter.statistics()}


def _chunks(seq: Sequence[str], size: int) -> Iterable[list[str]]:
    seq = list(seq)
    if not seq:
        raise ValueError("empty id list")
    for i in range(0, len(seq), size):
        yield seq[i:i + size]

