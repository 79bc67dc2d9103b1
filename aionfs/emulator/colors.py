"""Color science for the emulator: real dominant colors from pixels.

Dominant colors come from Pillow's median-cut quantisation of a downscaled
copy (16 colors, merged when closer than ΔE 8), ranked by coverage. Each
color gets the nearest name from the CSS color names plus a few material
names (ΔE in CIE L*a*b*), and a family by documented rules on its HSL values
(see `family_of`). Color search compares in Lab with CIE76 ΔE.
"""

from __future__ import annotations

import colorsys
import math
import re
from collections.abc import Iterable
from typing import Any

from PIL import Image, ImageColor

FAMILIES: list[dict[str, Any]] = [
    {"name": "neutral", "display_name": "Neutrals",
     "description": "Blacks, whites, grays - versatile foundation colors",
     "example_colors": ["#FFFFFF", "#808080", "#000000", "#F5F5DC"]},
    {"name": "earth_tone", "display_name": "Earth Tones",
     "description": "Warm, natural colors inspired by earth and nature",
     "example_colors": ["#C4A87C", "#8B4513", "#D2691E", "#A0522D"]},
    {"name": "warm", "display_name": "Warm Colors",
     "description": "Reds, oranges, yellows - energizing and inviting",
     "example_colors": ["#FF6347", "#FFA500", "#FFD700", "#DC143C"]},
    {"name": "cool", "display_name": "Cool Colors",
     "description": "Blues, greens, purples - calming and sophisticated",
     "example_colors": ["#4169E1", "#008080", "#2E8B57", "#9370DB"]},
    {"name": "metallic", "display_name": "Metallic Tones",
     "description": "Metallic and shimmer colors — gold, silver, bronze, copper",
     "example_colors": ["#FFD700", "#B87333", "#C0C0C0", "#B5A642"]},
    {"name": "pastel", "display_name": "Pastels",
     "description": "Soft, muted colors with white undertones",
     "example_colors": ["#FFB6C1", "#ADD8E6", "#98FB98", "#FFDAB9"]},
    {"name": "vibrant", "display_name": "Vibrant Colors",
     "description": "Bold, highly saturated colors",
     "example_colors": ["#FF1493", "#00FF00", "#FF4500", "#8A2BE2"]},
]
FAMILY_NAMES = frozenset(f["name"] for f in FAMILIES)

#: Material and metal names beside the CSS names (title-cased on output).
_EXTRA_NAMES = {
    "walnut": "#c4a87c", "dark tan": "#8b7355", "concrete": "#a9a9a0", "rust": "#b7410e",
    "copper": "#b87333", "bronze": "#cd7f32", "brass": "#b5a642", "navy blue": "#000080",
    "sky blue": "#87ceeb", "forest green": "#228b22", "terracotta": "#e2725b",
    "sand": "#c2b280", "slate": "#708090", "charcoal": "#36454f", "cream": "#fffdd0",
}
_METALS = {"gold", "silver", "copper", "bronze", "brass"}


def _split_name(css: str) -> str:
    for word in ("blue", "green", "gray", "grey", "red", "white", "yellow", "brown", "pink",
                 "purple", "violet", "orange", "cyan", "magenta", "turquoise", "seagreen",
                 "slateblue", "goldenrod", "khaki", "salmon", "orchid", "chiffon", "lace"):
        if css.endswith(word) and css != word:
            return css[: -len(word)] + " " + word
    return css


def hex_to_rgb(hex_code: str) -> tuple[int, int, int]:
    h = hex_code.lstrip("#")
    if len(h) == 3:
        h = "".join(c * 2 for c in h)
    return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)


def rgb_to_hex(rgb: Iterable[int]) -> str:
    r, g, b = rgb
    return f"#{r:02X}{g:02X}{b:02X}"


_HEX_RE = re.compile(r"^#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")


def normalize_hex(value: str) -> str | None:
    """'#abc', 'abc', '#AABBCC' → '#AABBCC'; anything else → None."""
    m = _HEX_RE.match(value.strip())
    return rgb_to_hex(hex_to_rgb(m.group(1))) if m else None


def rgb_to_lab(rgb: Iterable[int]) -> tuple[float, float, float]:
    def lin(c: float) -> float:
        c /= 255.0
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (lin(c) for c in rgb)
    x = (r * 0.4124 + g * 0.3576 + b * 0.1805) / 0.95047
    y = r * 0.2126 + g * 0.7152 + b * 0.0722
    z = (r * 0.0193 + g * 0.1192 + b * 0.9505) / 1.08883

    def f(t: float) -> float:
        return t ** (1 / 3) if t > 0.008856 else 7.787 * t + 16 / 116

    fx, fy, fz = f(x), f(y), f(z)
    return 116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)


def delta_e(lab1: tuple[float, float, float], lab2: tuple[float, float, float]) -> float:
    """CIE76 color difference."""
    return math.dist(lab1, lab2)


def rgb_to_hsl(rgb: Iterable[int]) -> tuple[int, int, int]:
    r, g, b = (c / 255.0 for c in rgb)
    h, lum, s = colorsys.rgb_to_hls(r, g, b)
    return round(h * 360) % 360, round(s * 100), round(lum * 100)


_NAME_HEX: dict[str, str] = {}
_NAMED: list[tuple[str, tuple[float, float, float]]] = []


def _named() -> list[tuple[str, tuple[float, float, float]]]:
    """(name, Lab) of every known color name, built once."""
    if not _NAMED:
        for css, value in ImageColor.colormap.items():
            if isinstance(value, str) and "grey" not in css:
                _NAME_HEX[_split_name(css)] = normalize_hex(value) or "#000000"
        _NAME_HEX.update({k: v.upper() for k, v in _EXTRA_NAMES.items()})
        _NAMED.extend((n, rgb_to_lab(hex_to_rgb(h))) for n, h in sorted(_NAME_HEX.items()))
    return _NAMED


def name_to_hex(name: str) -> str | None:
    """A color name as users type it ('navy blue', 'NavyBlue', 'walnut') → hex."""
    key = re.sub(r"[\s_\-]+", "", name.strip().lower())
    for named, _lab in _named():
        if named.replace(" ", "") == key:
            return _NAME_HEX[named]
    return None


def nearest_name(lab: tuple[float, float, float]) -> str:
    name = min(_named(), key=lambda item: delta_e(lab, item[1]))[0]
    return name.title()


def family_of(rgb: tuple[int, int, int], name: str) -> str:
    """Rules, in order: metal names → metallic; saturation < 12 or lightness
    outside 8–95 → neutral; lightness ≥ 75 → pastel; saturation ≥ 75 and
    lightness 35–70 → vibrant; hue 15–50 with saturation < 60 → earth_tone;
    hue < 70 or ≥ 330 → warm; else cool."""
    h, s, lum = rgb_to_hsl(rgb)
    if name.lower() in _METALS:
        return "metallic"
    if s < 12 or lum < 8 or lum > 95:
        return "neutral"
    if lum >= 75:
        return "pastel"
    if s >= 75 and 35 <= lum <= 70:
        return "vibrant"
    if 15 <= h <= 50 and s < 60:
        return "earth_tone"
    if h < 70 or h >= 330:
        return "warm"
    return "cool"


def describe_color(rgb: tuple[int, int, int], percentage: float, rank: int) -> dict[str, Any]:
    lab = rgb_to_lab(rgb)
    name = nearest_name(lab)
    h, s, lum = rgb_to_hsl(rgb)
    return {
        "rank": rank,
        "percentage": round(percentage, 1),
        "hex": rgb_to_hex(rgb),
        "name": name,
        "family": family_of(rgb, name),
        "rgb": {"r": rgb[0], "g": rgb[1], "b": rgb[2]},
        "hsl": {"h": h, "s": s, "l": lum},
        "lab": {"l": round(lab[0], 1), "a": round(lab[1], 1), "b": round(lab[2], 1)},
    }


def dominant_colors(img: Image.Image, max_colors: int = 8) -> list[dict[str, Any]]:
    """The image's dominant colors with coverage, largest first."""
    small = img.convert("RGB")
    small.thumbnail((96, 96))
    quant = small.quantize(colors=16, method=Image.Quantize.MEDIANCUT)
    palette = quant.getpalette() or []
    counts = sorted(quant.getcolors() or [], reverse=True)
    total = sum(c for c, _ in counts) or 1
    merged: list[list[Any]] = []  # [count, rgb, lab]
    for count, idx in counts:
        rgb = tuple(palette[idx * 3: idx * 3 + 3])
        lab = rgb_to_lab(rgb)
        for entry in merged:
            if delta_e(entry[2], lab) < 8:
                entry[0] += count
                break
        else:
            merged.append([count, rgb, lab])
    merged.sort(key=lambda e: -e[0])
    out = []
    for rank, (count, rgb, _lab) in enumerate(merged[:max_colors], start=1):
        pct = 100.0 * count / total
        if pct < 1.0 and rank > 3:
            break
        out.append(describe_color(rgb, pct, rank))  # type: ignore[arg-type]
    return out


def analytics(colors: list[dict[str, Any]]) -> dict[str, Any]:
    """Temperature, brightness and saturation summaries weighted by coverage."""
    weight = sum(c["percentage"] for c in colors) or 1.0
    bright = sum(c["hsl"]["l"] * c["percentage"] for c in colors) / weight
    sat = sum(c["hsl"]["s"] * c["percentage"] for c in colors) / weight
    warm = sum(c["percentage"] for c in colors
               if c["hsl"]["h"] < 70 or c["hsl"]["h"] >= 330) / weight

    def cat(v: float) -> str:
        return "low" if v < 35 else ("high" if v > 65 else "medium")

    temp = "warm" if warm > 0.6 else ("cool" if warm < 0.4 else "neutral")
    return {
        "temperature": {"value": temp, "score": round(warm, 2)},
        "brightness": {"average": round(bright), "category": cat(bright)},
        "saturation": {"average": round(sat), "category": cat(sat)},
    }
