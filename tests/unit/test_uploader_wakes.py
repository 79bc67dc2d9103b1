"""The uploader's loop and the closes of a copy (upload/worker.py): a file closed is
due after the write-back delay, so a burst of closes wakes the loop once, not once
per file (it scanned the whole journal each time: quadratic in a copy), and yet
every file is looked at when it falls due."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import trio
import trio.testing

from aionfs.store import Store
from aionfs.upload.journal import Journal
from aionfs.upload.worker import Uploader


def _uploader(tmp_path: Path, delay: float) -> tuple[Uploader, Journal, list[float]]:
    journal = Journal(Store(tmp_path / "metadata.sqlite3"), tmp_path / "staging")
    looks: list[float] = []
    due = journal.due

    def counted(now: float, wait: float, limit: int = -1, after: Any = None) -> list[Any]:
        looks.append(trio.current_time())
        READ.append(limit)
        return due(now, wait, limit, after)

    journal.due = counted  # type: ignore[method-assign]
    uploader = Uploader(journal, journal.store, client=None, syncer=None,  # type: ignore[arg-type]
                        delay=delay, busy=lambda f: True, settled=lambda f: None,
                        shared=lambda f: f, rekeyed=lambda old, new: None)
    return uploader, journal, looks


async def _run_until_taken(uploader: Uploader, taken: list[tuple[float, int]], files: int
                           ) -> None:
    """The uploader's loop, until it has taken this many files (10 s at most)."""
    async with trio.open_nursery() as nursery:
        nursery.start_soon(uploader.run)
        with trio.fail_after(10):
            while sum(n for _, n in taken) < files:  # noqa: ASYNC110 (the loop takes them)
                await trio.sleep(0.01)
        nursery.cancel_scope.cancel()


#: the `limit` of each look at the journal's due files (-1: all of them)
READ: list[int] = []


def _taking(uploader: Uploader, journal: Journal, limit: int,
            monkeypatch: Any) -> list[tuple[float, int]]:
    """Batches of at most `limit` are taken at once (no API): (time, size) each."""
    uploader.busy = lambda f: False
    taken: list[tuple[float, int]] = []

    async def batch_limit() -> int:
        return limit

    async def take(batch: list[Any], slots: trio.Semaphore) -> None:
        taken.append((trio.current_time(), len(batch)))
        for f in batch:
            journal.remove(f)
        uploader._in_flight.difference_update(f.id for f in batch)  # (as _take does)
        slots.release()

    monkeypatch.setattr(uploader, "_batch_limit", batch_limit)
    monkeypatch.setattr(uploader, "_take", take)
    return taken


async def test_a_burst_of_closes_wakes_the_loop_once(tmp_path: Path) -> None:
    uploader, journal, looks = _uploader(tmp_path, delay=30)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(uploader.run)
        await trio.testing.wait_all_tasks_blocked()
        assert len(looks) == 1  # the loop's first look; nothing queued: it sleeps
        for i in range(200):
            f = journal.create("", f"note {i}.txt")
            journal.commit(f, 0)  # (the journal tells the uploader)
            await trio.testing.wait_all_tasks_blocked()  # (the loop runs if woken)
        await trio.testing.wait_all_tasks_blocked()
        assert len(looks) == 2  # woken by the first close only: the rest fall due later
        nursery.cancel_scope.cancel()


async def test_files_closed_while_the_loop_sleeps_are_looked_at_when_due(
        tmp_path: Path, autojump_clock: trio.testing.MockClock) -> None:
    uploader, journal, looks = _uploader(tmp_path, delay=30)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(uploader.run)
        await trio.testing.wait_all_tasks_blocked()
        f = journal.create("", "a.txt")
        journal.commit(f, 0)  # (the journal tells the uploader)
        await trio.testing.wait_all_tasks_blocked()
        first = len(looks)
        await trio.sleep(31)  # past the write-back delay, on the mock clock
        assert len(looks) > first and looks[-1] >= looks[first - 1] + 15
        nursery.cancel_scope.cancel()


async def test_closes_while_uploads_are_held_after_a_failure_do_not_wake_the_loop(
        tmp_path: Path) -> None:
    uploader, journal, looks = _uploader(tmp_path, delay=5)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(uploader.run)
        await trio.testing.wait_all_tasks_blocked()
        uploader._hold_until = trio.current_time() + 60  # (what a transient failure sets)
        uploader.wake()
        await trio.testing.wait_all_tasks_blocked()
        held = len(looks)
        for i in range(50):
            f = journal.create("", f"note {i}.txt")
            journal.commit(f, 0)  # (the journal tells the uploader)
            await trio.testing.wait_all_tasks_blocked()
        assert len(looks) == held  # nothing can be taken before the hold ends
        nursery.cancel_scope.cancel()


async def test_a_slow_trickle_of_closes_is_sent_before_a_full_batch_gathers(
        tmp_path: Path, monkeypatch: Any) -> None:
    """A copy gathers full batches, but a file closed during a trickle that never fills
    one waits at most MAX_GATHER past its write-back delay (here 1 s)."""
    from aionfs.upload import worker

    monkeypatch.setattr(worker, "MAX_GATHER", 1.0)
    uploader, journal, _ = _uploader(tmp_path, delay=0)
    taken = _taking(uploader, journal, 100, monkeypatch)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(uploader.run)
        start = trio.current_time()
        for i in range(12):  # a close every 0.2 s for 2.4 s: always a burst
            f = journal.create("", f"note {i}.txt")
            journal.commit(f, 0)  # (the journal tells the uploader)
            await trio.sleep(0.2)
        nursery.cancel_scope.cancel()
    assert taken, "nothing was sent during the trickle"
    assert taken[0][0] - start < 1.8 and taken[0][1] < 12


async def test_a_copy_that_fills_batches_is_uploaded_when_it_pauses(
        tmp_path: Path, monkeypatch: Any) -> None:
    """Uploads sent while a copy goes on take the copy's CPU (a copy of small files
    returned in twice the time): batches wait for the copy to pause, even full
    ones, then go out full."""
    from aionfs.upload import worker

    uploader, journal, _ = _uploader(tmp_path, delay=0)
    taken = _taking(uploader, journal, 10, monkeypatch)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(uploader.run)
        for i in range(45):  # a close every 0.02 s: 4.5 batches' worth in 0.9 s
            f = journal.create("", f"note {i}.txt")
            journal.commit(f, 0)  # (the journal tells the uploader)
            await trio.sleep(0.02)
        copy_done = trio.current_time()
        await trio.sleep(worker.BURST_GAP * 3)
        nursery.cancel_scope.cancel()
    assert [n for _, n in taken] == [10, 10, 10, 10, 5]
    assert all(t >= copy_done for t, _ in taken), "a batch went out during the copy"


async def test_a_long_queue_is_never_read_whole(tmp_path: Path, monkeypatch: Any) -> None:
    """600 files due (a copy that ended): each look reads a batch, those in flight
    and a margin, not the queue (read whole, a copy of 100,000 files cost ~1 s per
    look)."""
    from aionfs.upload import worker

    uploader, journal, _ = _uploader(tmp_path, delay=0)
    taken = _taking(uploader, journal, 10, monkeypatch)
    for i in range(600):
        journal.commit(journal.create("", f"note {i}.txt"), 0)
    READ.clear()
    await trio.sleep(worker.BURST_GAP)  # (the copy has paused)
    await _run_until_taken(uploader, taken, 600)
    assert READ and all(0 < n <= 10 + 2 * 10 + worker.PASSED_OVER for n in READ), READ


async def test_a_copy_longer_than_max_gather_uploads_full_batches_as_it_goes(
        tmp_path: Path, monkeypatch: Any) -> None:
    """Past MAX_GATHER a long copy uploads while it goes on, in full batches (each
    waits until its oldest file has waited MAX_GATHER), not a batch per close."""
    from aionfs.upload import worker

    monkeypatch.setattr(worker, "MAX_GATHER", 1.0)
    uploader, journal, _ = _uploader(tmp_path, delay=0)
    taken = _taking(uploader, journal, 10, monkeypatch)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(uploader.run)
        for i in range(150):  # a close every 0.02 s for 3 s
            journal.commit(journal.create("", f"note {i}.txt"), 0)
            await trio.sleep(0.02)
        copy_done = trio.current_time()
        await trio.sleep(worker.BURST_GAP * 3)
        nursery.cancel_scope.cancel()
    during = [n for t, n in taken if t < copy_done]
    assert during, "nothing was uploaded during a copy longer than MAX_GATHER"
    assert all(n == 10 for n in during), taken
    assert sum(n for _, n in taken) == 150


async def test_files_open_for_writing_do_not_hold_up_the_rest(tmp_path: Path,
                                                              monkeypatch: Any) -> None:
    """The oldest 300 due files are open for writing again (a log, a database):
    the 20 after them are still taken, though a look reads a window, not the queue."""
    uploader, journal, _ = _uploader(tmp_path, delay=0)
    taken = _taking(uploader, journal, 10, monkeypatch)
    for i in range(320):
        journal.commit(journal.create("", f"note {i}.txt"), 0)
    busy = {f.id for f in journal.due(time.time(), 0)[:300]}
    uploader.busy = lambda f: f.id in busy
    await _run_until_taken(uploader, taken, 20)
    assert journal.queued() == 300
