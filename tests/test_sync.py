"""Sync against the emulator: convergence, remote changes with their events, guards."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import trio

from aionfs.api import AionClient, Priority
from aionfs.store import ROOT_INODE, ROOT_KEY, Event, Store
from aionfs.sync import InconsistentAnswers, MassDeleteRefused, Syncer, SyncOptions
from tests.conftest import EmulatorProcess, make_client
from tests.media import image_bytes
from tests.sync_helpers import assert_same, remote_shape


@pytest.fixture
def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = Store(tmp_path / "meta.sqlite3")
    yield s  # type: ignore[misc]
    s.close()


class Recorder:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def __call__(self, events: list[Event]) -> None:
        self.events += events

    def take(self) -> list[Event]:
        out, self.events = self.events, []
        return out


async def populate(client: AionClient) -> dict[str, str]:
    """A small workspace: nested folders, files in them and at the root."""
    ids: dict[str, str] = {}
    a = await client.create_folder("Alpha")
    b = await client.create_folder("Beta", a.id)
    c = await client.create_folder("Gamma")
    ids.update(alpha=a.id, beta=b.id, gamma=c.id)
    for i, (name, folder) in enumerate([("a1.jpg", a.id), ("a2.png", a.id), ("b1.jpg", b.id),
                                        ("r1.jpg", None), ("r2.gif", None)]):
        fmt = {"jpg": "JPEG", "png": "PNG", "gif": "GIF"}[name.split(".")[1]]
        up = await client.upload_file(image_bytes((i * 30, 5, 5), fmt=fmt), name,
                                      tags=["t"] if i % 2 else None)
        ids[name] = up.image_id
        if folder:
            await client.move_files([up.image_id], folder)
    return ids


async def test_full_sync_mirrors_the_workspace(client: AionClient, store: Store) -> None:
    ids = await populate(client)
    syncer = Syncer(client, store)
    report = await syncer.full_sync()
    assert (report.added, report.deleted) == (5, 0)
    assert_same(store, await remote_shape(client))
    names = {e.name for e in store.list_dir(ROOT_INODE)}
    assert names == {"Alpha", "Gamma", "r1.jpg", "r2.gif"}
    beta = store.resolve("Alpha/Beta")
    assert beta is not None and beta.is_dir
    assert store.resolve("Alpha/Beta/b1.jpg").inode == store.file(ids["b1.jpg"])["inode"]
    # Inodes are stable across a reopen and a second sync.
    before = {e.name: e.inode for e in store.list_dir(ROOT_INODE)}
    again = await syncer.full_sync()
    assert (again.added, again.updated, again.moved, again.deleted) == (0, 0, 0, 0)
    store2 = Store(store.path)
    assert {e.name: e.inode for e in store2.list_dir(ROOT_INODE)} == before
    store2.close()


async def test_lazy_listing_costs_few_requests(client: AionClient, store: Store) -> None:
    ids = await populate(client)
    syncer = Syncer(client, store)
    before = client.stats.requests
    await syncer.refresh_tree()
    assert {e.name for e in store.list_dir(ROOT_INODE)} == {"Alpha", "Gamma"}
    await syncer.ensure_listed(ids["alpha"])
    assert client.stats.requests - before == 2
    alpha = store.resolve("Alpha")
    assert {e.name for e in store.list_dir(alpha.inode)} == {"Beta", "a1.jpg", "a2.png"}
    await syncer.ensure_listed(ids["alpha"])  # listed once: no more requests
    assert client.stats.requests - before == 2


async def test_remote_changes_are_picked_up_with_events(client: AionClient,
                                                        store: Store) -> None:
    ids = await populate(client)
    syncer = Syncer(client, store)
    rec = Recorder()
    syncer.subscribe(rec)
    await syncer.full_sync()
    rec.take()
    inode = {k: store.file(v)["inode"] for k, v in ids.items() if "." in k}

    # new file at the root, found by polling
    new = await client.upload_file(image_bytes((1, 2, 3)), "new.jpg")
    await syncer.poll()
    assert store.file(new.image_id)["placement"] == "root"
    assert any(e.kind == "entry_added" and e.name == "new.jpg" and e.parent == ROOT_INODE
               for e in rec.take())

    # retitle and retag
    await client.update_file(ids["a1.jpg"], title="Renamed", tags=["x", "y"])
    await syncer.list_folder(ids["alpha"])
    alpha_inode = store.folder(ids["alpha"])["inode"]
    events = rec.take()
    assert Event("entry_removed", inode["a1.jpg"], alpha_inode, "a1.jpg") in events
    assert Event("entry_added", inode["a1.jpg"], alpha_inode, "Renamed.jpg") in events
    assert Event("attr", inode["a1.jpg"]) in events

    # move a file between folders: the count change triggers a relisting
    await client.move_files([ids["a2.png"]], ids["gamma"])
    await syncer.poll()
    gamma_inode = store.folder(ids["gamma"])["inode"]
    events = rec.take()
    assert Event("entry_removed", inode["a2.png"], alpha_inode, "a2.png") in events
    assert Event("entry_added", inode["a2.png"], gamma_inode, "a2.png") in events

    # rename and move a folder
    await client.rename_folder(ids["beta"], "Beta2")
    await client.move_folder(ids["beta"], None)
    await syncer.poll()
    beta_inode = store.folder(ids["beta"])["inode"]
    events = rec.take()
    assert Event("entry_removed", beta_inode, alpha_inode, "Beta", is_dir=True) in events
    assert Event("entry_added", beta_inode, ROOT_INODE, "Beta2", is_dir=True) in events

    # delete a file
    await client.delete_file(ids["b1.jpg"])
    await syncer.poll()
    events = rec.take()
    assert Event("gone", inode["b1.jpg"]) in events
    assert Event("entry_removed", inode["b1.jpg"], beta_inode, "b1.jpg") in events
    assert store.file(ids["b1.jpg"]) is None

    # delete a root file
    await client.delete_file(ids["r2.gif"])
    await syncer.poll()
    assert Event("gone", inode["r2.gif"]) in rec.take()
    assert_same(store, await remote_shape(client))


async def test_folder_deletes_in_both_modes(client: AionClient, store: Store) -> None:
    ids = await populate(client)
    syncer = Syncer(client, store)
    rec = Recorder()
    syncer.subscribe(rec)
    await syncer.full_sync()
    rec.take()
    gamma_file = await client.upload_file(image_bytes((9, 9, 1)), "g.jpg")
    await client.move_files([gamma_file.image_id], ids["gamma"])
    await syncer.poll()

    # move_to_parent: Beta's file moves up into Alpha
    await client.delete_folder(ids["beta"], mode="move_to_parent")
    await syncer.poll()
    assert store.file(ids["b1.jpg"])["folder_id"] == ids["alpha"]
    assert store.folder(ids["beta"]) is None
    assert_same(store, await remote_shape(client))

    # delete_all: Gamma's file is gone
    rec.take()
    await client.delete_folder(ids["gamma"], mode="delete_all")
    await syncer.poll()
    assert store.file(gamma_file.image_id) is None
    assert any(e.kind == "gone" for e in rec.take())
    assert_same(store, await remote_shape(client))


async def test_root_is_all_files_minus_folder_members(client: AionClient, store: Store
                                                      ) -> None:
    ids = await populate(client)
    syncer = Syncer(client, store)
    await syncer.full_sync()
    assert set(store.members(ROOT_KEY)) == {ids["r1.jpg"], ids["r2.gif"]}
    # A root file moved into a folder leaves the root.
    await client.move_files([ids["r1.jpg"]], ids["gamma"])
    await syncer.poll()
    assert set(store.members(ROOT_KEY)) == {ids["r2.gif"]}
    assert set(store.members(ids["gamma"])) == {ids["r1.jpg"]}
    # A folder file moved to the root arrives there.
    await client.move_files([ids["a1.jpg"]], None)
    await syncer.poll()
    assert set(store.members(ROOT_KEY)) == {ids["r2.gif"], ids["a1.jpg"]}


async def test_mass_delete_guard(client: AionClient, store: Store,
                                 emulator: EmulatorProcess, tenant_key: str) -> None:
    folder = await client.create_folder("Many")
    ups = [await client.upload_file(image_bytes((i, i, i), (8, 8)), f"{i}.jpg")
           for i in range(30)]
    await client.move_files([u.image_id for u in ups], folder.id)
    syncer = Syncer(client, store)
    await syncer.full_sync()
    assert len(store.members(folder.id)) == 30

    # A fault answers listings with nothing: the store must not empty itself.
    emulator.set_faults(tenant_key, "empty:1")
    try:
        await syncer.list_folder(folder.id)
        await syncer.revalidate(older_than=0)
        await syncer.full_sync()
        assert len(store.members(folder.id)) == 30
        # Even when asked to verify by id, an empty answer deletes nothing.
        with pytest.raises(InconsistentAnswers):
            await syncer._find_gone(set(store.members(folder.id)), Priority.BACKGROUND)
    finally:
        emulator.set_faults(tenant_key, "")
    assert len(store.members(folder.id)) == 30

    # Real mass deletion is refused without confirmation, then applied with it.
    await client.batch_delete([u.image_id for u in ups[:25]])
    with pytest.raises(MassDeleteRefused):
        await syncer.list_folder(folder.id)
    assert store.counts()["files"] == 30
    confirmed = Syncer(client, store, SyncOptions(allow_mass_delete=True))
    report = await confirmed.list_folder(folder.id)
    assert report.deleted == 25 and len(store.members(folder.id)) == 5


async def test_names_are_safe_distinct_and_stable(client: AionClient, store: Store) -> None:
    titles = ["Same", "Same", "a/b", "nul\x00byte", "é" * 200, ".", "..", "search", "tags",
              "  padded  ", "new\nline"]
    ids = []
    for i, title in enumerate(titles):
        up = await client.upload_file(image_bytes((i, 1, 1)), f"f{i}.jpg")
        await client.update_file(up.image_id, title=title)
        ids.append(up.image_id)
    await client.create_folder("search")  # clashes with the virtual folder
    syncer = Syncer(client, store)
    await syncer.full_sync()
    entries = {e.name: e for e in store.list_dir(ROOT_INODE)}
    by_inode = {e.inode: e.name for e in entries.values()}
    names = [by_inode[store.file(i)["inode"]] for i in ids]
    assert names[0] == "Same.jpg" and names[1] == f"Same ({ids[1].replace('-', '')[:8]}).jpg"
    assert names[2] == "a／b.jpg" and names[3] == "nulbyte.jpg"
    assert len(names[4].encode()) <= 255 and names[4].endswith(".jpg")
    assert names[5] == "..jpg" and names[6] == "...jpg"
    assert names[7] == "search.jpg"  # not a clash: the extension differs
    assert names[9] == "padded.jpg" and names[10] == "new line.jpg"
    assert "search" not in entries  # the virtual folder keeps its name
    assert any(n.startswith("search (") and entries[n].is_dir for n in entries)
    assert len(set(names)) == len(names)
    # A resync keeps every name. Deleting the oldest "Same" gives the other the plain
    # name (names are a function of the folder's members: every client agrees).
    await syncer.full_sync()
    assert {e.name for e in store.list_dir(ROOT_INODE)} == set(entries)
    await client.delete_file(ids[0])
    await syncer.full_sync()
    shown = {e.name for e in store.list_dir(ROOT_INODE)}
    assert "Same.jpg" in shown and names[1] not in shown


async def wait_until(predicate: Callable[[], bool]) -> None:
    """Poll a condition that another task (or process) makes true (callers bound it)."""
    while not predicate():  # noqa: ASYNC110 - the condition lives in SQLite, not in trio
        await trio.sleep(0.05)


async def test_background_loop_follows_the_workspace(client: AionClient, store: Store,
                                                     emulator: EmulatorProcess,
                                                     tenant_key: str) -> None:
    ids = await populate(client)
    syncer = Syncer(client, store)
    with trio.fail_after(60):
        await _follow(syncer, store, client, emulator, tenant_key, ids)
    assert_same(store, await remote_shape(client))


async def _follow(syncer: Syncer, store: Store, client: AionClient,
                  emulator: EmulatorProcess, tenant_key: str, ids: dict[str, str]) -> None:
    async with trio.open_nursery() as nursery:
        await nursery.start(lambda task_status: syncer.run(poll_interval=0.1,
                                                           revalidate_interval=0.2,
                                                           task_status=task_status))
        await wait_until(lambda: store.counts()["files"] == 5
                         and not store.counts()["unplaced"])
        await client.update_file(ids["b1.jpg"], title="Changed remotely")
        # a retitle inside a folder is caught by revalidation
        await wait_until(lambda: store.file(ids["b1.jpg"])["title"] == "Changed remotely")
        emulator.set_faults(tenant_key, "down:1")  # offline: the loop keeps going
        await wait_until(lambda: syncer.last_error is not None)
        assert store.counts()["files"] == 5
        emulator.set_faults(tenant_key, "")
        await client.delete_file(ids["r1.jpg"])
        await wait_until(lambda: store.file(ids["r1.jpg"]) is None)
        nursery.cancel_scope.cancel()


async def test_a_tree_fetched_before_a_folder_was_made_does_not_delete_it(
        client: AionClient, store: Store) -> None:
    """mkdir on the mount (or a folder made offline, created when the API returns)
    while a background refresh waits for its answer: that answer predates the folder."""
    from aionfs.store.db import folder_row

    syncer = Syncer(client, store)
    await syncer.refresh_tree()
    real = client.folder_tree
    fetched, proceed = trio.Event(), trio.Event()

    async def held_back(**kw: object) -> object:
        tree = await real(**kw)  # type: ignore[arg-type]
        if not fetched.is_set():
            fetched.set()
            await proceed.wait()
        return tree

    client.folder_tree = held_back  # type: ignore[method-assign]
    async with trio.open_nursery() as nursery:
        nursery.start_soon(syncer.refresh_tree)
        await fetched.wait()
        made = await real()  # (the tree as the background fetch saw it: without "Made")
        folder = await client.create_folder("Made")
        with store.transaction():
            store.upsert_folders([folder_row(folder)])
            store.rename_dir(ROOT_KEY)
        syncer.folders_made()
        proceed.set()
    assert "Made" not in {f.name for f in made}
    assert store.folder(folder.id) is not None
    assert store.lookup(ROOT_INODE, "Made") is not None


async def test_polling_spends_at_most_a_tenth_of_the_plan(emulator: EmulatorProcess,
                                                          tenant_key: str, store: Store) -> None:
    """Idle, keeping up costs at most 10 % of the budget: on FREE (10 a minute) a round
    of two requests comes every two minutes; on PROFESSIONAL the poll interval rules."""
    for rpm, pause in ((10, 120.0), (100, 60.0)):
        async with make_client(emulator, tenant_key, rpm=rpm, unlimited=False) as c:
            assert Syncer(c, store)._paced(60.0, 2) == pause
    async with make_client(emulator, tenant_key) as c:  # no limit: the interval
        assert Syncer(c, store)._paced(60.0, 2) == 60.0


async def test_a_library_kept_in_folders_is_crawled_without_the_all_files_listing(
        client: AionClient, store: Store) -> None:
    """Every file in a folder: the crawl's root step is one request (its total equals
    the folders' files), not a page per 100 files of the whole library; a file the
    store knew at the root that is gone is deleted, one that appeared is found."""
    ids = await populate(client)
    await client.move_files([ids["r1.jpg"], ids["r2.gif"]], ids["gamma"])
    syncer = Syncer(client, store, SyncOptions(page_size=2))  # (all files: 3 pages)
    before = client.stats.requests
    await syncer.full_sync()
    # the tree, one page per folder (3), and the one request of the root step
    assert client.stats.requests - before == 1 + 3 + 1
    assert store.counts()["root_files"] == 0 and store.counts()["files"] == 5
    # with a file at the root again, the crawl lists all files to find it
    await client.move_files([ids["r1.jpg"]], None)
    await Syncer(client, store).full_sync()
    assert store.member_ids(ROOT_KEY) == [ids["r1.jpg"]]


async def test_revalidating_the_root_looks_its_files_up_by_id(
        client: AionClient, store: Store) -> None:
    """A root file retitled and another deleted, counts unchanged elsewhere: the
    revalidation sees both with a request per 100 root files, not the all-files
    listing."""
    ids = await populate(client)
    syncer = Syncer(client, store)
    await syncer.full_sync()
    await client.update_file(ids["r1.jpg"], title="Renamed at the root")
    await client.batch_delete([ids["r2.gif"]])
    before = client.stats.requests
    while (key := (store.stale_listings(float("inf")) or [None])[0]) != ROOT_KEY:
        with store.transaction():  # (the folders: listed just now, as far as this test goes)
            store.set_listing(key, True, 0)  # type: ignore[arg-type]
    await syncer.revalidate(older_than=0, limit=1)
    # one lookup of the two root files: the one it lacks is gone
    assert client.stats.requests - before == 1
    assert store.member_ids(ROOT_KEY) == [ids["r1.jpg"]]
    assert store.file(ids["r1.jpg"])["title"] == "Renamed at the root"


@pytest.mark.parametrize("fault", ["short:1", "drift:1"])
async def test_listings_shorter_than_their_total_or_drifting_remove_nothing(
        client: AionClient, store: Store, emulator: EmulatorProcess, tenant_key: str,
        fault: str) -> None:
    """Pages that leave out items (a listing shorter than its total_count: incomplete,
    so nothing is deleted or moved out), or that each repeat the previous page's last
    item (files added ahead while paging: the repeats are one file each, nothing is
    lost); once the service answers whole again the store equals the workspace."""
    ids = await populate(client)
    for i in range(6):  # (enough files for several pages of 2)
        up = await client.upload_file(image_bytes((i, 90, 9)), f"more{i}.jpg")
        await client.move_files([up.image_id], ids["gamma"])
    syncer = Syncer(client, store, SyncOptions(page_size=2))
    await syncer.full_sync()
    before = store.counts()
    emulator.set_faults(tenant_key, fault)
    try:
        for key in [ids["gamma"], ROOT_KEY]:  # (listings of several pages)
            report = await syncer.list_folder(key)
            assert report.deleted == 0 and report.moved == 0
            # short pages never add up to the total; repeated items are one file each
            assert report.incomplete == (fault == "short:1")
        await syncer.poll()
        assert store.counts() == before
    finally:
        emulator.set_faults(tenant_key, "")
    await syncer.full_sync()
    assert_same(store, await remote_shape(client))


async def test_a_folder_deleted_between_two_pages_of_its_listing_loses_no_file(
        client: AionClient, store: Store) -> None:
    """The folder goes (its files moved to its parent) after the first page of its
    listing: the listing is cut short (the rest answers as a folder naming nothing),
    so nothing is removed; the next poll follows the tree and the store equals the
    workspace, every file still there."""
    ids = await populate(client)
    for i in range(5):
        up = await client.upload_file(image_bytes((i, 7, 70)), f"site{i}.jpg")
        await client.move_files([up.image_id], ids["beta"])
    syncer = Syncer(client, store, SyncOptions(page_size=2))
    await syncer.full_sync()
    pages = client.iter_file_pages

    async def deleting_after_the_first_page(**filters: object) -> AsyncIterator[object]:
        first = True
        async for page in pages(**filters):
            yield page
            if first and filters.get("folder_id") == ids["beta"]:
                first = False
                await client.delete_folder(ids["beta"], mode="move_to_parent")

    client.iter_file_pages = deleting_after_the_first_page  # type: ignore[method-assign,assignment]
    try:
        report = await syncer.list_folder(ids["beta"])
    finally:
        client.iter_file_pages = pages  # type: ignore[method-assign]
    assert report.deleted == 0 and report.incomplete == 1
    await syncer.poll()
    assert store.counts()["files"] == 10
    assert_same(store, await remote_shape(client))
