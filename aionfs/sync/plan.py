"""Pure planning: what the store must change to match what the API answered.

No I/O here: the engine fetches, these functions compare, the store
applies. Keeping the comparison pure makes the rules testable and keeps
every await outside store transactions.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass
class TreePlan:
    upserts: list[dict[str, Any]] = field(default_factory=list)  # new or changed folders
    deletes: list[str] = field(default_factory=list)  # folders gone remotely

    @property
    def empty(self) -> bool:
        return not self.upserts and not self.deletes


def plan_tree(local: Mapping[str, Mapping[str, Any]], remote: Iterable[dict[str, Any]]
              ) -> TreePlan:
    plan = TreePlan()
    seen = set()
    for r in remote:
        seen.add(r["id"])
        old = local.get(r["id"])
        if old is None or any(old[k] != r[k] for k in ("name", "parent_id", "file_count",
                                                       "updated_at")):
            plan.upserts.append(r)
    plan.deletes = sorted(set(local) - seen)
    return plan


@dataclass
class ListingPlan:
    """The result of listing one folder's files ('' = all files).

    Metadata is applied page by page while listing (so memory stays flat on
    huge libraries); the plan keeps the ids and what changed.
    """

    ids: list[str]  # in listing order (folder listings; the all-files one keeps none)
    complete: bool
    total: int
    listed: int = 0  # distinct files shown
    #: the all-files listing's number (Store.start_all_listing); None for a folder's
    seen_all: int | None = None
    #: the all-files listing stopped at its first page: the root holds no file
    root_empty: bool = False
    #: files shown in this folder that the listing no longer has (complete listings only)
    vanished: set[str] = field(default_factory=set)
    new: set[str] = field(default_factory=set)
    changed: set[str] = field(default_factory=set)
    content: set[str] = field(default_factory=set)


def plan_listing(local_members: Iterable[str], ids: list[str], totals: list[int],
                 expected: int | None) -> ListingPlan:
    """Compare a listing with what the store shows.

    A listing counts as complete only if every page reported the same
    total, the rows add up to it, and (when the folder tree gave a file
    count) it does not contradict that count by coming back empty: an
    empty or short answer must never look like a mass deletion.
    """
    unique = list(dict.fromkeys(ids))
    complete, total = listing_complete(len(unique), totals, expected)
    vanished = set(local_members) - set(unique) if complete else set()
    return ListingPlan(ids=unique, complete=complete, total=total, listed=len(unique),
                       vanished=vanished)


def listing_complete(listed: int, totals: list[int], expected: int | None
                     ) -> tuple[bool, int]:
    """(complete, total) of a listing that showed `listed` distinct files, for the
    rules of `plan_listing` (the all-files listing counts its files in the store)."""
    total = totals[0] if totals else 0
    complete = bool(totals) and len(set(totals)) == 1 and listed == total
    if expected is not None and expected > 0 and not listed:
        complete = False
    return complete, total


class MassDeleteRefused(RuntimeError):
    """A sync would delete more of the library than the guard allows."""

    def __init__(self, count: int, library: int, share: float) -> None:
        super().__init__(
            f"refusing to delete {count} of {library} files in one sync (more than "
            f"{share:.0%}); if the workspace really lost them, run 'aionfs sync --full "
            "--allow-mass-delete'")
        self.count, self.library = count, library


def check_deletions(count: int, library: int, *, share: float, minimum: int,
                    confirmed: bool) -> None:
    """Raise MassDeleteRefused when `count` deletions exceed the guard."""
    if confirmed or count <= minimum:
        return
    if count > share * max(library, 1):
        raise MassDeleteRefused(count, library, share)
