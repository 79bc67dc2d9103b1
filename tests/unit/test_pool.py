"""Staging files made ahead (upload/pool.py): a create takes one without touching the
disk, the row names it, and a pool file no row names never outlives a start or an
unmount — nor is it mistaken for a file's bytes after a power loss."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from aionfs import filepool as pool_module
from aionfs.store import Store
from aionfs.upload.journal import Journal


@pytest.fixture
def journal(tmp_path: Path) -> Journal:
    return Journal(Store(tmp_path / "metadata.sqlite3"), tmp_path / "staging")


async def _filled(journal: Journal) -> list[Path]:
    async with trio.open_nursery() as nursery:
        nursery.start_soon(journal.pool.run)
        for _ in range(100):
            if len(list(journal.dir.iterdir())) >= journal.pool.size:
                break
            await trio.sleep(0.01)
        nursery.cancel_scope.cancel()
    return sorted(journal.dir.iterdir())


async def test_a_create_takes_a_file_made_ahead_and_its_row_names_it(journal: Journal) -> None:
    made = await _filled(journal)
    assert len(made) == journal.pool.size
    assert all(p.stat().st_size == 0 and p.name.startswith(pool_module.PREFIX)
               and len(p.name) == len(pool_module.PREFIX) + 16 for p in made)
    f = journal.create("", "note.txt")
    assert f.staging in made
    assert journal.get(f.id).staging == f.staging  # type: ignore[union-attr]
    assert journal.pool.taken == 1 and journal.pool.missed == 0


def test_without_the_pool_running_a_create_makes_its_own_file(journal: Journal) -> None:
    f = journal.create("", "note.txt")
    assert f.staging == journal.dir / str(f.id) and f.staging.stat().st_size == 0
    assert journal.pool.missed == 1


def test_a_create_refused_by_the_disk_leaves_no_row(journal: Journal,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    def full(path: Path) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("aionfs.upload.journal.make_empty", full)
    with pytest.raises(OSError):
        journal.create("", "note.txt")
    assert journal.all() == []


async def test_pool_files_no_row_names_go_at_the_next_start(journal: Journal,
                                                            tmp_path: Path) -> None:
    await _filled(journal)
    kept = journal.create("", "kept.txt")
    kept.staging.write_bytes(b"written, never closed")
    journal.store.close()  # a crash: the pool was never discarded
    again = Journal(Store(tmp_path / "metadata.sqlite3"), tmp_path / "staging")
    again.recover(boot="this boot")
    assert [p for p in again.dir.iterdir() if p.is_file()] == [kept.staging]


async def test_after_a_power_loss_empty_pool_files_are_not_kept_as_lost_bytes(
        journal: Journal, tmp_path: Path) -> None:
    journal.recover(boot="this boot")
    await _filled(journal)
    orphan = journal.pool.take()
    assert orphan is not None
    orphan.write_bytes(b"fsync'd bytes whose row never reached the disk")
    journal.store.close()
    again = Journal(Store(tmp_path / "metadata.sqlite3"), tmp_path / "staging")
    again.recover(boot="another boot")
    assert [p.name for p in again.lost_and_found.iterdir()] == [f"{orphan.name}-without-a-name"]
    assert [p for p in again.dir.iterdir() if p.is_file()] == []


async def test_unmount_removes_the_files_never_taken(journal: Journal) -> None:
    await _filled(journal)
    f = journal.create("", "note.txt")
    journal.pool.discard()
    assert [p for p in journal.dir.iterdir() if p.is_file()] == [f.staging]


async def test_a_create_rolled_back_leaves_no_file_and_the_next_one_works(
        journal: Journal) -> None:
    """A failed commit gives the row's id again: a file made under it must not stay in
    the way (O_EXCL) of the next create; a pool file goes back to the pool."""
    def boom() -> None:
        raise OSError(5, "Input/output error")

    with pytest.raises(OSError):
        journal.create("", "a.txt", also=boom)  # the pool is empty: its own file
    f = journal.create("", "b.txt")
    assert [p for p in journal.dir.iterdir() if p.is_file()] == [f.staging]
    await _filled(journal)
    ready = len(journal.pool._ready)
    with pytest.raises(OSError):
        journal.create("", "c.txt", also=boom)
    assert len(journal.pool._ready) == ready
    assert [g.name for g in journal.all()] == ["b.txt"]
