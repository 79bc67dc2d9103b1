"""The one exception hierarchy for everything the Aionvision API can answer.

HTTP failures become these exceptions here, in the API client, and nowhere
else; the filesystem adapter turns them into errnos and the CLI into one line
and an exit code. Messages never contain the API key (the client never puts
it anywhere but the Authorization header).

    ApiError                      base; .status, .code, .message, .request_id
    ├── TransientError            worth retrying as is
    │   ├── NetworkError          connection refused/reset, truncated body
    │   │   └── ApiTimeout        no answer in time
    │   ├── ServerError           5xx
    │   └── RateLimited           429; .retry_after seconds
    ├── AuthError                 401: missing, malformed or unknown key
    ├── Forbidden                 403 (also a tampered or expired blob URL)
    ├── NotFound                  404
    ├── Conflict                  409: sibling name clash, concurrent change
    ├── ValidationFailed          400/413/422; .errors (the `detail` list)
    │   └── PayloadTooLarge       413: over 100 MB, or too many batch files
    ├── QuotaExceeded             402, or a usage/storage quota code
    └── AmbiguousUpload           an upload may or may not have landed
"""

from __future__ import annotations

from typing import Any

import msgspec


class ApiError(Exception):
    """An answer from the API (or its absence) that is not the one asked for."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
        details: Any = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.request_id = request_id
        self.details = details

    def __str__(self) -> str:
        parts = [self.message]
        if self.status is not None:
            parts.append(f"HTTP {self.status}")
        if self.code:
            parts.append(self.code)
        if self.request_id:
            parts.append(f"request_id={self.request_id}")
        return " | ".join(parts) if len(parts) > 1 else self.message


class TransientError(ApiError):
    """The same request may well succeed if sent again later."""


class NetworkError(TransientError):
    """The exchange broke off: refused, reset, or a truncated body.

    `not_sent`: the connection never opened, so the request cannot have been
    delivered (safe to send again even when it changes state)."""

    def __init__(self, message: str, *, not_sent: bool = False, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.not_sent = not_sent


class ApiTimeout(NetworkError):
    """No answer arrived in time."""


class ServerError(TransientError):
    """The service failed (5xx)."""


class RateLimited(TransientError):
    """Too many requests for the plan; wait `retry_after` seconds."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class AuthError(ApiError):
    """The key is missing, malformed, expired or unknown."""


class Forbidden(ApiError):
    """The key may not do this, or a presigned URL was tampered with or expired."""


class NotTheObject(ApiError):
    """A storage URL answered with another object than the one expected (its total
    size or content type differ): e.g. a list item's `full_url` that is a rendition,
    not the original. Raised before any byte of it is kept."""


class NotFound(ApiError):
    """No such object in this workspace (or it was deleted)."""


class Conflict(ApiError):
    """A sibling already has this name, or the object changed meanwhile."""


class ValidationFailed(ApiError):
    """The request broke a rule of the API; `errors` holds the 422 `detail` list."""

    def __init__(self, message: str, *, errors: list[dict[str, Any]] | None = None, **kw: Any):
        super().__init__(message, **kw)
        self.errors = errors or []


class PayloadTooLarge(ValidationFailed):
    """The upload exceeds 100 MB, or a batch exceeds the plan's file count."""


class QuotaExceeded(ApiError):
    """The plan's upload, storage or usage quota is exhausted."""


class AmbiguousUpload(ApiError):
    """An upload broke off after it was sent and its fate cannot be proven.

    Raised instead of blindly re-sending (which could store the file twice);
    the upload journal resolves it by listing recent files.
    """


_QUOTA_CODES = frozenset(
    {"STORAGE_QUOTA_EXCEEDED", "USAGE_LIMIT_EXCEEDED", "QUOTA_EXCEEDED", "PAYMENT_REQUIRED"}
)


class _Envelope(msgspec.Struct):
    code: str | None = None
    message: str | None = None
    details: Any = None


def _parse_body(body: bytes) -> tuple[str | None, str | None, Any, str | None, list | None]:
    """Read both error shapes: the envelope (nested or flat) and the 422 `detail` list.

    Returns (code, message, details, request_id, validation_errors).
    """
    try:
        doc = msgspec.json.decode(body)
    except msgspec.DecodeError:
        text = body[:200].decode("utf-8", "replace").strip()
        return None, text or None, None, None, None
    if not isinstance(doc, dict):
        return None, None, None, None, None
    request_id = doc.get("request_id")
    err = doc.get("error")
    if isinstance(err, dict):  # {"error": {code, message, details}, "request_id"}
        env = msgspec.convert(err, _Envelope, strict=False)
        return env.code, env.message, env.details, request_id, None
    if isinstance(err, str):  # {"error", "message", "details"}
        return err, doc.get("message"), doc.get("details"), request_id, None
    detail = doc.get("detail")
    if isinstance(detail, list):  # FastAPI validation shape
        msgs = []
        for item in detail[:5]:
            if isinstance(item, dict):
                loc = ".".join(str(p) for p in item.get("loc", []) if p not in ("body", "query"))
                msgs.append(f"{loc}: {item.get('msg')}" if loc else str(item.get("msg")))
        return "VALIDATION_ERROR", "; ".join(msgs) or "validation error", None, request_id, detail
    if isinstance(detail, str):
        return None, detail, None, request_id, None
    return None, doc.get("message"), None, request_id, None


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds form; dates are rare here)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def error_from_response(
    status: int, body: bytes, headers: dict[str, str] | Any, what: str
) -> ApiError:
    """Map one failed HTTP answer to the hierarchy above.

    `what` names the operation ("GET /folders") so the message says what failed.
    """
    code, message, details, request_id, verrors = _parse_body(body)
    request_id = request_id or headers.get("x-request-id")
    text = f"{what}: {message or 'HTTP ' + str(status)}"
    kw: dict[str, Any] = {"status": status, "code": code, "request_id": request_id,
                          "details": details}
    if status == 429:
        return RateLimited(text, retry_after=parse_retry_after(headers.get("retry-after")), **kw)
    if status == 401:
        return AuthError(text, **kw)
    if status == 402 or (code or "").upper() in _QUOTA_CODES:
        return QuotaExceeded(text, **kw)
    if status == 403:
        return Forbidden(text, **kw)
    if status == 404:
        return NotFound(text, **kw)
    if status == 409:
        return Conflict(text, **kw)
    if status == 413:
        return PayloadTooLarge(text, errors=verrors, **kw)
    if status in (400, 415, 422):
        return ValidationFailed(text, errors=verrors, **kw)
    if status >= 500:
        return ServerError(text, **kw)
    return ApiError(text, **kw)
