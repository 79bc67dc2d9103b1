"""Traces a user can send: how the service answered, without any of their data.

`aionfs mount --trace FILE` (or the `trace` setting) appends one JSON line per
API exchange: time, method, the path as a template (ids replaced by `{id}`),
the query's parameter names, status, milliseconds, body sizes, the headers
that describe the exchange, and the JSON bodies' *shapes*: keys and types,
never values. A deviation of the real service (a missing field, a new type,
an unexpected status) can be diagnosed from a user's report of this file.

The privacy rule (docs/operations.md#traces), tested: no API key or other
credential (Authorization, cookies, and every header not listed in
`HEADERS` are left out), no presigned query string (a `Location`'s query is
cut off), no query or path value (only parameter names; every path segment
that is not a fixed word of the API becomes `{id}`), no title, tag, text or
file content (bodies only as shapes; multipart bodies only as sizes), and
object keys that are not plain field names (ids, hashes, anything with a
space or a dot) become `{key}`.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import parse_qsl, urlsplit

import httpx

from .hooks import ExchangeHooks

#: headers worth a report; all others (Authorization, cookies, anything unknown) are left out
HEADERS = frozenset({"content-type", "content-length", "retry-after", "x-request-id",
                     "x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset",
                     "location", "server", "date", "user-agent", "accept"})
#: a path segment kept as it is: lower-case words of the API (`user-files`, `download`)
_WORD = re.compile(r"^[a-z][a-z-]*[a-z]$|^[a-z]$|^v\d+$")
#: an object key kept as it is: a plain field name
_FIELD = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_HEXISH = re.compile(r"^[0-9a-f_-]{16,}$", re.I)
_BOUNDARY = re.compile(r"\s*;\s*boundary\s*=[^;]*", re.I)
_LIST_SAMPLE = 5  # items of a list whose shapes are merged


def path_template(path: str) -> str:
    return "/".join(seg if not seg or _WORD.match(seg) else "{id}" for seg in path.split("/"))


def shape(value: Any) -> Any:
    """Keys and types of a JSON value, never its values."""
    if isinstance(value, dict):
        return {(k if _FIELD.match(k) and not _HEXISH.match(k) else "{key}"): shape(v)
                for k, v in value.items()}
    if isinstance(value, list):
        shapes: list[Any] = []
        for item in value[:_LIST_SAMPLE]:
            s = shape(item)
            if s not in shapes:
                shapes.append(s)
        return {"list": len(value), "of": shapes}
    if value is None:
        return "null"
    return {bool: "boolean", int: "integer", float: "number", str: "string"}.get(
        type(value), type(value).__name__)


def _headers(headers: httpx.Headers) -> dict[str, str]:
    out = {}
    for name, value in headers.items():
        name = name.lower()
        if name not in HEADERS:
            continue
        if name == "location":  # where a download redirects: the host and path only
            parts = urlsplit(value)
            value = f"{parts.scheme}://{parts.netloc}{path_template(parts.path)}"
        elif name == "content-type":  # a multipart boundary is random noise: the type only
            value = _BOUNDARY.sub("", value)
        out[name] = value
    return out


def _body_shape(content_type: str, body: bytes) -> Any:
    if not body:
        return None
    if "json" in content_type:
        try:
            return shape(json.loads(body))
        except ValueError:
            return "not JSON"
    return f"{content_type.split(';')[0] or 'bytes'}"


class Trace(ExchangeHooks):
    """The httpx event hooks that write the trace file."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        self._out: TextIO | None = None

    def close(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None

    def exchange(self, response: httpx.Response, ms: float | None) -> None:
        request = response.request
        ctype = request.headers.get("content-type", "")
        request_shape = None
        if "json" in ctype:  # (uploads are multipart: their size only)
            try:
                request_shape = _body_shape(ctype, request.content)
            except httpx.RequestNotRead:
                request_shape = "streamed"
        url = urlsplit(str(request.url))
        record = {
            "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "method": request.method,
            "path": path_template(url.path),
            "query": sorted({k for k, _ in parse_qsl(url.query, keep_blank_values=True)}),
            "status": response.status_code,
            "ms": None if ms is None else round(ms, 1),
            "request_bytes": int(request.headers.get("content-length", 0) or 0),
            "response_bytes": len(response.content),
            "request_headers": _headers(request.headers),
            "response_headers": _headers(response.headers),
            "request_shape": request_shape,
            "response_shape": _body_shape(response.headers.get("content-type", ""),
                                          response.content),
        }
        self._write(record)

    def _write(self, record: dict[str, Any]) -> None:
        if self._out is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._out = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 (kept open)
        self._out.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._out.flush()
