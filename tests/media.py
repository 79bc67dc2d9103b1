"""Small real files for tests: images drawn with Pillow, documents as text."""

from __future__ import annotations

import io

from PIL import Image, ImageDraw


def image_bytes(color: tuple[int, int, int] = (196, 168, 124), size: tuple[int, int] = (64, 48),
                fmt: str = "JPEG", accent: tuple[int, int, int] | None = None) -> bytes:
    img = Image.new("RGB", size, color)
    if accent is not None:
        ImageDraw.Draw(img).rectangle([0, 0, size[0] // 3, size[1]], fill=accent)
    buf = io.BytesIO()
    img.save(buf, fmt)
    return buf.getvalue()


def noise_jpeg(size: tuple[int, int] = (1200, 900), seed: int = 1) -> bytes:
    """A photo-like JPEG of a few hundred KB (noise does not compress)."""
    import random

    rng = random.Random(seed)
    img = Image.frombytes("RGB", size, rng.randbytes(size[0] * size[1] * 3))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=95)
    return buf.getvalue()
