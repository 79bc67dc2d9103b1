"""Planning the replay of remote changes (the mount-level behaviour is in test_mount)."""

from aionfs.fs.echo import Echo, plan_echoes
from aionfs.store import Event


def test_a_name_removed_and_added_for_one_inode_is_a_rename() -> None:
    events = [Event("entry_removed", 7, 1, "a.jpg"), Event("entry_added", 7, 9, "b.jpg"),
              Event("attr", 7)]
    assert plan_echoes(events) == [Echo("rename", 7, False, (1, "a.jpg"), (9, "b.jpg"))]


def test_directories_change_before_their_files_and_go_last() -> None:
    events = [Event("entry_removed", 5, 1, "old", is_dir=True), Event("gone", 5),
              Event("entry_added", 8, 3, "new.jpg"),
              Event("entry_removed", 6, 1, "Before", is_dir=True),
              Event("entry_added", 6, 1, "After", is_dir=True),
              Event("entry_added", 4, 1, "Fresh", is_dir=True),
              Event("entry_removed", 2, 3, "x.png")]
    kinds = [(e.kind, e.inode) for e in plan_echoes(events)]
    assert kinds == [("rename", 6), ("mkdir", 4), ("unlink", 2), ("mknod", 8), ("rmdir", 5)]


def test_events_without_a_name_are_not_echoed() -> None:
    assert plan_echoes([Event("attr", 3), Event("content", 3), Event("gone", 3)]) == []


def test_a_file_gone_from_the_library_is_marked_so_its_watchers_see_it_deleted() -> None:
    """Only a gone inode gets the delete notification (IN_DELETE_SELF); a name that
    merely left a listed folder must not tell the file's watchers it was deleted."""
    events = [Event("entry_removed", 2, 3, "x.png"), Event("gone", 2),
              Event("entry_removed", 4, 3, "y.png")]
    assert [(e.inode, e.gone) for e in plan_echoes(events)] == [(2, True), (4, False)]
