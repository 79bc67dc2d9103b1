"""The freedesktop Thumbnail Managing Standard, as file managers read it (pure).

A thumbnail of `/home/u/Aion/Site/pole.jpg` is
`$XDG_CACHE_HOME/thumbnails/<bucket>/<md5 of its URI>.png`, where the URI is
the file's path encoded exactly as GLib's `g_filename_to_uri` does (every
byte but ASCII letters, digits and `!$&'()*+,-./:=@_~` as %XX, upper-case
hex), and the PNG carries tEXt chunks `Thumb::URI` and `Thumb::MTime` (the
file's mtime in whole seconds): a reader takes a thumbnail only when both
match the file as it is now, so a changed file is never shown with a stale
picture. `Thumb::Size` and `Thumb::Mime` are optional and written too.
Buckets: normal 128, large 256, x-large 512, xx-large 1024 pixels (the
longer side; smaller images are not scaled up).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import struct
import tempfile
import zlib
from pathlib import Path
from urllib.parse import quote

from PIL import Image, PngImagePlugin

BUCKETS: dict[str, int] = {"normal": 128, "large": 256, "x-large": 512, "xx-large": 1024}
#: GLib's characters allowed unescaped in a file URI's path (gconvert.c, UNSAFE_PATH)
_SAFE = "!$&'()*+,/:=@"  # quote() keeps letters, digits and "_.-~" on its own
SOFTWARE = "aionfs"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def file_uri(path: str | os.PathLike[str]) -> str:
    return "file://" + quote(os.fsencode(os.path.abspath(path)), safe=_SAFE)


def thumbnail_root(environ: dict[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    cache = env.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "thumbnails"


def thumbnail_path(root: Path, bucket: str, uri: str) -> Path:
    return root / bucket / (hashlib.md5(uri.encode()).hexdigest() + ".png")


def make_thumbnail(source: Image.Image, bucket: str, *, uri: str, mtime: int, size: int,
                   mime: str | None) -> bytes:
    """A PNG for one bucket from a decoded rendition, with the standard's chunks."""
    img = source.copy()
    edge = BUCKETS[bucket]
    img.thumbnail((edge, edge), Image.Resampling.LANCZOS)
    if img.mode not in ("RGB", "RGBA"):
        img = img.convert("RGBA" if "A" in img.getbands() or "transparency" in img.info
                          else "RGB")
    info = PngImagePlugin.PngInfo()
    info.add_text("Thumb::URI", uri)
    info.add_text("Thumb::MTime", str(int(mtime)))
    info.add_text("Thumb::Size", str(int(size)))
    if mime:
        info.add_text("Thumb::Mime", mime)
    info.add_text("Software", SOFTWARE)
    out = io.BytesIO()
    img.save(out, "PNG", pnginfo=info, optimize=False, compress_level=6)
    return out.getvalue()


def text_chunks(data: bytes) -> dict[str, str]:
    """The tEXt (and zTXt) chunks of a PNG, read without decoding the image."""
    if not data.startswith(PNG_MAGIC):
        return {}
    out: dict[str, str] = {}
    pos = len(PNG_MAGIC)
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"tEXt" and b"\0" in body:
            key, _, value = body.partition(b"\0")
            out[key.decode("latin-1")] = value.decode("latin-1")
        elif kind == b"zTXt" and b"\0" in body:
            key, _, rest = body.partition(b"\0")
            with contextlib.suppress(zlib.error):  # a broken chunk is as good as none
                out[key.decode("latin-1")] = zlib.decompress(rest[1:]).decode("latin-1")
        elif kind in (b"IDAT", b"IEND"):
            break  # the standard's chunks come before the image data
        pos += 12 + length
    return out


def with_uri(data: bytes, old: str, new: str) -> bytes | None:
    """The same PNG for a file renamed from URI `old` to `new`: its Thumb::URI chunk
    rewritten (its CRC too), the image untouched. None unless it is `old`'s (its
    chunk before the image data says so)."""
    if not data.startswith(PNG_MAGIC):
        return None
    pos = len(PNG_MAGIC)
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if kind == b"tEXt" and data[pos + 8:pos + 8 + length].startswith(b"Thumb::URI\0"):
            if data[pos + 8 + len(b"Thumb::URI\0"):pos + 8 + length] != old.encode("latin-1"):
                return None
            body = b"Thumb::URI\0" + new.encode("latin-1")
            chunk = (struct.pack(">I4s", len(body), kind) + body
                     + struct.pack(">I", zlib.crc32(kind + body)))
            return data[:pos] + chunk + data[pos + 12 + length:]
        if kind in (b"IDAT", b"IEND"):
            return None
        pos += 12 + length
    return None


def is_current(path: Path, uri: str, mtime: int) -> bool:
    """Would a file manager take this thumbnail for the file as it is now?"""
    try:
        with open(path, "rb") as f:
            head = f.read(64 * 1024)
    except OSError:
        return False
    chunks = text_chunks(head)
    return chunks.get("Thumb::URI") == uri and chunks.get("Thumb::MTime") == str(int(mtime))


def write_atomically(path: Path, data: bytes) -> None:
    """0600 in a 0700 directory, renamed into place (a reader never sees half a PNG).

    The temporary name is this writer's own (mkstemp: O_EXCL, a random part), so
    two writers of one thumbnail — two threads, or a file manager's thumbnailer
    beside the mount — never write into each other's file; the last rename wins,
    and either is a whole PNG."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
