"""The upload journal on its own (a real store, no uploader, no FUSE): the states
a written file goes through, the saves of editors, and what a restart finds."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from aionfs.store import Store
from aionfs.upload.journal import Journal, is_scratch


@pytest.fixture
def journal(tmp_path: Path) -> Journal:
    return Journal(Store(tmp_path / "metadata.sqlite3"), tmp_path / "staging")


def written(journal: Journal, name: str, data: bytes = b"hello", folder: str = "") -> int:
    f = journal.create(folder, name)
    f.staging.write_bytes(data)
    journal.commit(f, len(data))
    return f.id


@pytest.mark.parametrize(("name", "scratch"), [
    ("4913", True), (".report.md.swp", True), ("report.md~", True), ("sedA1b2C3", True),
    ("~$budget.xlsx", True), ("photo.jpg.part", True), (".goutputstream-XYZ", True),
    ("report.md", False), ("IMG_0001.JPG", False), ("2026 plan.pdf", False),
])
def test_scratch_names(name: str, scratch: bool) -> None:
    assert is_scratch(name) == scratch


def test_a_closed_file_waits_its_delay_then_is_due_and_leaves_once_synced(
        journal: Journal) -> None:
    jid = written(journal, "notes.txt")
    f = journal.get(jid)
    assert f is not None and f.state == "pending" and journal.queued() == 1
    assert journal.due(time.time(), delay=60) == []
    due = journal.due(time.time() + 61, delay=60)
    assert [d.id for d in due] == [jid]
    assert journal.sent(due[0], due[0].changed_at, "sha", "remote-1")
    journal.remove(due[0])
    assert journal.get(jid) is None and not due[0].staging.exists()


def test_the_uploader_reads_the_oldest_due_files_only(journal: Journal) -> None:
    """A copy of 100,000 files is not read whole for each batch of 100: the oldest
    `limit` come back, and the oldest's close time without reading any."""
    ids = [written(journal, f"note {i}.txt") for i in range(30)]
    later = time.time() + 61
    assert [d.id for d in journal.due(later, delay=60, limit=10)] == ids[:10]
    assert journal.oldest_due(later, delay=60) == journal.get(ids[0]).changed_at  # type: ignore[union-attr]
    assert journal.oldest_due(time.time(), delay=60) is None

def test_an_editors_save_uploads_the_real_name_once_and_never_the_scratch_file(
        journal: Journal) -> None:
    """Write a temp file, rename it over the real name: the temp was never due."""
    temp = journal.create("", ".report.md.swp")
    temp.staging.write_bytes(b"v2")
    journal.commit(temp, 2)
    assert journal.due(time.time() + 3600, delay=0) == []
    journal.move(temp, "", "report.md")
    f = journal.get(temp.id)
    assert f is not None and (f.state, f.scratch) == ("pending", False)
    journal.move(f, "", "report.md~")  # renamed to a backup name: stays local
    assert journal.get(temp.id).state == "local"  # type: ignore[union-attr]


def test_a_file_rewritten_while_its_upload_ran_does_not_take_the_old_answer(
        journal: Journal) -> None:
    jid = written(journal, "a.txt", b"v1")
    taken = journal.get(jid)
    assert taken is not None
    time.sleep(0.01)
    again = journal.get(jid)
    assert again is not None
    again.staging.write_bytes(b"v2")
    journal.commit(again, 2)  # the user saved again while v1 was on its way
    assert not journal.sent(taken, taken.changed_at, "sha-v1", "remote-v1")
    now = journal.get(jid)
    assert now is not None and now.state == "pending" and now.replaced == ["remote-v1"]


def test_a_file_deleted_while_in_flight_is_kept_to_delete_what_lands(
        journal: Journal) -> None:
    jid = written(journal, "a.txt")
    f = journal.get(jid)
    assert f is not None
    journal.in_flight.add(jid)
    journal.drop(f)
    kept = journal.get(jid)
    assert kept is not None and kept.discard
    assert [d.id for d in journal.due(time.time(), delay=3600)] == [jid]  # no delay
    journal.in_flight.clear()
    other = journal.get(written(journal, "b.txt"))
    assert other is not None
    journal.drop(other)  # never sent: simply gone
    assert journal.get(other.id) is None


def test_a_restart_keeps_what_may_be_cut_off_and_clears_strays(journal: Journal) -> None:
    never_closed = journal.create("", "big.jpg")
    never_closed.staging.write_bytes(b"half")
    done = written(journal, "whole.jpg")
    journal.update(journal.get(done), state="failed", last_error="503")  # type: ignore[arg-type]
    (journal.dir / "999").write_bytes(b"unlinked while open")
    assert journal.recover() == 1
    cut = journal.get(never_closed.id)
    assert cut is not None and cut.state == "failed" and cut.incomplete
    assert journal.due(time.time() + 3600, delay=0)[0].id == done  # tried once more
    assert not (journal.dir / "999").exists()
