"""What a name under `colors/` asks for: a hex code, a family, or a color name.

    colors/earth_tone/        a family (from GET /colors/families)
    colors/#c4a87c/  c4a87c/  a hex code, 3 or 6 digits, with or without '#'
    colors/#c4a87c~10/        the same with a delta-E tolerance (0–100; default 15)
    colors/walnut/            a color name the service knows

A name starting with '#' that is not 3 or 6 hex digits, or a tolerance that
is not a number from 0 to 100, is refused here, without a request.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_HEX = re.compile(r"#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6})")
_TOLERANCE = re.compile(r"(?:0|[1-9][0-9]*)(?:\.[0-9]+)?")
_NAME = re.compile(r"[A-Za-z][A-Za-z _-]{0,63}")


class BadColor(ValueError):
    """The name cannot be a color query (ENOENT on the mount)."""


@dataclass(frozen=True)
class ColorQuery:
    hex_code: str | None = None  # '#rrggbb', lower case
    family: str | None = None
    name: str | None = None
    tolerance: float | None = None

    @property
    def key(self) -> str:
        """The query's identity in the store (two spellings of one color share it)."""
        what = (f"hex:{self.hex_code}" if self.hex_code else
                f"family:{self.family}" if self.family else f"name:{self.name}")
        return what if self.tolerance is None else f"{what}~{self.tolerance:g}"

    def api_args(self) -> dict[str, Any]:
        return {"hex_code": self.hex_code, "color_family": self.family,
                "color_name": self.name, "delta_e_threshold": self.tolerance}


def parse(name: str, families: frozenset[str]) -> ColorQuery:
    """The query a directory name under `colors/` stands for."""
    base, sep, tol = name.partition("~")
    tolerance = None
    if sep:
        if not _TOLERANCE.fullmatch(tol) or not 0 <= float(tol) <= 100:
            raise BadColor(f"tolerance {tol!r} is not a number from 0 to 100")
        tolerance = float(tol)
    m = _HEX.fullmatch(base)
    if m:
        digits = m.group(1).lower()
        if len(digits) == 3:
            digits = "".join(c * 2 for c in digits)
        return ColorQuery(hex_code="#" + digits, tolerance=tolerance)
    if base.startswith("#"):
        raise BadColor(f"{base!r} is not a 3- or 6-digit hex color")
    if base.lower() in families:
        return ColorQuery(family=base.lower(), tolerance=tolerance)
    if not _NAME.fullmatch(base):
        raise BadColor(f"{base!r} is not a color name")
    return ColorQuery(name=base.lower(), tolerance=tolerance)
