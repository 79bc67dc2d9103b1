"""Tables in docs/ generated from the code's declarations, so the docs cannot drift.

`python -m tests.docs_tables` rewrites them; tests/test_config.py fails when a
table in the docs is not what the code declares."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from aionfs.config import settings_table

DOCS = Path(__file__).resolve().parent.parent / "docs"
#: (file, block name, generator)
TABLES: list[tuple[str, str, Callable[[], str]]] = [
    ("operations.md", "settings table", settings_table),
]


def _block(name: str) -> re.Pattern[str]:
    return re.compile(rf"(<!-- {name}: begin -->\n)(.*?)(<!-- {name}: end -->)", re.S)


def current(file: str, name: str) -> str:
    found = _block(name).search((DOCS / file).read_text())
    assert found, f"docs/{file} has no <!-- {name}: begin/end --> block"
    return found[2]


def rewrite() -> None:
    for file, name, make in TABLES:
        path = DOCS / file
        table = make()
        path.write_text(_block(name).sub(lambda m, t=table: m[1] + t + m[3], path.read_text()))


if __name__ == "__main__":
    rewrite()
