"""Upload bodies streamed from files: multipart/form-data, a piece at a time.

httpx's own multipart encoder reads file objects on the calling thread and
wants them open as Python files; an upload of a batch of 100 MB files must
hold none of them in memory and block the trio thread (which answers FUSE)
on no read. `Multipart` encodes the form itself (RFC 7578, as httpx and
browsers do), knows its length in advance (so it is sent with
Content-Length, not chunked), and reads `FileContent` parts with `pread` in
worker threads, 1 MiB at a time. It can be iterated more than once (a
request retried before anything was sent starts over).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass

import trio

#: how much of a file one read takes (and the body holds at a time)
PIECE = 1 << 20


@dataclass(frozen=True)
class FileContent:
    """A file's bytes to upload, read from an open descriptor (which pins the bytes
    that were hashed, even if the file is replaced meanwhile)."""

    fd: int
    size: int
    sha256: str

    @classmethod
    def hashed(cls, fd: int) -> FileContent:
        """Size and SHA-256 of what `fd` holds, read a piece at a time (blocking: call
        it in a worker thread)."""
        digest = hashlib.sha256()
        size = 0
        while piece := os.pread(fd, PIECE, size):
            digest.update(piece)
            size += len(piece)
        return cls(fd, size, digest.hexdigest())

    async def pieces(self) -> AsyncIterator[bytes]:
        for offset in range(0, self.size, PIECE):
            piece = await trio.to_thread.run_sync(
                os.pread, self.fd, min(PIECE, self.size - offset), offset)
            if len(piece) != min(PIECE, self.size - offset):
                raise OSError(f"the file to upload changed size while being sent "
                              f"({offset + len(piece)} of {self.size} bytes)")
            yield piece


def _quoted(value: str) -> str:
    """A form parameter value as browsers (and httpx) escape it (HTML5)."""
    return value.translate({0x22: "%22", 0x0D: "%0D", 0x0A: "%0A"})


class Multipart:
    def __init__(self, fields: Mapping[str, str],
                 files: Sequence[tuple[str, str, bytes | FileContent, str]]) -> None:
        """`files`: (form field, filename, content, content type)."""
        self.boundary = os.urandom(16).hex()
        dash = f"--{self.boundary}\r\n".encode()
        self._parts: list[bytes | FileContent] = []
        for name, value in fields.items():
            self._parts.append(dash + f'Content-Disposition: form-data; name="{_quoted(name)}"'
                               f"\r\n\r\n".encode() + value.encode() + b"\r\n")
        for name, filename, content, content_type in files:
            self._parts.append(dash + (
                f'Content-Disposition: form-data; name="{_quoted(name)}"; '
                f'filename="{_quoted(filename)}"\r\nContent-Type: {content_type}\r\n\r\n'
            ).encode())
            self._parts += [content, b"\r\n"]
        self._parts.append(f"--{self.boundary}--\r\n".encode())
        self.length = sum(p.size if isinstance(p, FileContent) else len(p) for p in self._parts)

    @property
    def headers(self) -> dict[str, str]:
        return {"Content-Type": f"multipart/form-data; boundary={self.boundary}",
                "Content-Length": str(self.length)}

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for part in self._parts:
            if isinstance(part, FileContent):
                async for piece in part.pieces():
                    yield piece
            else:
                yield part
