"""What the emulator "learns" from an upload: type, pixels, colors, text, a description.

Types are recognised by their bytes (magic numbers), with the filename's
extension deciding only between TXT and MD. The stand-ins for the service's
AI, all deterministic (same bytes and name, same answer):

* description of an image: "<Orientation> <width>×<height> <format> image,
  mostly <color 1> with <color 2> and <color 3>; <brightness> and
  <temperature>. Subject: <words of the filename>." — from real pixels.
* description of a document: its first sentence (≤ 200 chars) with the page
  or line count; visible text: the document's whole text (PDF text operators,
  DOCX `<w:t>` runs, TXT/MD as is).
* visible text of an image: none.
* content creation time: EXIF DateTimeOriginal/DateTime when present.
"""

from __future__ import annotations

import io
import re
import zipfile
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Any

from PIL import Image, UnidentifiedImageError

from .colors import analytics, dominant_colors

#: variant name → longest side in pixels
VARIANT_SIZES = {"tiny_64": 64, "small_256": 256, "medium_750": 750, "large_1024": 1024}
ACCEPTED = "JPEG, PNG, WebP, GIF, PDF, DOCX, TXT, MD"
MAX_UPLOAD_BYTES = 100 * 1024 * 1024

_IMAGE_TYPES = {"jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp",
                "gif": "image/gif"}
_DOCX_CT = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


class Unsupported(ValueError):
    """The bytes are not one of the accepted types."""


@dataclass
class Analysis:
    media_type: str  # image | document
    format: str  # jpeg, png, webp, gif, pdf, docx, txt, md
    content_type: str
    width: int | None = None
    height: int | None = None
    description: str | None = None
    visible_text: str | None = None
    colors: list[dict[str, Any]] | None = None
    color_analytics: dict[str, Any] | None = None
    content_created_at: datetime | None = None
    page_count: int | None = None
    variants: dict[str, bytes] = field(default_factory=dict)


def sniff(data: bytes, filename: str) -> tuple[str, str, str]:
    """(media_type, format, content_type) or Unsupported."""
    head = data[:16]
    if head.startswith(b"\xff\xd8\xff"):
        fmt = "jpeg"
    elif head.startswith(b"\x89PNG\r\n\x1a\n"):
        fmt = "png"
    elif head[:6] in (b"GIF87a", b"GIF89a"):
        fmt = "gif"
    elif head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        fmt = "webp"
    elif head.startswith(b"%PDF-"):
        return "document", "pdf", "application/pdf"
    elif head.startswith(b"PK\x03\x04") and _is_docx(data):
        return "document", "docx", _DOCX_CT
    else:
        ext = PurePosixPath(filename.lower()).suffix
        if ext in (".txt", ".md", ".markdown"):
            try:
                data.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise Unsupported(f"{filename}: text file is not valid UTF-8") from exc
            fmt = "md" if ext != ".txt" else "txt"
            return "document", fmt, "text/markdown" if fmt == "md" else "text/plain"
        raise Unsupported(f"unsupported file type for {filename!r}; accepted: {ACCEPTED}")
    return "image", fmt, _IMAGE_TYPES[fmt]


def _is_docx(data: bytes) -> bool:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            return "word/document.xml" in z.namelist()
    except zipfile.BadZipFile:
        return False


def analyse(data: bytes, filename: str) -> Analysis:
    """Everything the service would compute for an upload (CPU-bound: run in a thread)."""
    media_type, fmt, ctype = sniff(data, filename)
    if media_type == "image":
        return _analyse_image(data, filename, fmt, ctype)
    return _analyse_document(data, filename, fmt, ctype)


_CAMERA_PREFIXES = frozenset({"img", "dsc", "dscn", "pxl", "photo", "image", "scan"})


def _subject(filename: str) -> str:
    stem = PurePosixPath(filename).stem
    words = [w for w in re.split(r"[\W_]+", stem)
             if w and not w.isdigit() and w.lower() not in _CAMERA_PREFIXES]
    return " ".join(words).lower() or "untitled"


def _analyse_image(data: bytes, filename: str, fmt: str, ctype: str) -> Analysis:
    try:
        img = Image.open(io.BytesIO(data))
        img.load()
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        raise Unsupported(f"{filename}: the image cannot be decoded ({exc})") from exc
    width, height = img.size
    taken = _exif_time(img)
    rgb = img.convert("RGB")
    colors = dominant_colors(rgb)
    stats = analytics(colors)
    orient = "Landscape" if width > height else ("Portrait" if height > width else "Square")
    names = [c["name"].lower() for c in colors[:3]]
    mix = names[0] + (f" with {' and '.join(names[1:])}" if len(names) > 1 else "")
    description = (
        f"{orient} {width}×{height} {fmt.upper()} image, mostly {mix}; "
        f"{stats['brightness']['category']} brightness and {stats['temperature']['value']} "
        f"tones. Subject: {_subject(filename)}."
    )
    variants = {}
    for name, side in VARIANT_SIZES.items():
        copy = rgb.copy()
        copy.thumbnail((side, side))
        buf = io.BytesIO()
        copy.save(buf, "JPEG", quality=82)
        variants[name] = buf.getvalue()
    return Analysis(media_type="image", format=fmt, content_type=ctype, width=width,
                    height=height, description=description, colors=colors,
                    color_analytics=stats, content_created_at=taken, variants=variants)


def _exif_time(img: Image.Image) -> datetime | None:
    try:
        exif = img.getexif()
    except Exception:  # noqa: BLE001 - broken EXIF is common and harmless
        return None
    raw = exif.get_ifd(0x8769).get(0x9003) or exif.get(0x0132)  # DateTimeOriginal, DateTime
    if not isinstance(raw, str):
        return None
    try:
        return datetime.strptime(raw.strip("\x00 "), "%Y:%m:%d %H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        return None


def _analyse_document(data: bytes, filename: str, fmt: str, ctype: str) -> Analysis:
    pages: int | None = None
    if fmt == "pdf":
        text, pages = pdf_text(data)
    elif fmt == "docx":
        text = docx_text(data)
    else:
        text = data.decode("utf-8")
    flat = " ".join(text.split())
    first = re.split(r"(?<=[.!?])\s", flat, maxsplit=1)[0][:200] if flat else ""
    count = f"{pages} page{'s' * (pages != 1)}" if pages else f"{text.count(chr(10)) + 1} lines"
    description = (f"{fmt.upper()} document ({count}): {first}" if first
                   else f"Empty {fmt.upper()} document.")
    return Analysis(media_type="document", format=fmt, content_type=ctype,
                    description=description, visible_text=text, page_count=pages)


_PDF_STREAM = re.compile(rb"stream\r?\n(.*?)\r?\nendstream", re.S)
_PDF_TEXT = re.compile(rb"\((?:\\.|[^\\)])*\)\s*Tj|\[(?:[^\]]*)\]\s*TJ")
_PDF_STR = re.compile(rb"\(((?:\\.|[^\\)])*)\)")


def pdf_text(data: bytes) -> tuple[str, int]:
    """Text shown by Tj/TJ operators (Flate or plain streams); page count."""
    pages = max(1, len(re.findall(rb"/Type\s*/Page(?!s)", data)))
    lines: list[str] = []
    for raw in _PDF_STREAM.findall(data):
        try:
            body = zlib.decompress(raw)
        except zlib.error:
            body = raw
        for op in _PDF_TEXT.findall(body):
            parts = [_pdf_unescape(s) for s in _PDF_STR.findall(op)]
            lines.append("".join(parts))
    return "\n".join(lines), pages


def _pdf_unescape(s: bytes) -> str:
    out = re.sub(rb"\\([nrtbf()\\])", lambda m: {b"n": b"\n", b"r": b"\r", b"t": b"\t",
                                                  b"b": b"\b", b"f": b"\f"}.get(
        m.group(1), m.group(1)), s)
    return out.decode("latin-1")


def docx_text(data: bytes) -> str:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        xml = z.read("word/document.xml").decode("utf-8")
    paras = re.findall(r"<w:p[ >].*?</w:p>", xml, re.S)
    return "\n".join("".join(re.findall(r"<w:t[^>]*>([^<]*)</w:t>", p)) for p in paras)
