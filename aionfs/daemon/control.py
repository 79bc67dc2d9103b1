"""The control channel: a Unix socket per mount, for `aionfs status`, `sync --now`, `flush`.

Where a running daemon is found: `$XDG_RUNTIME_DIR/aionfs/` (else the user
cache dir), a directory of mode 0700, holds `mount-<digest>.pid` (pid, store
path, mountpoint) and `mount-<digest>.sock` (mode 0600) for each mount, the
digest naming the mountpoint. The socket also checks the peer's uid
(SO_PEERCRED): only the user who mounted may ask anything.

Protocol: the client sends one JSON object on one line,
`{"command": "status", ...arguments}`; the daemon answers with JSON lines,
any number of `{"progress": n, "total": m, "text": "..."}` and then one
`{"result": ...}` or `{"error": "..."}`. Nothing secret is ever sent.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import socket
import struct
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import platformdirs
import trio

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any]], AsyncIterator[dict[str, Any]]]
MAX_REQUEST = 64 * 1024


class ControlError(Exception):
    """The daemon could not be asked, or gave no answer."""


def runtime_root() -> Path:
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    root = Path(runtime) / "aionfs" if runtime else Path(platformdirs.user_cache_dir("aionfs"))
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    return root


def canonical(mountpoint: Path) -> str:
    """The mountpoint's path with its parents' symlinks resolved, without touching the
    mountpoint itself: a stat there would wait on the daemon (or deadlock inside it)."""
    absolute = os.path.abspath(mountpoint)
    return os.path.join(os.path.realpath(os.path.dirname(absolute)), os.path.basename(absolute))


def _digest(mountpoint: Path) -> str:
    return hashlib.sha256(canonical(mountpoint).encode()).hexdigest()[:16]


def pidfile_for(mountpoint: Path) -> Path:
    return runtime_root() / f"mount-{_digest(mountpoint)}.pid"


def socket_for(mountpoint: Path) -> Path:
    return runtime_root() / f"mount-{_digest(mountpoint)}.sock"


@dataclass(frozen=True)
class Daemon:
    pid: int
    store_path: Path
    mountpoint: Path
    socket: Path


def daemon_alive(pid: int) -> bool:
    """Whether the process is running (a zombie, not yet reaped by its parent, is not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc: kill(0) is all we know
    state = stat.rpartition(")")[2].split()[:1]
    return state not in (["Z"], ["X"], ["x"])


def running_daemons() -> list[Daemon]:
    found = []
    for pidfile in sorted(runtime_root().glob("mount-*.pid")):
        try:
            lines = pidfile.read_text().splitlines()
            pid = int(lines[0])
        except (OSError, ValueError, IndexError):
            continue
        if len(lines) < 3 or not daemon_alive(pid):
            continue
        found.append(Daemon(pid, Path(lines[1]), Path(lines[2]), pidfile.with_suffix(".sock")))
    return found


def find_daemon(*, mountpoint: Path | None = None, store_path: Path | None = None
                ) -> Daemon | None:
    """The running daemon of a mountpoint, or of a workspace's store."""
    for d in running_daemons():
        if mountpoint is not None and canonical(d.mountpoint) == canonical(mountpoint):
            return d
        if store_path is not None and d.store_path.resolve() == store_path.resolve():
            return d
    return None


@contextlib.contextmanager
def _address(path: Path) -> Iterator[str]:
    """A socket address for `path`, even when it is longer than sun_path's 108 bytes (a
    deep $XDG_CACHE_HOME): then the directory is reached through /proc/self/fd."""
    if len(os.fsencode(path)) < 100:
        yield str(path)
        return
    fd = os.open(path.parent, os.O_PATH | os.O_DIRECTORY)
    try:
        yield f"/proc/self/fd/{fd}/{path.name}"
    finally:
        os.close(fd)


# -- the client (synchronous: the CLI) ----------------------------------------------------

def call(path: Path, command: str, *, timeout: float = 30.0, **args: Any
         ) -> Iterator[dict[str, Any]]:
    """Send a command; yield the daemon's messages up to its result or error.

    `timeout` bounds the wait for each message, not the whole command."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        try:
            with _address(path) as address:
                sock.connect(address)
        except OSError as exc:
            raise ControlError(f"cannot reach the daemon at {path}: {exc.strerror}") from None
        sock.sendall(json.dumps({"command": command, **args}).encode() + b"\n")
        with sock.makefile("rb") as stream:
            while True:
                try:
                    line = stream.readline()
                except TimeoutError:
                    raise ControlError(f"the daemon did not answer within {timeout:g}s") \
                        from None
                if not line:
                    raise ControlError("the daemon closed the connection without an answer")
                message = json.loads(line)
                yield message
                if "result" in message or "error" in message:
                    return
    finally:
        sock.close()


# -- the server (in the daemon's nursery) ---------------------------------------------------

def _peer_uid(sock: trio.socket.SocketType) -> int:
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return int(uid)


async def serve_control(path: Path, handlers: dict[str, Handler], *,
                        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    _remove(path)  # left by a daemon that died
    sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)  # the socket is created 0600: no window where others may connect
    try:
        with _address(path) as address:
            await sock.bind(address)
    finally:
        os.umask(old)
    os.chmod(path, 0o600)
    sock.listen(16)
    task_status.started()

    async def one(stream: trio.SocketStream) -> None:
        async with stream:
            try:
                if _peer_uid(stream.socket) != os.getuid():
                    await _send(stream, {"error": "permission denied"})
                    return
                with trio.fail_after(10):
                    request = await _read_request(stream)
                command = request.get("command")
                handler = handlers.get(command) if isinstance(command, str) else None
                if handler is None:
                    await _send(stream, {"error": f"unknown command {command!r} (known: "
                                                  f"{', '.join(sorted(handlers))})"})
                    return
                async for message in handler(request):
                    await _send(stream, message)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                log.debug("a control client left before its answer")
            except (trio.TooSlowError, ValueError) as exc:
                log.info("a control request was refused: %s", exc or "too slow")
                with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                    await _send(stream, {"error": f"bad request: {exc or 'too slow'}"})

    try:
        await trio.serve_listeners(one, [trio.SocketListener(sock)])
    finally:
        _remove(path)


def _remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


async def _read_request(stream: trio.SocketStream) -> dict[str, Any]:
    buf = b""
    while b"\n" not in buf:
        chunk = await stream.receive_some(4096)
        if not chunk:
            break
        buf += chunk
        if len(buf) > MAX_REQUEST:
            raise ValueError("request too long")
    request = json.loads(buf.split(b"\n", 1)[0] or b"null")
    if not isinstance(request, dict):
        raise ValueError("a request is a JSON object")
    return request


async def _send(stream: trio.SocketStream, message: dict[str, Any]) -> None:
    await stream.send_all(json.dumps(message).encode() + b"\n")
