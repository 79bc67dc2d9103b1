"""Cache transfers (`AionClient.fetch_into`) against storage hosts that misbehave.

The emulator's storage honours Range like S3; real paths to storage include
proxies and CDNs that ignore it, cut bodies short, or close idle connections.
A small threaded server on 127.0.0.1 plays each of them; it also answers in
the absolute form a forward proxy receives, so pointing HTTP_PROXY at it
proves the proxied (httpx) path is taken and correct.
"""

from __future__ import annotations

import os
import random
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from aionfs.api import AionClient, ApiSettings
from aionfs.api.errors import ApiError, Forbidden, NetworkError
from aionfs.api.transfer import proxied

DATA = random.Random(7).randbytes(5 * (1 << 20) + 12345)


class _Storage(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    log: list[dict[str, Any]]

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        url = urlsplit(self.path)
        mode = parse_qs(url.query).get("mode", ["honor"])[0]
        self.server.log.append({"target": self.path, "mode": mode,  # type: ignore[attr-defined]
                                "conn": self.client_address[1]})  # the client port: one per connection
        if mode == "403":
            body = b"<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>"
            self.send_response(403)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        first, last = 0, len(DATA) - 1
        rng = self.headers.get("Range")
        if rng and mode != "ignore":
            a, b = rng.removeprefix("bytes=").split("-")
            first, last = int(a), min(int(b) if b else last, last)
            if mode == "shift":
                first = max(0, first - 100)
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {first}-{last}/{len(DATA)}")
        else:
            self.send_response(200)
        body = DATA[first:last + 1]
        self.send_header("Content-Length", str(len(body)))
        if mode == "close":  # answers once, then closes the connection it kept alive
            self.close_connection = True
        self.end_headers()
        if mode == "short":
            self.wfile.write(body[:len(body) // 2])
            self.close_connection = True
            return
        self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        """A client dropping its connection is what some tests do on purpose;
        anything else still reaches stderr."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


@pytest.fixture
def storage() -> Iterator[ThreadingHTTPServer]:
    server = _Server(("127.0.0.1", 0), _Storage)
    server.log = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _client() -> AionClient:
    settings = ApiSettings.from_env(api_key="aion_testkeyneversent0000000", environ={},
                                    base_url="http://127.0.0.1:9", plan="enterprise")
    return AionClient(settings, unlimited=True)


def _url(server: ThreadingHTTPServer, mode: str = "honor") -> str:
    host, port = server.server_address[:2]
    return f"http://{host}:{port}/blob/key?t=x&sig=y&mode={mode}"


async def _fetch(client: AionClient, url: str, path: Path, start: int, end: int
                 ) -> tuple[int, list[int]]:
    seen: list[int] = []
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        os.ftruncate(fd, len(DATA))
        pos = await client.fetch_into(url, fd, start=start, end=end, progress=seen.append)
    finally:
        os.close(fd)
    return pos, seen


@pytest.mark.parametrize("mode", ["honor", "ignore"])
@pytest.mark.parametrize("via_proxy", [False, True])
async def test_bytes_land_at_their_offsets(storage: ThreadingHTTPServer, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch, mode: str,
                                           via_proxy: bool) -> None:
    """Also when the host ignores Range and sends the whole object from byte 0."""
    if via_proxy:
        host, port = storage.server_address[:2]
        monkeypatch.setenv("HTTP_PROXY", f"http://{host}:{port}")
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
    start, end = 3 * (1 << 20) + 17, len(DATA) - 5
    async with _client() as client:
        pos, seen = await _fetch(client, _url(storage, mode), tmp_path / "f", start, end)
        assert client.stats.bytes_downloaded == end + 1 - start
    assert pos == end + 1 and seen and seen[-1] == end + 1 and seen == sorted(seen)
    got = (tmp_path / "f").read_bytes()
    assert got[start:end + 1] == DATA[start:end + 1]
    assert got[:start] == bytes(start) and got[end + 1:] == bytes(len(DATA) - end - 1)
    target = storage.log[-1]["target"]  # type: ignore[attr-defined]
    assert target.startswith("http://") == via_proxy  # absolute form: went through the proxy


async def test_a_range_from_elsewhere_is_refused(storage: ThreadingHTTPServer,
                                                 tmp_path: Path) -> None:
    async with _client() as client:
        with pytest.raises(ApiError, match="asked for bytes from 1000"):
            await _fetch(client, _url(storage, "shift"), tmp_path / "f", 1000, 5000)
    assert (tmp_path / "f").read_bytes() == bytes(len(DATA))  # nothing written


async def test_a_short_body_fails_after_what_arrived(storage: ThreadingHTTPServer,
                                                     tmp_path: Path) -> None:
    seen: list[int] = []
    fd = os.open(tmp_path / "f", os.O_RDWR | os.O_CREAT, 0o600)
    async with _client() as client:
        with pytest.raises(NetworkError, match="ended early|IncompleteRead"):
            await client.fetch_into(_url(storage, "short"), fd, start=0, end=len(DATA) - 1,
                                    progress=seen.append)
    os.close(fd)
    got = (tmp_path / "f").read_bytes()
    written = seen[-1] if seen else 0
    assert written <= len(DATA) // 2 and got[:written] == DATA[:written]


async def test_expired_url_is_forbidden(storage: ThreadingHTTPServer, tmp_path: Path) -> None:
    async with _client() as client:
        with pytest.raises(Forbidden, match="Request has expired"):
            await _fetch(client, _url(storage, "403"), tmp_path / "f", 0, 99)


async def test_connections_are_reused_and_a_closed_one_replaced(
        storage: ThreadingHTTPServer, tmp_path: Path) -> None:
    async with _client() as client:
        for _ in range(3):
            await _fetch(client, _url(storage), tmp_path / "f", 0, 1 << 20)
        await _fetch(client, _url(storage, "close"), tmp_path / "f", 0, 1000)
        pos, _ = await _fetch(client, _url(storage), tmp_path / "f", 5, 99)  # server closed it
    assert pos == 100
    conns = [e["conn"] for e in storage.log]  # type: ignore[attr-defined]
    assert len(set(conns[:4])) == 1 and conns[4] != conns[3]


def test_proxy_rules_follow_the_environment() -> None:
    url = "https://bucket.s3.example.com/k?sig=1"
    assert not proxied(url, {})
    assert proxied(url, {"HTTPS_PROXY": "http://proxy:3128"})
    assert proxied(url, {"all_proxy": "socks5://proxy:1080"})
    assert not proxied(url, {"HTTP_PROXY": "http://proxy:3128"})  # only for http://
    assert not proxied(url, {"HTTPS_PROXY": "http://proxy:3128", "NO_PROXY": ".example.com"})
    assert not proxied(url, {"https_proxy": "http://proxy:3128", "no_proxy": "*"})
