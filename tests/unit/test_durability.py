"""The durability contract (docs/writes.md#durability) on the journal and the group
commit, with the disk played by a recorder of fsyncs: a close is committed without
waiting for the disk, a pass makes every closed file durable (bytes, then the
directory, then the journal's WAL), a file changed during a pass is not taken for
durable, and after a power loss an fsync'd file is there while one closed within the
last interval is set aside, never shown or uploaded half-written."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import trio
import trio.testing

from aionfs.store import Store
from aionfs.upload import durability
from aionfs.upload.durability import GroupCommit
from aionfs.upload.journal import Journal, LocalFile


class Disk:
    """fsync recorded: which paths reached the disk, in order."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.synced: list[str] = []
        real = os.fsync

        def fsync(fd: int) -> None:
            self.synced.append(os.readlink(f"/proc/self/fd/{fd}"))
            real(fd)

        monkeypatch.setattr(durability.os, "fsync", fsync)


@pytest.fixture
def journal(tmp_path: Path) -> Journal:
    return Journal(Store(tmp_path / "metadata.sqlite3"), tmp_path / "staging")


def closed(journal: Journal, name: str, data: bytes) -> LocalFile:
    f = journal.create("", name)
    f.staging.write_bytes(data)
    journal.commit(f, len(data))
    got = journal.get(f.id)
    assert got is not None
    return got


async def passes(group: GroupCommit, n: int) -> None:
    """Until the group commit has ended its `n`th pass (within 5 s)."""
    for _ in range(100):
        if group.passes >= n:
            return
        await trio.sleep(0.05)
    pytest.fail(f"{group.passes} passes after 5 s, not {n}")


def on_disk(journal: Journal) -> set[str]:
    return {f.name for f in journal.all()} - {f.name for f in journal.not_on_disk()}


async def test_a_pass_makes_every_closed_file_durable_bytes_first(
        journal: Journal, monkeypatch: pytest.MonkeyPatch) -> None:
    disk = Disk(monkeypatch)
    a, b = closed(journal, "a.txt", b"aaa"), closed(journal, "b.txt", b"bbb")
    assert disk.synced == [] and on_disk(journal) == set()  # a close waits for no disk
    await GroupCommit(journal).sync()
    assert disk.synced == [str(a.staging), str(b.staging), str(journal.dir),
                           str(journal.wal)]
    assert on_disk(journal) == {"a.txt", "b.txt"}


async def test_the_group_commit_serves_every_close_of_an_interval_in_one_pass(
        journal: Journal, monkeypatch: pytest.MonkeyPatch) -> None:
    Disk(monkeypatch)
    group = GroupCommit(journal, interval=0.5)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(group.run)
        for i in range(20):
            closed(journal, f"{i}.txt", b"x")
        await trio.sleep(0.2)
        assert group.passes == 0  # (the interval gathers closes)
        await passes(group, 1)
        assert journal.not_on_disk() == [] and group.passes == 1
        closed(journal, "late.txt", b"y")  # the next close starts the next interval
        await passes(group, 2)
        assert journal.not_on_disk() == [] and group.passes == 2
        nursery.cancel_scope.cancel()


async def test_a_file_closed_again_during_a_pass_is_not_taken_for_durable(
        journal: Journal, monkeypatch: pytest.MonkeyPatch) -> None:
    f = closed(journal, "a.txt", b"v1")
    real = durability._fsync_files

    def close_again_meanwhile(paths: list[Path], directory: Path) -> set[Path]:
        failed = real(paths, directory)
        f.staging.write_bytes(b"v2, not fsync'd")  # (the trio thread waits meanwhile)
        journal.commit(f, 15)
        return failed

    monkeypatch.setattr(durability, "_fsync_files", close_again_meanwhile)
    await GroupCommit(journal).sync()
    assert on_disk(journal) == set()


def _reboot(journal: Journal, tmp_path: Path) -> Journal:
    """The daemon's next start in another boot: a new journal over the same files."""
    journal.store.close()
    again = Journal(Store(tmp_path / "metadata.sqlite3"), tmp_path / "staging")
    again.recover(boot="another boot")
    return again


async def test_after_a_power_loss_fsyncd_files_stay_and_the_last_closes_are_set_aside(
        journal: Journal, tmp_path: Path) -> None:
    journal.recover(boot="this boot")
    saved = closed(journal, "saved.txt", b"fsync'd before the power went")
    await GroupCommit(journal).sync([saved])  # what fsync(2) on the mount does
    late = closed(journal, "late.txt", b"closed a moment before")
    late.staging.write_bytes(b"clos")  # what the disk may hold of it: a part
    again = _reboot(journal, tmp_path)
    assert [(f.name, f.state) for f in again.all()] == [("saved.txt", "pending")]
    assert again.get(saved.id).staging.read_bytes() == b"fsync'd before the power went"  # type: ignore[union-attr]
    assert [p.name for p in again.lost_and_found.iterdir()] == [f"{late.id}-late.txt"]


def test_a_crash_of_the_daemon_alone_loses_no_closed_file(journal: Journal,
                                                           tmp_path: Path) -> None:
    """kill -9: the same boot, the kernel kept the pages: nothing is set aside."""
    journal.recover(boot="this boot")
    closed(journal, "a.txt", b"closed, never fsync'd")
    journal.store.close()
    again = Journal(Store(tmp_path / "metadata.sqlite3"), tmp_path / "staging")
    again.recover(boot="this boot")
    assert [(f.name, f.state) for f in again.all()] == [("a.txt", "pending")]
