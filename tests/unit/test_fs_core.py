"""The filesystem core without FUSE: what a user's calls get, answered from a real
store, the content cache over FakeStorage and a fake API client; the kernel's
notifications are recorded instead of sent."""

from __future__ import annotations

import errno
import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import pytest
import trio
import trio.testing

from aionfs.cache.content import ContentCache
from aionfs.fs.core import RENAME_NOREPLACE, Filesystem
from aionfs.fs.echo import Echoes
from aionfs.fs.local import LocalFiles
from aionfs.fs.notify import KernelCalls, KernelNotifier
from aionfs.fs.view import Attr, FsError, LibraryView
from aionfs.fs.writer import Writer
from aionfs.store import ROOT_INODE, Event, Store
from aionfs.sync import Syncer
from aionfs.upload.durability import GroupCommit
from aionfs.upload.journal import Journal
from aionfs.views import QueryCache, VirtualTree
from tests.unit.fakes import FakeClient, FakeStorage, KernelRecorder, file_item, place

BIG = 3 << 20
CALLER = SimpleNamespace(pid=os.getpid(), uid=os.getuid(), gid=os.getgid(), umask=0o022)


@dataclass
class Entry:
    attr: Attr
    entry_timeout: float
    attr_timeout: float

    @property
    def st_ino(self) -> int:
        return self.attr.inode


@dataclass
class Mounted:
    fs: Filesystem
    store: Store
    storage: FakeStorage
    client: FakeClient
    kernel: KernelRecorder

    async def lookup(self, parent: int, name: str) -> Entry:
        return await self.fs.lookup(parent, os.fsencode(name), CALLER)

    async def names(self, inode: int) -> list[str]:
        fh = await self.fs.opendir(inode, CALLER)
        try:
            return [os.fsdecode(name) for name, _ in self.fs.listing_of(fh)]
        finally:
            await self.fs.releasedir(fh)

    async def read_all(self, inode: int) -> bytes:
        opened = await self.fs.open(inode, os.O_RDONLY, CALLER)
        try:
            return await self.fs.read(opened.fh, 0, 1 << 24)
        finally:
            await self.fs.release(opened.fh)


@asynccontextmanager
async def mounted(tmp_path: Path) -> AsyncIterator[Mounted]:
    store = Store(tmp_path / "metadata.sqlite3")
    place(store, {"F1": "Photos", "F2": "Scans"}, {
        "": [file_item("r1", 11, title="readme", format="txt", media_type="document",
                       content_type="text/plain")],
        "F1": [file_item("a", 5, title="alpha", tags='["sea"]'),
               file_item("b", 6, title="beta", tags='["sea", "sky"]')],
        "F2": [file_item("big", BIG, title="scan")]})
    storage, client, kernel = FakeStorage(), FakeClient(), KernelRecorder()
    storage.put("r1", b"hello world")
    storage.put("a", b"AAAAA")
    storage.put("b", b"BBBBBB")
    storage.put("big", bytes(range(256)) * (BIG // 256))
    syncer = Syncer(client, store)  # type: ignore[arg-type]
    view = LibraryView(store, uid=os.getuid(), gid=os.getgid(), read_only=False, views=True)
    cache = ContentCache(tmp_path / "cache", store, storage,  # type: ignore[arg-type]
                         capacity=1 << 30, read_timeout=5)
    journal = Journal(store, tmp_path / "staging")
    local = LocalFiles(journal, store)
    local.load()
    durability = GroupCommit(journal)
    writer = Writer(view, store, client, syncer, local, lambda: None)  # type: ignore[arg-type]
    views = VirtualTree(store, QueryCache(store, client, syncer), view)  # type: ignore[arg-type]
    notifier = KernelNotifier(KernelCalls(kernel.invalidate_inode, kernel.invalidate_entry_async,
                                          kernel.invalidate_entry))
    echoes = Echoes(tmp_path, store.dir_path, notifier.forget_deleted, enabled=False)
    fs = Filesystem(store=store, client=client, syncer=syncer,  # type: ignore[arg-type]
                    view=view, cache=cache, echoes=echoes, views=views, local=local,
                    writer=writer, durability=durability, thumbs=None, notify=notifier,
                    make_entry=Entry)
    syncer.subscribe(fs.on_events)
    fs.mounted = True
    async with trio.open_nursery() as nursery:
        cache.start(nursery)
        nursery.start_soon(durability.run)
        yield Mounted(fs, store, storage, client, kernel)
        nursery.cancel_scope.cancel()
    notifier.close()
    store.close()


async def test_the_root_lists_its_folders_files_and_the_virtual_folders(tmp_path: Path) -> None:
    async with mounted(tmp_path) as m:
        assert await m.names(ROOT_INODE) == ["Photos", "Scans", "by-date", "colors",
                                             "readme.txt", "search", "tags", "text"]
        photos = await m.lookup(ROOT_INODE, "Photos")
        assert photos.attr.is_dir and await m.names(photos.st_ino) == ["alpha.jpg", "beta.jpg"]


async def test_a_library_file_reads_its_bytes_and_is_kept_by_the_kernel(tmp_path: Path) -> None:
    async with mounted(tmp_path) as m:
        readme = await m.lookup(ROOT_INODE, "readme.txt")
        assert readme.attr.size == 11 and readme.entry_timeout > 0
        opened = await m.fs.open(readme.st_ino, os.O_RDONLY, CALLER)
        assert opened.keep_cache
        assert await m.fs.read(opened.fh, 6, 100) == b"world"
        await m.fs.release(opened.fh)
        assert m.storage.url_requests == 1


async def test_a_name_too_long_gets_enametoolong(tmp_path: Path) -> None:
    async with mounted(tmp_path) as m:
        with pytest.raises(FsError) as err:
            await m.lookup(ROOT_INODE, "x" * 256)
        assert err.value.errno == errno.ENAMETOOLONG


async def test_a_missing_name_is_a_negative_entry_the_kernel_keeps(tmp_path: Path) -> None:
    """Inode 0: the kernel answers ENOENT and keeps the answer (cp looks twice)."""
    async with mounted(tmp_path) as m:
        missing = await m.lookup(ROOT_INODE, "missing.txt")
        assert missing.st_ino == 0 and missing.entry_timeout > 0
        readme = await m.lookup(ROOT_INODE, "readme.txt")
        m.fs.on_events([Event("entry_added", readme.st_ino, ROOT_INODE, "late.txt", False)])
        assert (ROOT_INODE, b"late.txt", 0) in m.kernel.entries  # a name appeared: told


async def test_a_name_that_is_not_utf8_is_absent(tmp_path: Path) -> None:
    async with mounted(tmp_path) as m:
        with pytest.raises(FsError) as err:
            await m.fs.lookup(ROOT_INODE, b"\xff.txt", CALLER)
        assert err.value.errno == errno.ENOENT


async def test_a_new_file_is_listed_with_its_size_and_pending_state(tmp_path: Path) -> None:
    async with mounted(tmp_path) as m:
        photos = await m.lookup(ROOT_INODE, "Photos")
        opened, entry = await m.fs.create(photos.st_ino, b"notes.txt", 0o644, os.O_WRONLY,
                                          CALLER)
        assert await m.fs.write(opened.fh, 0, b"twelve bytes") == 12
        await m.fs.flush(opened.fh)
        await m.fs.release(opened.fh)
        assert "notes.txt" in await m.names(photos.st_ino)
        attr = (await m.fs.getattr(entry.st_ino)).attr
        assert attr.size == 12
        assert await m.fs.getxattr(entry.st_ino, b"user.aion.sync_state", CALLER) == b"pending"
        assert await m.read_all(entry.st_ino) == b"twelve bytes"


async def test_files_cannot_be_made_where_they_mean_nothing(tmp_path: Path) -> None:
    async with mounted(tmp_path) as m:
        search = await m.lookup(ROOT_INODE, "search")
        by_date = await m.lookup(ROOT_INODE, "by-date")
        for parent in (search, by_date):
            with pytest.raises(FsError) as err:
                await m.fs.create(parent.st_ino, b"a.jpg", 0o644, os.O_WRONLY, CALLER)
            assert err.value.errno == errno.EPERM
        with pytest.raises(FsError) as err:
            await m.fs.symlink(ROOT_INODE, b"link", b"target", CALLER)
        assert err.value.errno == errno.EPERM


async def test_mkdir_in_search_saves_a_query_and_rmdir_forgets_it(tmp_path: Path) -> None:
    async with mounted(tmp_path) as m:
        search = await m.lookup(ROOT_INODE, "search")
        assert await m.names(search.st_ino) == []
        await m.fs.mkdir(search.st_ino, b"red boats", 0o755, CALLER)
        assert await m.names(search.st_ino) == ["red boats"]
        with pytest.raises(FsError) as err:
            await m.fs.mkdir(search.st_ino, b"red boats", 0o755, CALLER)
        assert err.value.errno == errno.EEXIST
        await m.fs.rmdir(search.st_ino, b"red boats", CALLER)
        assert await m.names(search.st_ino) == []
        with pytest.raises(FsError) as err:
            await m.fs.rmdir(search.st_ino, b"red boats", CALLER)
        assert err.value.errno == errno.ENOENT


async def test_tag_folders_list_intersections_and_linking_tags_a_file(tmp_path: Path) -> None:
    async with mounted(tmp_path) as m:
        tags = await m.lookup(ROOT_INODE, "tags")
        assert await m.names(tags.st_ino) == ["sea", "sky"]
        sea = await m.lookup(tags.st_ino, "sea")
        assert await m.names(sea.st_ino) == ["alpha.jpg", "beta.jpg"]
        sea_sky = await m.lookup(sea.st_ino, "sky")  # reachable by path, not listed
        assert await m.names(sea_sky.st_ino) == ["beta.jpg"]
        sky = await m.lookup(tags.st_ino, "sky")
        photos = await m.lookup(ROOT_INODE, "Photos")
        alpha = await m.lookup(photos.st_ino, "alpha.jpg")
        await m.fs.link(alpha.st_ino, sky.st_ino, b"alpha.jpg", CALLER)
        assert m.client.tag_updates == [("a", ["sea", "sky"])]
        assert json.loads(m.store.file("a")["tags"]) == ["sea", "sky"]
        assert "alpha.jpg" in await m.names(sky.st_ino)
        await m.fs.unlink(sea.st_ino, b"alpha.jpg", CALLER)  # takes the folder's own tag
        assert m.client.tag_updates[-1] == ("a", ["sky"])
        with pytest.raises(FsError) as err:  # tags/ itself is no tag
            await m.fs.link(alpha.st_ino, tags.st_ino, b"alpha.jpg", CALLER)
        assert err.value.errno == errno.EPERM


async def test_by_date_lists_years_then_months_then_files(tmp_path: Path) -> None:
    async with mounted(tmp_path) as m:
        by_date = await m.lookup(ROOT_INODE, "by-date")
        assert await m.names(by_date.st_ino) == ["2026"]
        year = await m.lookup(by_date.st_ino, "2026")
        assert await m.names(year.st_ino) == ["01"]
        month = await m.lookup(year.st_ino, "01")
        assert sorted(await m.names(month.st_ino)) == ["alpha.jpg", "beta.jpg", "readme.txt",
                                                   "scan.jpg"]
        assert stat_is_readonly_dir((await m.fs.getattr(month.st_ino)).attr)


def stat_is_readonly_dir(attr: Attr) -> bool:
    return attr.is_dir and attr.mode & 0o777 == 0o555


async def test_forgotten_virtual_folders_are_released(tmp_path: Path) -> None:
    async with mounted(tmp_path) as m:
        search = await m.lookup(ROOT_INODE, "search")
        queries = [await m.lookup(search.st_ino, f"query {i}") for i in range(50)]
        before = m.fs.inode_counts()["virtual_folders"]
        await m.fs.forget([(q.st_ino, 1) for q in queries])
        assert m.fs.inode_counts()["virtual_folders"] == before - 50
        # a handle the kernel still held revives its node
        assert (await m.fs.getattr(queries[0].st_ino)).attr.is_dir


async def test_a_remote_delete_is_told_to_the_kernel_with_the_inode(tmp_path: Path) -> None:
    async with mounted(tmp_path) as m:
        readme = await m.lookup(ROOT_INODE, "readme.txt")
        m.fs.on_events([Event("entry_removed", readme.st_ino, ROOT_INODE, "readme.txt", False),
                        Event("gone", readme.st_ino, None, None, False)], echo=False)
        assert (ROOT_INODE, b"readme.txt", readme.st_ino) in m.kernel.entries


async def test_a_remote_change_of_a_looked_up_file_invalidates_its_pages(
        tmp_path: Path) -> None:
    async with mounted(tmp_path) as m:
        readme = await m.lookup(ROOT_INODE, "readme.txt")
        m.fs.on_events([Event("content", readme.st_ino, None, None, False)], echo=False)
        m.fs.notify.close()  # (drains the worker's queue)
        assert m.kernel.inodes == [(readme.st_ino, False)]


async def test_acls_and_security_labels_are_unsupported_not_missing(tmp_path: Path) -> None:
    async with mounted(tmp_path) as m:
        readme = await m.lookup(ROOT_INODE, "readme.txt")
        with pytest.raises(FsError) as err:
            await m.fs.getxattr(readme.st_ino, b"system.posix_acl_access", CALLER)
        assert err.value.errno == errno.EOPNOTSUPP
        with pytest.raises(FsError) as err:
            await m.fs.setxattr(readme.st_ino, b"security.selinux", b"x", CALLER)
        assert err.value.errno == errno.ENOTSUP
        with pytest.raises(FsError) as err:
            await m.fs.getxattr(readme.st_ino, b"user.nothing", CALLER)
        assert err.value.errno == errno.ENODATA


async def test_rename_exchange_is_refused_and_noreplace_keeps_the_target(
        tmp_path: Path) -> None:
    async with mounted(tmp_path) as m:
        photos = await m.lookup(ROOT_INODE, "Photos")
        with pytest.raises(FsError) as err:
            await m.fs.rename(photos.st_ino, b"alpha.jpg", photos.st_ino, b"beta.jpg", 2,
                              CALLER)
        assert err.value.errno == errno.EINVAL
        with pytest.raises(FsError) as err:
            await m.fs.rename(photos.st_ino, b"alpha.jpg", photos.st_ino, b"beta.jpg",
                              RENAME_NOREPLACE, CALLER)
        assert err.value.errno == errno.EEXIST
        assert await m.names(photos.st_ino) == ["alpha.jpg", "beta.jpg"]


async def test_statfs_reports_the_cache_room_and_the_inodes(tmp_path: Path) -> None:
    async with mounted(tmp_path) as m:
        usage = m.fs.statfs()
        assert usage.blocks == (1 << 30) // usage.block_size
        assert usage.files == 4 + 2 + 1 and usage.name_max == 255


async def test_a_file_deleted_remotely_while_open_stays_readable_until_closed(
        tmp_path: Path) -> None:
    async with mounted(tmp_path) as m:
        readme = await m.lookup(ROOT_INODE, "readme.txt")
        opened = await m.fs.open(readme.st_ino, os.O_RDONLY, CALLER)
        assert await m.fs.read(opened.fh, 0, 5) == b"hello"
        with m.store.transaction():  # what sync applies when the file is gone remotely
            m.store.delete_files(["r1"])
        m.fs.on_events([Event("gone", readme.st_ino, None, None, False)], echo=False)
        assert (await m.lookup(ROOT_INODE, "readme.txt")).st_ino == 0
        attr = (await m.fs.getattr(readme.st_ino)).attr  # fstat of the open descriptor
        assert (attr.size, attr.nlink) == (11, 0)
        assert await m.fs.read(opened.fh, 6, 5) == b"world"
        await m.fs.release(opened.fh)
        with pytest.raises(FsError) as err:
            await m.fs.getattr(readme.st_ino)
        assert err.value.errno == errno.ENOENT


async def test_editing_a_library_file_stages_its_bytes_then_the_change(tmp_path: Path) -> None:
    async with mounted(tmp_path) as m:
        readme = await m.lookup(ROOT_INODE, "readme.txt")
        opened = await m.fs.open(readme.st_ino, os.O_RDWR, CALLER)
        assert await m.fs.write(opened.fh, 0, b"HELLO") == 5
        await m.fs.release(opened.fh)
        assert await m.read_all(readme.st_ino) == b"HELLO world"
        assert await m.fs.getxattr(readme.st_ino, b"user.aion.sync_state", CALLER) == b"pending"
        assert (await m.lookup(ROOT_INODE, "readme.txt")).st_ino == readme.st_ino  # same inode


async def test_writers_opening_a_file_while_its_edit_starts_share_one_edit(
        tmp_path: Path) -> None:
    async with mounted(tmp_path) as m:
        scans = await m.lookup(ROOT_INODE, "Scans")
        scan = await m.lookup(scans.st_ino, "scan.jpg")
        m.storage.hold_at = 1 << 20  # the copy into staging waits halfway
        handles: list[int] = []

        async def open_for_writing() -> None:
            handles.append((await m.fs.open(scan.st_ino, os.O_WRONLY, CALLER)).fh)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(open_for_writing)
            nursery.start_soon(open_for_writing)
            await m.storage.held.wait()
            await trio.testing.wait_all_tasks_blocked()
            assert handles == [], "an edit was shown before its bytes were staged"
            m.storage.release.set()
        assert len(handles) == 2
        await m.fs.write(handles[0], 0, b"AB")
        await m.fs.write(handles[1], 2, b"CD")
        for fh in handles:
            await m.fs.release(fh)
        data = await m.read_all(scan.st_ino)
        assert data[:4] == b"ABCD" and data[4:] == m.storage.objects["big"][4:]
        assert len(m.fs.local.journal.all()) == 1


async def test_a_closed_file_reopened_for_writing_keeps_its_bytes_until_the_close(
        tmp_path: Path) -> None:
    """An append to a file waiting for upload: the bytes are copied aside (in a worker
    thread) and the new version replaces the staged one only at its close."""
    async with mounted(tmp_path) as m:
        opened, entry = await m.fs.create(ROOT_INODE, b"log.txt", 0o644, os.O_WRONLY, CALLER)
        await m.fs.write(opened.fh, 0, b"line 1\n")
        await m.fs.flush(opened.fh)
        await m.fs.release(opened.fh)
        appending = await m.fs.open(entry.st_ino, os.O_WRONLY | os.O_APPEND, CALLER)
        await m.fs.write(appending.fh, 7, b"line 2\n")
        staged = m.fs.local.by_inode(entry.st_ino).staging  # type: ignore[union-attr]
        assert staged.read_bytes() == b"line 1\n"  # the closed version, until the close
        await m.fs.flush(appending.fh)
        await m.fs.release(appending.fh)
        assert await m.read_all(entry.st_ino) == b"line 1\nline 2\n"


async def test_a_careful_save_is_on_disk_when_fsync_of_its_folder_returns(
        tmp_path: Path) -> None:
    """Write a temp file, fsync, close, rename it over the name, fsync the folder: on
    disk then, as on a local filesystem (the rename alone waits for the group commit)."""
    async with mounted(tmp_path) as m:
        opened, _ = await m.fs.create(ROOT_INODE, b".plan.txt.tmp", 0o644, os.O_WRONLY,
                                      CALLER)
        await m.fs.write(opened.fh, 0, b"the plan\n")
        await m.fs.fsync(opened.fh, False)
        await m.fs.flush(opened.fh)
        await m.fs.release(opened.fh)
        await m.fs.rename(ROOT_INODE, b".plan.txt.tmp", ROOT_INODE, b"plan.txt", 0, CALLER)
        journal = m.fs.local.journal
        assert [f.name for f in journal.not_on_disk()] == ["plan.txt"]
        await m.fs.fsyncdir(0, False)
        assert journal.not_on_disk() == []
