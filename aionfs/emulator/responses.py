"""The API's answer shapes and FastAPI-style request validation.

Three error shapes, as the service uses them:
* envelope — `{"error": {code, message, details}, "request_id"}` (most endpoints);
* flat     — `{"error", "message", "details"}` (the user-files endpoints);
* validation — 422 `{"detail": [{loc, msg, type}]}` (bad parameters or bodies).
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

_enc = msgspec.json.Encoder()


def request_id(request: Request) -> str:
    rid = request.scope.setdefault("state", {}).get("request_id")
    if rid is None:
        rid = request.scope["state"]["request_id"] = str(uuid.uuid4())
    return rid  # type: ignore[no-any-return]


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None
                  ) -> Response:
    return Response(_enc.encode(data), status_code=status, media_type="application/json",
                    headers=headers)


class ApiFailure(Exception):
    """Raised by handlers; rendered in the shape the endpoint uses."""

    def __init__(self, status: int, code: str, message: str, *, details: Any = None,
                 flat: bool = False, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.details, self.flat, self.headers = details, flat, headers

    def render(self, request: Request) -> Response:
        rid = request_id(request)
        if self.flat:
            body: dict[str, Any] = {"error": self.code, "message": self.message,
                                    "details": self.details}
        else:
            body = {"error": {"code": self.code, "message": self.message,
                              "details": self.details}, "request_id": rid}
        return json_response(body, self.status, self.headers)


class Invalid(Exception):
    """One or more validation errors; rendered as the 422 `detail` list."""

    def __init__(self, *errors: tuple[list[Any], str, str]) -> None:
        super().__init__(errors[0][1] if errors else "invalid")
        self.errors = list(errors)

    def render(self) -> Response:
        return json_response({"detail": [{"loc": loc, "msg": msg, "type": typ}
                                         for loc, msg, typ in self.errors]}, 422)


# -- parameter readers -------------------------------------------------------


def check_uuid(value: str, loc: list[Any]) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise Invalid((loc, "Input should be a valid UUID", "uuid_parsing")) from None


def q_int(request: Request, name: str, default: int | None, *, ge: int | None = None,
          le: int | None = None, required: bool = False) -> int | None:
    raw = request.query_params.get(name)
    loc = ["query", name]
    if raw is None:
        if required:
            raise Invalid((loc, "Field required", "missing"))
        return default
    try:
        val = int(raw)
    except ValueError:
        raise Invalid((loc, "Input should be a valid integer", "int_parsing")) from None
    if ge is not None and val < ge:
        raise Invalid((loc, f"Input should be greater than or equal to {ge}", "greater_than_equal"))
    if le is not None and val > le:
        raise Invalid((loc, f"Input should be less than or equal to {le}", "less_than_equal"))
    return val


def q_bool(request: Request, name: str) -> bool | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    low = raw.lower()
    if low in ("true", "1", "yes", "on"):
        return True
    if low in ("false", "0", "no", "off"):
        return False
    raise Invalid((["query", name], "Input should be a valid boolean", "bool_parsing"))


def q_datetime(request: Request, name: str) -> datetime | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    try:
        dt = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise Invalid((["query", name], "Input should be a valid datetime",
                       "datetime_parsing")) from None
    if dt.tzinfo is None:
        from datetime import UTC
        dt = dt.replace(tzinfo=UTC)
    return dt


def q_choice(request: Request, name: str, choices: tuple[str, ...], default: str) -> str:
    raw = request.query_params.get(name, default)
    if raw not in choices:
        raise Invalid((["query", name], f"Input should be {' or '.join(map(repr, choices))}",
                       "enum"))
    return raw


async def json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        doc = msgspec.json.decode(raw) if raw else None
    except msgspec.DecodeError:
        raise Invalid((["body"], "JSON decode error", "json_invalid")) from None
    if not isinstance(doc, dict):
        raise Invalid((["body"], "Input should be a valid dictionary", "dict_type"))
    return doc


def field(doc: dict[str, Any], name: str, kind: type | tuple[type, ...], *,
          required: bool = False, default: Any = None, nullable: bool = True,
          check: Callable[[Any], str | None] | None = None) -> Any:
    """Read and check one JSON body field (FastAPI-like messages)."""
    loc = ["body", name]
    if name not in doc:
        if required:
            raise Invalid((loc, "Field required", "missing"))
        return default
    val = doc[name]
    if val is None:
        if nullable and not required:
            return None
        raise Invalid((loc, "Input should not be null", "none_forbidden"))
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if float in kinds and isinstance(val, int) and not isinstance(val, bool):
        val = float(val)
    if isinstance(val, bool) and bool not in kinds or not isinstance(val, kinds):
        raise Invalid((loc, f"Input should be a valid {kinds[0].__name__}", "type_error"))
    if isinstance(val, float) and not math.isfinite(val):
        raise Invalid((loc, "Input should be a finite number", "finite_number"))
    if check is not None:
        problem = check(val)
        if problem:
            raise Invalid((loc, problem, "value_error"))
    return val


def between(lo: float, hi: float) -> Callable[[Any], str | None]:
    return lambda v: None if lo <= v <= hi else f"Input should be between {lo} and {hi}"


def length(lo: int, hi: int) -> Callable[[Any], str | None]:
    return lambda v: None if lo <= len(v) <= hi else (
        f"Input should have between {lo} and {hi} items or characters")
