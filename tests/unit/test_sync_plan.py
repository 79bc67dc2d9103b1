"""Sync planning on its own (pure): what the store must change, and when a listing
may be trusted to delete anything."""

from __future__ import annotations

import pytest

from aionfs.sync.plan import MassDeleteRefused, check_deletions, plan_listing, plan_tree


def folder(fid: str, name: str = "A", parent: str | None = None, count: int = 0,
           updated: str = "2026-01-01") -> dict[str, object]:
    return {"id": fid, "name": name, "parent_id": parent, "file_count": count,
            "updated_at": updated}


def test_the_tree_plan_names_new_changed_and_gone_folders_only() -> None:
    local = {"a": folder("a"), "b": folder("b", "B"), "c": folder("c", "C")}
    remote = [folder("a"), folder("b", "B2"), folder("d", "D", parent="a")]
    plan = plan_tree(local, remote)
    assert [r["id"] for r in plan.upserts] == ["b", "d"]
    assert plan.deletes == ["c"]
    assert plan_tree(local, list(local.values())).empty


def test_a_complete_listing_says_which_members_vanished() -> None:
    plan = plan_listing({"x", "y", "z"}, ["x", "z"], [2], expected=2)
    assert plan.complete and plan.vanished == {"y"}


@pytest.mark.parametrize(("ids", "totals", "expected", "why"), [
    (["x"], [2], None, "fewer rows than the total"),
    (["x", "y"], [2, 3], None, "pages disagree on the total"),
    ([], [0], 5, "empty while the folder tree counts files"),
    ([], [], None, "no page at all"),
])
def test_a_listing_that_cannot_be_trusted_deletes_nothing(
        ids: list[str], totals: list[int], expected: int | None, why: str) -> None:
    plan = plan_listing({"x", "y"}, ids, totals, expected)
    assert not plan.complete and plan.vanished == set(), why


def test_a_repeated_row_of_a_paged_listing_counts_once() -> None:
    plan = plan_listing({"x", "y"}, ["x", "y", "y"], [2, 2], expected=None)
    assert plan.complete and plan.ids == ["x", "y"] and plan.vanished == set()


def test_the_mass_delete_guard() -> None:
    check_deletions(3, 4, share=0.5, minimum=5, confirmed=False)  # few: always allowed
    check_deletions(60, 100, share=0.5, minimum=5, confirmed=True)  # confirmed
    check_deletions(40, 100, share=0.5, minimum=5, confirmed=False)
    with pytest.raises(MassDeleteRefused, match="--allow-mass-delete"):
        check_deletions(60, 100, share=0.5, minimum=5, confirmed=False)
