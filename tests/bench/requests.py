"""The requests-per-action table (docs/requests.md), for FREE and PROFESSIONAL.

A new user's session (tests/workflow.py) on a workspace of a 200-photo folder,
a folder of notes and loose files at the root, the service enforcing the plan's
rate and the mount given no plan: each action's API requests beside its floor.
Then the wall time of the whole FREE session beside the time its request count
needs at the plan's 10 a minute (the first minute's 10 are at once): the drive
should take about what the plan allows, not more.

`getfattr -d` is measured on 20 photos rather than the folder's 200: colors
cost one request per image once ever, so the whole folder is 20 minutes of
FREE, and the rule is the same for 20.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from tests.workflow import PLANS, Session, Step, make_library

from .mount import Row

PHOTOS = 200
READ = 20
COPY = 30


def session(emu: Any, plan: str, root: Path) -> list[Step]:
    lib = make_library(emu, plan, photos=PHOTOS, size=(320, 240))
    s = Session(emu, lib, root, plan)
    try:
        s.step("mount (first crawl)", s.mount_floor(), s.do_mount)
        s.step(f"first ls -l of the {PHOTOS}-photo folder", 0, s.browse)
        s.step("file manager opens it (thumbnails)", 0, s.open_in_file_manager)
        s.step(f"cat {READ} photos", 0, lambda: s.read(READ))
        s.step(f"cat the {READ} again after eviction", 0,
               lambda: s.reread_after_eviction(READ))
        s.step(f"getfattr -d of {READ} photos", READ, lambda: s.xattrs(READ))
        s.step(f"getfattr -d of the {READ} again", 0, lambda: s.xattrs(READ))
        s.step("ls search/photo", 1, s.search)
        s.step("ls colors/warm", 2, s.colors)
        s.step("ls tags/ and 3 tags", 0, s.tags)
        s.step(f"cp {COPY} photos in + flush", s.copy_floor(COPY),
               lambda: s.copy_in(COPY, root / "src"))
        s.step("rename a photo", 1, s.rename)
        s.step("delete a photo", 1, s.delete)
        s.step("an idle minute", s.idle_floor(), s.idle)
    finally:
        s.unmount()
    return s.steps


def plan_seconds(requests: int, rpm: int) -> float:
    """The least time a sliding-window plan needs for this many requests."""
    return max(0.0, (requests - rpm) * 60.0 / rpm)


def bench_requests(row: Row, emu: Any) -> None:
    for plan in ("free", "professional"):
        with tempfile.TemporaryDirectory() as tmp:
            steps = session(emu, plan, Path(tmp))
        total = sum(st.requests for st in steps)
        print(f"  requests per action, {plan.upper()} ({PLANS[plan][0]}/min):")
        for st in steps:
            mark = "" if st.within else "   ABOVE THE FLOOR"
            err = f"   ERRORS: {st.errors}" if st.errors else ""
            print(f"    {st.action:<40} {st.requests:>4} requests   floor {st.floor:>4}"
                  f"   {st.seconds:7.1f} s{mark}{err}")
        errors = sum(len(st.errors) for st in steps)
        row(f"{plan}: requests, whole session", total, "requests",
            sum(st.floor for st in steps), "the floors' sum", higher_is_better=False)
        row(f"{plan}: errors", errors, "errors", 0, "goal", higher_is_better=False)
        if plan == "free":
            busy = [st for st in steps if st.action != "an idle minute"]
            wall = sum(st.seconds for st in busy)
            row("free: session wall time", wall, "s",
                plan_seconds(sum(st.requests for st in busy), PLANS[plan][0]),
                "its requests at 10/min", higher_is_better=False)
