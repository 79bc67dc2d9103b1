"""Changes made through the mount, without FUSE types: the write side of the model.

Each method does what the table below says, through the API,
then applies the result to the store and returns the events for the
kernel's caches (the adapter invalidates them; these changes are not
replayed for inotify, the kernel saw them happen). Failures are `FsError`s
carrying the errno the caller gets:

    rename in a folder   PATCH title            across folders  move-files (+ PATCH)
    mkdir                POST /folders          (EEXIST on 409)
    rmdir                DELETE /folders/{id}   (ENOTEMPTY unless empty)
    folder rename/move   PATCH / move           (a cycle: EINVAL)
    unlink               DELETE                 (soft delete on the service)
    setxattr title/tags  PATCH                  (other names: ENOTSUP)

Files written here and not uploaded yet are local (see local.py); their
renames and unlinks never reach the API.
"""

from __future__ import annotations

import errno
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import trio

from ..api import AionClient, answer_after
from ..api.errors import ApiError, Conflict, NotFound, TransientError, ValidationFailed
from ..store import ROOT_KEY, Event, Store, naming
from ..store.db import LOCAL_PREFIX, folder_row
from ..sync import Syncer
from ..upload import content_type, is_scratch
from .local import LocalFiles
from .view import FsError, LibraryView

log = logging.getLogger(__name__)
T = TypeVar("T")

#: how long an operation waits for an answer from the API before failing with EIO
#: (time queued for the plan's request budget does not count: api/ratelimit.py)
API_WAIT = 15.0
#: folder levels the API keeps (a folder at the root is level 1)
MAX_DEPTH = 10
ACCEPTED_TEXT = "JPEG, PNG, WebP, GIF, PDF, DOCX, TXT, MD"


def check_name(name: str) -> None:
    """Names the workspace can hold: ≤ 255 bytes of valid UTF-8."""
    try:
        raw = name.encode()
    except UnicodeEncodeError:
        raise FsError(errno.EINVAL, f"{name!r}: names must be valid UTF-8") from None
    if len(raw) > 255:
        raise FsError(errno.ENAMETOOLONG)


class Writer:
    def __init__(self, view: LibraryView, store: Store, client: AionClient, syncer: Syncer,
                 local: LocalFiles, wake_uploader: Callable[[], None]) -> None:
        self.view = view
        self.syncer = syncer
        self.store = store
        self.client = client
        self.local = local
        self.wake_uploader = wake_uploader

    async def _api(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        """One API call on behalf of a user's operation, bounded; errors as errnos."""
        try:
            with answer_after(API_WAIT):
                return await call()
        except trio.TooSlowError:
            raise FsError(errno.EIO, f"{what}: no answer from the API in {API_WAIT:g}s") from None
        except NotFound as exc:
            raise FsError(errno.ENOENT, f"{what}: {exc}") from None
        except Conflict as exc:
            raise FsError(errno.EEXIST, f"{what}: {exc}") from None
        except ValidationFailed as exc:
            raise FsError(errno.EINVAL, f"{what}: {exc}") from None
        except ApiError as exc:
            raise FsError(errno.EIO, f"{what}: {exc}") from None

    def _key(self, parent: int) -> str:
        key = self.view.folder_key(parent)
        if key is None:
            raise FsError(errno.ENOTDIR)
        return key

    # -- files ---------------------------------------------------------------------------

    def check_new_name(self, name: str) -> None:
        check_name(name)
        if not is_scratch(name) and content_type(name) is None:
            raise FsError(errno.EPERM, f"{name}: the workspace takes {ACCEPTED_TEXT} files "
                                       "(editor scratch files stay local)")

    def take_over(self, f: Any, parent: int) -> None:
        """A real name written (created, or a temp file renamed onto it) where a backup
        holds the library file that had this name (`mv doc.md doc.md~`, as vim and
        Emacs save): the new file is that file's new version (it replaces it, keeping
        its title and tags); the backup stays a local scratch file."""
        if f.scratch:
            return
        taken: list[str] = []
        for backup in self.local.in_dir(parent):
            if backup is f or not backup.scratch or not backup.replaced:
                continue
            mine = [fid for fid in backup.replaced
                    if (row := self.store.file(fid)) is not None
                    and naming.file_name(row["title"], row["filename"], row["format"],
                                         row["media_type"], row["domain"]) == f.name]
            if mine:
                taken += mine
                rest = [fid for fid in backup.replaced if fid not in mine]
                self.local.journal.update(backup, replaces_id=" ".join(rest) or None)
        if not taken:
            return
        ids = list(dict.fromkeys(taken + f.replaced))
        self.local.journal.update(f, replaces_id=" ".join(ids))
        log.info("%s is the new version of the file its backup holds", f.name)

    def check_rename(self, parent: int, name: str, new_parent: int, new_name: str,
                     noreplace: bool) -> None:
        """What a rename of a file is refused for, checked before anything is done."""
        check_name(new_name)
        self._key(new_parent)
        if not is_scratch(new_name) and content_type(new_name) is None:
            raise FsError(errno.EPERM, f"{new_name}: the workspace takes {ACCEPTED_TEXT} files")
        target = self.local.lookup(new_parent, new_name) or self.store.lookup(new_parent,
                                                                              new_name)
        if target is not None and noreplace:
            raise FsError(errno.EEXIST)
        if target is not None and getattr(target, "is_dir", False):
            raise FsError(errno.EISDIR)

    def keeps_name(self, inode: int, new_name: str) -> bool:
        """Can a library file be renamed to this by a title change alone? Not when the
        name's extension is not its type's (`mv notes.md notes.txt`): the API keeps
        the original filename, and the mount would show `notes.txt.md`. Such a rename
        is a new version under the new name (uploaded; the old one deleted)."""
        row = self.store.file_by_inode(inode)
        return row is None or naming.file_name(new_name, row["filename"], row["format"],
                                               row["media_type"], row["domain"]) == new_name

    async def unlink(self, parent: int, name: str) -> list[Event]:
        local = self.local.lookup(parent, name)
        if local is not None:
            # A new version of library files (an edit, a save over them): they go too, or
            # they would be back at this name; first, so that an API that fails (EIO)
            # leaves everything as it was.
            replaced = local.replaced
            for old_id in replaced:
                try:
                    await self._api(f"deleting {name}",
                                    lambda old_id=old_id: self.client.delete_file(old_id))
                except FsError as exc:
                    if exc.errno != errno.ENOENT:
                        raise
            with self.store.transaction():  # (an edit's library file has the same inode)
                events = self.store.remove_entries_of(self.store.delete_files(replaced))
            if self.local.lookup(parent, name) is local:
                self.local.forget(local)
                return [Event("entry_removed", local.inode, parent, name), *events]
            # it was uploaded while we waited: the library file at the name is it
            return events + await self.unlink(parent, name)
        entry = self.store.lookup(parent, name)
        if entry is None:
            raise FsError(errno.ENOENT)
        if entry.is_dir:
            raise FsError(errno.EISDIR)
        row = self.store.file_by_inode(entry.inode)
        if row is None:
            raise FsError(errno.ENOENT)
        await self._api(f"deleting {name}", lambda: self.client.delete_file(row["id"]))
        with self.store.transaction():
            inodes = self.store.delete_files([row["id"]])
            events = self.store.remove_entries_of(inodes)
        log.info("deleted %s", name)
        return events

    async def rename(self, parent: int, name: str, new_parent: int, new_name: str,
                     noreplace: bool) -> list[Event]:
        check_name(new_name)
        new_key = self._key(new_parent)
        target_local = self.local.lookup(new_parent, new_name)
        target = None if target_local else self.store.lookup(new_parent, new_name)
        if (target_local or target) and noreplace:
            raise FsError(errno.EEXIST)
        local = self.local.lookup(parent, name)
        if local is not None:
            return await self._rename_local(local, parent, new_parent, new_key, new_name,
                                            target_local, target)
        entry = self.store.lookup(parent, name)
        if entry is None:
            raise FsError(errno.ENOENT)
        if entry.is_dir:
            return await self._rename_folder(entry.inode, parent, new_parent, new_key, new_name,
                                             target)
        if target is not None and target.is_dir:
            raise FsError(errno.EISDIR)
        row = self.store.file_by_inode(entry.inode)
        if row is None:
            raise FsError(errno.ENOENT)
        events: list[Event] = []
        # what the target name stood for goes once this file is in place: a library
        # file, or a local version (and the library file that version replaces)
        replaced: list[str] = []
        if target_local is not None:
            replaced = [i for i in target_local.replaced if i != row["id"]]
        elif target is not None and target.inode != entry.inode:
            target_row = self.store.file_by_inode(target.inode)
            if target_row is not None:
                replaced = [target_row["id"]]
        if new_key != self._key(parent):
            self._not_offline(new_key)
            await self._api(f"moving {name}", lambda: self.client.move_files(
                [row["id"]], new_key or None))
        if new_name != name:
            await self._api(f"renaming {name}", lambda: self.client.update_file(
                row["id"], title=new_name))
        if target_local is not None:  # (only now: an API failure above keeps it)
            if self.local.lookup(new_parent, new_name) is target_local:
                self.local.forget(target_local)
            events.append(Event("entry_removed", target_local.inode, new_parent, new_name))
        for old_id in replaced:
            try:
                await self._api(f"replacing {new_name}",
                                lambda old_id=old_id: self.client.delete_file(old_id))
            except FsError as exc:
                if exc.errno != errno.ENOENT:  # (already gone: fine)
                    raise
        with self.store.transaction():
            events += self.store.remove_entries_of(self.store.delete_files(replaced))
            if new_name != name:
                self.store.set_file_fields(row["id"], title=new_name)
            moved = self.store.place_files([row["id"]], new_key)
            for key in {new_key, self._key(parent), *(k for k in moved.values() if k)}:
                events += self.store.rename_dir(key)
        return events

    async def _rename_local(self, local: Any, parent: int, new_parent: int, new_key: str,
                            new_name: str, target_local: Any, target: Any) -> list[Event]:
        if not is_scratch(new_name) and content_type(new_name) is None:
            raise FsError(errno.EPERM, f"{new_name}: the workspace takes {ACCEPTED_TEXT} files")
        if target is not None and target.is_dir:
            raise FsError(errno.EISDIR)
        events = [Event("entry_removed", local.inode, parent, local.name)]
        # "Write a temp file, rename it over the document": the document's new version.
        # It replaces what the name stood for: a library file, or a local version of it
        # (whose upload, if in flight, is deleted once it lands), and keeps its title
        # and tags. Saved again and again before any upload lands, it is still one file.
        replaced: list[str] = []
        if target_local is not None and target_local is not local:
            replaced = target_local.replaced
            self.local.forget(target_local)
        elif target is not None:
            row = self.store.file_by_inode(target.inode)
            if row is not None:
                replaced = [row["id"]]
        if replaced:
            ids = list(dict.fromkeys(replaced + local.replaced))  # the target's first
            self.local.journal.update(local, replaces_id=" ".join(ids))
        self.local.rename(local, new_parent, new_key, new_name)
        if target is None and target_local is None:
            self.take_over(local, new_parent)
        events += self._rename_dirs_of(local.replaced)  # what it replaces: named no more
        return events  # (the journal told the uploader of the rename)

    async def _rename_folder(self, inode: int, parent: int, new_parent: int, new_key: str,
                             new_name: str, target: Any) -> list[Event]:
        folder = self.store.folder_by_inode(inode)
        if folder is None:
            raise FsError(errno.ENOENT)
        if target is not None and not target.is_dir:
            raise FsError(errno.ENOTDIR)
        # a folder cannot move into itself or below
        key: str | None = new_key
        while key:
            if key == folder["id"]:
                raise FsError(errno.EINVAL, "a folder cannot move into itself")
            row = self.store.folder(key)
            key = row["parent_id"] if row is not None else None
        old_key = self._key(parent)
        if new_key != old_key:
            self._check_depth(new_key, self._subtree_depth(folder["id"]))
        if target is not None and target.inode != inode:
            # POSIX: a directory renamed over an empty one replaces it (ENOTEMPTY if not)
            await self.rmdir(new_parent, new_name)
        if folder["id"].startswith(LOCAL_PREFIX):  # made offline: created later as it is then
            return self._folder_changed(folder["id"], new_name, new_key or None,
                                        {old_key, new_key})
        self._not_offline(new_key)
        if new_key != old_key:
            await self._api(f"moving {folder['name']}", lambda: self.client.move_folder(
                folder["id"], new_key or None))
        if new_name != folder["name"]:
            await self._api(f"renaming {folder['name']}", lambda: self.client.rename_folder(
                folder["id"], new_name))
        return self._folder_changed(folder["id"], new_name, new_key or None, {old_key, new_key})

    def _folder_changed(self, folder_id: str, name: str, parent_id: str | None,
                        dirs: set[str]) -> list[Event]:
        row = dict(self.store.folder(folder_id))
        row.update(name=name, parent_id=parent_id)
        events: list[Event] = []
        with self.store.transaction():
            self.store.upsert_folders([row])
            for key in dirs:
                events += self.store.rename_dir(key)
        return events

    def _check_depth(self, parent_key: str, levels: int = 1) -> None:
        """The API keeps folders at most MAX_DEPTH levels deep (422 beyond): a clear
        errno at once (EMLINK, as ext4 answers when a directory can hold no more
        subdirectories) rather than EIO after a round trip."""
        depth, key = 0, parent_key
        while key:
            depth += 1
            row = self.store.folder(key)
            key = row["parent_id"] if row is not None else None
        if depth + levels > MAX_DEPTH:
            raise FsError(errno.EMLINK, f"the workspace keeps folders at most {MAX_DEPTH} "
                                        "levels deep")

    def _subtree_depth(self, folder_id: str) -> int:
        """Levels of a folder and the folders below it (1: no subfolders)."""
        children: dict[str | None, list[str]] = {}
        for fid, parent in self.store.folder_parents():
            children.setdefault(parent, []).append(fid)

        def depth(fid: str) -> int:
            return 1 + max((depth(c) for c in children.get(fid, [])), default=0)
        return depth(folder_id)

    def _rename_dirs_of(self, file_ids: list[str]) -> list[Event]:
        """Names again in the folders showing these files (replaced: no longer named)."""
        keys = {row["folder_id"] or ROOT_KEY for fid in file_ids
                if (row := self.store.file(fid)) is not None and row["placement"] != "unknown"}
        events: list[Event] = []
        with self.store.transaction():
            for key in keys:
                events += self.store.rename_dir(key)
        return events

    @staticmethod
    def _not_offline(key: str) -> None:
        if key.startswith(LOCAL_PREFIX):
            raise FsError(errno.EAGAIN, "that folder was made offline and is not in the "
                                        "workspace yet: try again once it is")

    # -- folders ---------------------------------------------------------------------------

    async def mkdir(self, parent: int, name: str) -> tuple[int, list[Event]]:
        check_name(name)
        key = self._key(parent)
        if self.store.lookup(parent, name) or self.local.lookup(parent, name):
            raise FsError(errno.EEXIST)
        self._check_depth(key)
        folder = None
        if not key.startswith(LOCAL_PREFIX):
            try:
                with answer_after(API_WAIT):
                    folder = await self.client.create_folder(name, key or None)
            except (TransientError, trio.TooSlowError) as exc:
                log.info("creating folder %s offline (%s): the workspace gets it when the API "
                         "is back", name, exc)
            except Conflict as exc:
                raise FsError(errno.EEXIST, f"creating {name}: {exc}") from None
            except ApiError as exc:
                raise FsError(errno.EIO, f"creating {name}: {exc}") from None
        with self.store.transaction():
            if folder is None:  # offline (or inside a folder made offline)
                folder_id = self.store.add_local_folder(name, key or None)
            else:
                folder_id = folder.id
                self.store.upsert_folders([folder_row(folder)])
                self.store.set_listing(folder.id, True, 0)  # new and empty: nothing to list
            events = self.store.rename_dir(key)
        self.syncer.folders_made()
        self.wake_uploader()
        log.info("created folder %s", name)
        return self.store.dir_inode(folder_id), events

    async def rmdir(self, parent: int, name: str) -> list[Event]:
        entry = self.store.lookup(parent, name)
        if entry is None:
            raise FsError(errno.ENOENT)
        if not entry.is_dir:
            raise FsError(errno.ENOTDIR)
        folder = self.store.folder_by_inode(entry.inode)
        if folder is None:
            raise FsError(errno.ENOENT)
        try:
            with answer_after(API_WAIT):
                if not folder["id"].startswith(LOCAL_PREFIX):
                    await self.syncer.ensure_listed(folder["id"])  # know every file inside
        except (ApiError, trio.TooSlowError) as exc:
            raise FsError(errno.EIO, f"listing {name} before removing it: {exc}") from None
        if self.store.list_dir(entry.inode) or self.local.in_dir(entry.inode):
            raise FsError(errno.ENOTEMPTY)
        if not folder["id"].startswith(LOCAL_PREFIX):  # (one made offline: just forget it)
            await self._api(f"removing {name}",
                            lambda: self.client.delete_folder(folder["id"]))
        with self.store.transaction():
            gone = self.store.delete_folders([folder["id"]])
            events = self.store.remove_entries_of(gone)
        log.info("removed folder %s", name)
        return events

    # -- metadata ---------------------------------------------------------------------------

    async def set_xattr(self, inode: int, name: str, value: bytes) -> list[Event]:
        """`user.aion.title`, `user.aion.tags` or `user.xdg.tags` → PATCH."""
        if name not in ("user.aion.title", "user.aion.tags", "user.xdg.tags"):
            raise FsError(errno.ENOTSUP, f"{name} cannot be set (only the title and tags)")
        row = self.store.file_by_inode(inode)
        if row is None:
            raise FsError(errno.EAGAIN if self.local.by_inode(inode) else errno.ENOTSUP,
                          "set the title and tags once the file is uploaded")
        try:
            text = value.decode()
        except UnicodeDecodeError:
            raise FsError(errno.EINVAL, "not UTF-8") from None
        if name == "user.aion.title":
            await self._api("setting the title", lambda: self.client.update_file(
                row["id"], title=text))
            with self.store.transaction():
                self.store.set_file_fields(row["id"], title=text)
                events = self.store.rename_dir(row["folder_id"] or ROOT_KEY) \
                    if row["placement"] != "unknown" else []
            return [*events, Event("attr", inode)]
        tags = [t.strip() for t in text.replace("\n", ",").split(",") if t.strip()]
        return await self.retag(inode, lambda old: tags)

    async def retag(self, inode: int, change: Callable[[list[str]], list[str]]
                    ) -> list[Event]:
        """A library file's tags changed by `change` (set as an xattr, or by putting
        the file into a tags/ folder or taking it out): PATCHed, then stored."""
        row = self.store.file_by_inode(inode)
        if row is None:
            raise FsError(errno.EPERM, "only library files carry tags")
        old = json.loads(row["tags"])
        new = change(old)
        if new == old:
            return []
        await self._api("changing tags", lambda: self.client.update_file(row["id"], tags=new))
        with self.store.transaction():
            self.store.set_file_fields(row["id"], tags=json.dumps(new))
        return [Event("attr", inode)]

