"""Both error shapes of the API map to the documented exception hierarchy."""

from __future__ import annotations

import json

import pytest

from aionfs.api import errors as e


def envelope(code: str, message: str = "m") -> bytes:
    return json.dumps({"error": {"code": code, "message": message, "details": {"k": 1}},
                       "request_id": "rid-1"}).encode()


@pytest.mark.parametrize(("status", "cls"), [
    (400, e.ValidationFailed), (401, e.AuthError), (402, e.QuotaExceeded), (403, e.Forbidden),
    (404, e.NotFound), (409, e.Conflict), (413, e.PayloadTooLarge), (422, e.ValidationFailed),
    (429, e.RateLimited), (500, e.ServerError), (502, e.ServerError), (503, e.ServerError),
])
def test_status_maps_to_class(status: int, cls: type[e.ApiError]) -> None:
    err = e.error_from_response(status, envelope("X", "went wrong"), {}, "GET /x")
    assert type(err) is cls
    assert (err.status, err.code, err.request_id, err.details) == (status, "X", "rid-1", {"k": 1})
    assert "GET /x: went wrong" in str(err) and "rid-1" in str(err)


def test_flat_shape() -> None:
    body = json.dumps({"error": "FILE_NOT_FOUND", "message": "File not found",
                       "details": None}).encode()
    err = e.error_from_response(404, body, {"x-request-id": "hdr-rid"}, "GET /user-files/1")
    assert isinstance(err, e.NotFound)
    assert (err.code, err.message, err.request_id) == (
        "FILE_NOT_FOUND", "GET /user-files/1: File not found", "hdr-rid")


def test_validation_shape() -> None:
    body = json.dumps({"detail": [
        {"loc": ["query", "limit"], "msg": "Input should be less than or equal to 100",
         "type": "less_than_equal"}]}).encode()
    err = e.error_from_response(422, body, {}, "GET /user-files")
    assert isinstance(err, e.ValidationFailed)
    assert err.errors[0]["loc"] == ["query", "limit"]
    assert "limit: Input should be less than or equal to 100" in str(err)


def test_rate_limited_keeps_retry_after_and_quota_codes() -> None:
    err = e.error_from_response(429, envelope("RATE_LIMIT_ERROR"), {"retry-after": "7"}, "x")
    assert isinstance(err, e.RateLimited) and err.retry_after == 7.0
    assert isinstance(err, e.TransientError)
    quota = e.error_from_response(429, envelope("USAGE_LIMIT_EXCEEDED"), {}, "x")
    assert isinstance(quota, e.RateLimited)  # a 429 is always about pace
    storage = e.error_from_response(400, envelope("STORAGE_QUOTA_EXCEEDED"), {}, "x")
    assert isinstance(storage, e.QuotaExceeded)


def test_non_json_bodies() -> None:
    err = e.error_from_response(502, b"<html>Bad Gateway</html>", {}, "GET /folders")
    assert isinstance(err, e.ServerError) and "Bad Gateway" in str(err)
    empty = e.error_from_response(503, b"", {}, "GET /folders")
    assert isinstance(empty, e.ServerError) and "HTTP 503" in str(empty)
