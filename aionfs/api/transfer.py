"""Ranged GETs from the storage host, received straight into a file by a worker thread.

Why not httpx here: a cold read through the mount is a download whose bytes
land in the content cache, and in the daemon that download shares one
Python thread with every FUSE request. Through httpx each piece of the body
passes h11's receive buffer and a trio wake-up; measured on these machines
that made the daemon's cold reads CPU-bound at about half a plain httpx
download (docs/mount.md). `http.client` receives a Content-Length body with
`readinto`, i.e. `recv_into` straight into one reused 1 MiB buffer, without
the GIL while it waits; the buffer goes to `os.pwrite` at the bytes' own
offset. That took the same download from ~0.05 s to ~0.02 s of CPU per 50 MB.

Scope: only presigned storage URLs (no credentials of ours, ever: this
module never sees the API key). When the environment routes the host
through a proxy, the same thread uses a synchronous httpx client instead,
which speaks proxies. Either way bodies are taken as sent (no content
decoding), a host that ignores Range is handled, answers map to the same
typed errors as every other request, and connections are kept alive.
"""

from __future__ import annotations

import http.client
import os
import ssl
import threading
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
import trio

from .errors import ApiError, ApiTimeout, NetworkError, NotTheObject, error_from_response

#: one `recv_into` target; the content cache's chunk size: receives end on chunk
#: boundaries, so each completes a chunk as soon as its last byte is in
BUFFER = 1 << 20
#: the first receive of a body: a reader waiting for a file's first 64 KiB (its
#: first FUSE read is 128 KiB) is answered once these arrive, not the first MiB;
#: receives then double up to BUFFER
FIRST_RECEIVE = 128 << 10
#: idle keep-alive connections kept per storage host
IDLE_PER_HOST = 8

_Key = tuple[str, str, int]


@dataclass(frozen=True)
class Expected:
    """What the object behind a URL must be for its bytes to be taken: its total
    size, and its content type where known. A URL the service did not say is the
    original's (a list item's `full_url`) is proven by its first answer."""

    size: int
    content_type: str | None = None

    def check(self, total: int | None, content_type: str | None) -> None:
        """Raise NotTheObject unless the answer is this object (never a guess: a
        missing total or type where one is expected does not prove it)."""
        want = _media_type(self.content_type)
        got = _media_type(content_type)
        if total != self.size or (want is not None and got != want):
            raise NotTheObject(f"GET blob: expected {self.size} bytes of {want or 'any type'}, "
                               f"the answer is {total} bytes of {got}")


def _media_type(value: str | None) -> str | None:
    return value.split(";", 1)[0].strip().lower() or None if value else None


def answer_total(status: int, content_range: str | None, length: str | None) -> int | None:
    """The object's total size as an answer states it (206: after the slash of
    Content-Range; 200: Content-Length)."""
    if status == 206:
        tail = (content_range or "").rsplit("/", 1)[-1]
        return int(tail) if tail.isdigit() else None
    return int(length) if length and length.isdigit() else None


def proxied(url: str, environ: dict[str, str] | None = None) -> bool:
    """Whether the environment routes this URL through a proxy (httpx's rules)."""
    parts = urlsplit(url)
    env = os.environ if environ is None else environ
    proxies = {k.lower()[:-6]: v for k, v in env.items()
               if k.lower().endswith("_proxy") and v}
    if not (proxies.get(parts.scheme) or proxies.get("all")):
        return False
    return not urllib.request.proxy_bypass_environment(parts.hostname or "", proxies)


class BlobFetcher:
    """Worker-thread downloads into files, with their own keep-alive connections."""

    def __init__(self, user_agent: str, timeout: float, threads: int = 8) -> None:
        self.user_agent = user_agent
        self.timeout = timeout
        self.threads = threads
        self._idle: dict[_Key, list[http.client.HTTPConnection]] = {}
        self._lock = threading.Lock()
        self._ssl: ssl.SSLContext | None = None
        self._limiter: trio.CapacityLimiter | None = None
        self._proxied: httpx.Client | None = None

    def close(self) -> None:
        with self._lock:
            conns = [c for idle in self._idle.values() for c in idle]
            self._idle.clear()
            proxied_client, self._proxied = self._proxied, None
        for conn in conns:
            conn.close()
        if proxied_client is not None:
            proxied_client.close()

    async def fetch_into(self, url: str, fd: int, start: int, end: int,
                         progress: Callable[[int], None], expect: Expected | None = None
                         ) -> int:
        """Write bytes [start, end] of `url` into `fd` at their offsets (only if the
        answer is the `expect`ed object, when given).

        `progress(pos)` runs in the trio thread whenever bytes up to `pos` are
        written; it has run for the last position before this returns. The
        thread writes through its own duplicate of `fd`, so a caller that is
        cancelled (the thread is abandoned, and stops at its next read) may
        close `fd` at once without the thread ever writing to a reused number.
        """
        if self._limiter is None:
            self._limiter = trio.CapacityLimiter(self.threads)
        token = trio.lowlevel.current_trio_token()
        stop = threading.Event()
        # Reports are coalesced: while one waits for the trio thread, later positions
        # only update `latest` (each report wakes that thread: one per receive was
        # most of its work for a folder read through). The waiting one delivers the
        # newest position when it runs, and it is queued before the thread's result,
        # so the last position is delivered before this returns.
        latest = start
        queued = False

        def deliver() -> None:
            nonlocal queued
            queued = False
            progress(latest)

        def report(pos: int) -> None:
            nonlocal latest, queued
            latest = pos
            if queued:
                return
            queued = True
            try:
                token.run_sync_soon(deliver)
            except trio.RunFinishedError:
                stop.set()

        own_fd = os.dup(fd)
        try:
            return await trio.to_thread.run_sync(
                self._fetch, url, own_fd, start, end, report, stop, expect,
                abandon_on_cancel=True, limiter=self._limiter)
        finally:
            stop.set()

    # -- in the worker thread ------------------------------------------------

    def _fetch(self, url: str, fd: int, start: int, end: int,
               report: Callable[[int], None], stop: threading.Event,
               expect: Expected | None) -> int:
        try:
            sink = _Sink(fd, start, end, report, stop, expect)
            if proxied(url):
                self._fetch_via_httpx(url, sink)
            else:
                self._fetch_direct(url, sink)
            return sink.pos
        finally:
            os.close(fd)

    def _fetch_direct(self, url: str, sink: _Sink) -> None:
        parts = urlsplit(url)
        key = (parts.scheme, parts.hostname or "", parts.port or
               (443 if parts.scheme == "https" else 80))
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        conn, resp = self._request(key, target, sink.start, sink.end)
        try:
            sink.prove(resp.status, resp.headers.get("content-range"),
                       resp.headers.get("content-length"), resp.headers.get("content-type"))
            sink.at = sink.start if resp.status == 206 else 0
            view = memoryview(bytearray(BUFFER))
            size = FIRST_RECEIVE
            while not sink.done:
                try:
                    n = resp.readinto(view[:min(size, BUFFER - sink.at % BUFFER,
                                                sink.end + 1 - sink.at)])
                    size = min(2 * size, BUFFER)
                except (OSError, http.client.HTTPException) as exc:
                    raise _network_error(exc) from exc
                if not n:
                    raise NetworkError("GET blob: the body ended early")
                sink.take(view[:n])
        except BaseException:
            conn.close()
            raise
        if resp.isclosed() and not sink.stop.is_set():
            self._checkin(key, conn)  # the whole answer was read: reusable
        else:
            conn.close()

    def _fetch_via_httpx(self, url: str, sink: _Sink) -> None:
        with self._lock:
            if self._proxied is None:  # proxies from the environment (trust_env)
                self._proxied = httpx.Client(timeout=self.timeout, follow_redirects=False)
            client = self._proxied
        headers = {"Range": f"bytes={sink.start}-{sink.end}", "User-Agent": self.user_agent,
                   "Accept-Encoding": "identity"}
        try:
            with client.stream("GET", url, headers=headers) as resp:
                if resp.status_code not in (200, 206):
                    raise error_from_response(resp.status_code, resp.read()[:65536],
                                              resp.headers, "GET blob")
                sink.at = (_checked_start(resp.headers.get("content-range"), sink.start)
                           if resp.status_code == 206 else 0)
                sink.prove(resp.status_code, resp.headers.get("content-range"),
                           resp.headers.get("content-length"), resp.headers.get("content-type"))
                for data in resp.iter_raw():
                    sink.take(memoryview(data))
                    if sink.done:
                        return
        except httpx.HTTPError as exc:
            raise _network_error(exc) from exc
        raise NetworkError("GET blob: the body ended early")

    def _request(self, key: _Key, target: str, start: int, end: int
                 ) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        headers = {"Range": f"bytes={start}-{end}", "User-Agent": self.user_agent}
        while True:
            conn, reused = self._checkout(key)
            try:
                conn.request("GET", target, headers=headers)
                resp = conn.getresponse()
                break
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                if reused:  # the host closed an idle connection: once more, on a new one
                    continue
                raise _network_error(exc) from exc
        if resp.status not in (200, 206):
            try:
                body = resp.read(65536)
            except (OSError, http.client.HTTPException):
                body = b""
            conn.close()
            raise error_from_response(resp.status, body, resp.headers, "GET blob")
        if resp.status == 206:
            try:
                _checked_start(resp.headers.get("content-range"), start)
            except ApiError:
                conn.close()
                raise
        return conn, resp

    def _checkout(self, key: _Key) -> tuple[http.client.HTTPConnection, bool]:
        with self._lock:
            idle = self._idle.get(key)
            if idle:
                return idle.pop(), True
        scheme, host, port = key
        if scheme == "https":
            if self._ssl is None:
                self._ssl = _ssl_context()
            return http.client.HTTPSConnection(host, port, timeout=self.timeout,
                                               context=self._ssl), False
        if scheme != "http":
            raise ApiError(f"GET blob: unsupported URL scheme {scheme!r}")
        return http.client.HTTPConnection(host, port, timeout=self.timeout), False

    def _checkin(self, key: _Key, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            idle = self._idle.setdefault(key, [])
            if len(idle) < IDLE_PER_HOST:
                idle.append(conn)
                return
        conn.close()


def _ssl_context() -> ssl.SSLContext:
    """The CA bundle httpx would use: SSL_CERT_FILE/SSL_CERT_DIR, else certifi's."""
    import certifi

    cafile = os.environ.get("SSL_CERT_FILE") or None
    capath = os.environ.get("SSL_CERT_DIR") or None
    if cafile is None and capath is None:
        cafile = certifi.where()
    return ssl.create_default_context(cafile=cafile, capath=capath)


class _Sink:
    """Body bytes into the file at their object offsets, [start, end] only.

    `at` is the object offset of the next body byte: `start` for a 206, 0 for
    a 200 from a host that ignored Range (bytes before `start` are skipped).
    """

    def __init__(self, fd: int, start: int, end: int, report: Callable[[int], None],
                 stop: threading.Event, expect: Expected | None = None) -> None:
        self.fd, self.start, self.end = fd, start, end
        self.report, self.stop, self.expect = report, stop, expect
        self.at = start
        self.pos = start  # bytes before this are written

    def prove(self, status: int, content_range: str | None, length: str | None,
              content_type: str | None) -> None:
        """Before the first byte is written: the answer is the expected object."""
        if self.expect is not None:
            self.expect.check(answer_total(status, content_range, length), content_type)

    @property
    def done(self) -> bool:
        return self.pos > self.end or self.stop.is_set()

    def take(self, data: memoryview) -> None:
        lo = max(self.pos - self.at, 0)
        hi = min(len(data), self.end + 1 - self.at)
        if hi > lo:
            os.pwrite(self.fd, data[lo:hi], self.at + lo)
            self.pos = self.at + hi
            self.report(self.pos)
        self.at += len(data)


def _checked_start(content_range: str | None, start: int) -> int:
    """The first offset of `bytes 100-199/1234`, which must be the one asked for."""
    first = None
    if content_range and content_range.startswith("bytes "):
        head = content_range[6:].split("-", 1)[0]
        first = int(head) if head.isdigit() else None
    if first != start:
        raise ApiError(f"GET blob: asked for bytes from {start}, got a range from {first}",
                       status=206)
    return first


def _network_error(exc: BaseException) -> NetworkError:
    cls = ApiTimeout if isinstance(exc, TimeoutError) else NetworkError
    return cls(f"GET blob: {type(exc).__name__}: {exc or 'connection failed'}")
