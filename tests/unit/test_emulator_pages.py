"""The emulator's deep pages: continued by keyset, they are exactly what OFFSET gives,
also when rows share a sort value and when the library changes between pages."""

from __future__ import annotations

from pathlib import Path

from aionfs.emulator.pages import Pages
from aionfs.emulator.state import State

COND = "f.tenant = ? AND f.deleted_at IS NULL"


def _offset_pages(state: State, tenant: str, sort_by: str, order: str) -> list[str]:
    pages = Pages(state.db)
    out: list[str] = []
    offset = 0
    while True:
        pages._ends.clear()  # never continue: plain OFFSET
        rows, total = pages.page(COND, [tenant], sort_by, order, 7, offset)
        out += [r["id"] for r in rows]
        offset += len(rows)
        if offset >= total or not rows:
            return out


def _walk(pages: Pages, tenant: str, sort_by: str, order: str) -> tuple[list[str], int]:
    out: list[str] = []
    offset = 0
    while True:
        rows, total = pages.page(COND, [tenant], sort_by, order, 7, offset)
        out += [r["id"] for r in rows]
        offset += len(rows)
        if offset >= total or not rows:
            return out, total


def test_keyset_pages_equal_offset_pages_with_ties_and_both_orders(tmp_path: Path) -> None:
    state = State(tmp_path / "emu.sqlite3")
    _, tenant = state.create_tenant("enterprise")
    state.bulk_insert(tenant, 60, 3, "blob", 10)
    # ties: a third of the files share one upload time
    state.db.execute("UPDATE files SET created_at='2026-01-01T00:00:00Z' WHERE seq % 3 = 0")
    for sort_by in ("created_at", "size_bytes", "title"):
        for order in ("asc", "desc"):
            expected = _offset_pages(state, tenant.id, sort_by, order)
            got, total = _walk(Pages(state.db), tenant.id, sort_by, order)
            assert got == expected and total == 60 and len(set(got)) == 60


def test_a_change_between_pages_gives_what_offset_gives(tmp_path: Path) -> None:
    state = State(tmp_path / "emu.sqlite3")
    _, tenant = state.create_tenant("enterprise")
    state.bulk_insert(tenant, 30, 0, "blob", 10)
    pages = Pages(state.db)
    first, total = pages.page(COND, [tenant.id], "created_at", "asc", 10, 0)
    assert total == 30
    # the first file is deleted: the next page by offset now starts one row later
    state.db.execute("UPDATE files SET deleted_at='2026-01-01' WHERE id=?", (first[0]["id"],))
    second, total = pages.page(COND, [tenant.id], "created_at", "asc", 10, 10)
    expected = state.db.execute(
        f"SELECT id FROM files f WHERE {COND} ORDER BY created_at, seq LIMIT 10 OFFSET 10",
        (tenant.id,)).fetchall()
    assert total == 29 and [r["id"] for r in second] == [r[0] for r in expected]
