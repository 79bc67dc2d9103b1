"""The upload worker: journal entries into the workspace, step by step, exactly once.

Steps, each recorded before the next starts:

    upload   the hash is checked against the workspace first (`known_new`,
             recorded), then the bytes go through `POST /user-files/upload/stream`.
             After a crash in this step a file whose hash was new is re-sent
             with `skip_duplicates`, which answers with the id of what landed
             before, so it is never stored twice.
    move     `POST /folders/move-files` into its folder (the root needs none)
    done     the file's metadata is taken into the store where the mount
             shows it, under the inode it had while local; then an old file
             it replaces is deleted, and the row and staging bytes go.

Failures: transient ones (network, 5xx, 429) leave the entry pending and
are retried with backoff; refusals (quota, 422, 413) mark it failed with
the reason, kept in staging, and tried again at the next mount or when the
file is rewritten.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import time
from collections.abc import Callable

import trio

from ..api import Priority
from ..api.errors import AmbiguousUpload, ApiError, NotFound, QuotaExceeded, TransientError
from ..store import ALL_FILES
from ..store.db import file_row
from ..sync import Syncer
from .journal import Journal, LocalFile, content_type

log = logging.getLogger(__name__)


class Uploader:
    def __init__(self, journal: Journal, syncer: Syncer, *, delay: float = 3.0,
                 busy: Callable[[LocalFile], bool] = lambda f: False,
                 settled: Callable[[LocalFile], None] = lambda f: None,
                 shared: Callable[[LocalFile], LocalFile] = lambda f: f) -> None:
        self.journal = journal
        self.syncer = syncer
        self.client = syncer.client
        self.store = syncer.store
        self.delay = delay
        self.busy = busy  # open for writing: not yet
        self.settled = settled  # shown from the store now
        self.shared = shared  # the instance the filesystem shows (states seen at once)
        self._wake = trio.Event()
        self.uploaded = 0
        self.idle = trio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        backoff = 1.0
        while True:
            due = [self.shared(f) for f in self.journal.due(time.time(), self.delay)]
            due = [f for f in due if not self.busy(f)]
            failed_ok = False
            for f in due:
                try:
                    await self.process(f)
                    backoff = 1.0
                except TransientError as exc:
                    log.info("upload of %s waits for the API (%s)", f.name, exc)
                    self.journal.update(f, state="pending", attempts=f.attempts + 1,
                                        last_error=str(exc))
                    failed_ok = True
                    break
            if not due or not failed_ok:
                backoff = 1.0
            pending = self.journal.counts().get("pending", 0) + \
                self.journal.counts().get("uploading", 0)
            if not pending:
                self.idle.set()
            self._wake = trio.Event()
            wait = min(backoff, 30.0) if failed_ok else (self.delay / 2 if pending else 3600)
            backoff = backoff * 2 if failed_ok else 1.0
            with trio.move_on_after(wait):
                await self._wake.wait()

    async def process(self, f: LocalFile) -> None:
        """Take one entry through its remaining steps."""
        self.idle = trio.Event() if self.idle.is_set() else self.idle
        version = f.mtime
        claim = (f.name, f.size)
        self.syncer.claim(*claim)
        try:
            if f.step == "upload":
                await self._upload(f)
            if f.remote_id:
                self.syncer.claim_id(f.remote_id)
            if f.step == "move":
                if f.folder_key != ALL_FILES:
                    await self.client.move_files([f.remote_id],  # type: ignore[list-item]
                                                 f.folder_key, priority=Priority.UPLOAD)
                self.journal.update(f, step="done")
            if f.step == "done":
                await self._settle(f, version)
        finally:
            self.syncer.unclaim(*claim, f.remote_id)

    async def _upload(self, f: LocalFile) -> None:
        data = f.staging.read_bytes()
        sha = hashlib.sha256(data).hexdigest()
        row = self.store.db.execute("SELECT sha256, known_new FROM upload_journal WHERE id=?",
                                    (f.id,)).fetchone()
        resumed = row is not None and row[0] == sha  # a crash interrupted this very upload
        if resumed:
            known_new = bool(row[1])
        else:
            dup = await self.client.check_duplicates([sha], priority=Priority.UPLOAD)
            known_new = sha not in dup.duplicates
        self.journal.update(f, state="uploading", sha256=sha, known_new=int(known_new),
                            updated_at_epoch=f.mtime)
        try:
            res = await self.client.upload_file(
                data, f.name, content_type=content_type(f.name) or "application/octet-stream",
                title=f.title or None, tags=f.tags or None,  # an edit keeps them
                skip_duplicates=resumed and known_new, known_new=known_new)
        except AmbiguousUpload as exc:
            self._fail(f, f"cannot tell whether the upload landed: {exc}")
            raise TransientError(str(exc)) from None
        except QuotaExceeded as exc:
            self._fail(f, f"quota exhausted: {exc}")
            return
        except TransientError:
            raise
        except ApiError as exc:
            self._fail(f, str(exc))
            return
        remote = res.skipped_existing_image_id if res.skipped else res.image_id
        self.journal.update(f, remote_id=remote, step="move")
        log.info("uploaded %s (%d bytes) as %s", f.name, len(data), remote)

    def _fail(self, f: LocalFile, reason: str) -> None:
        log.warning("upload of %s failed: %s (kept; retried later)", f.name, reason)
        self.journal.update(f, state="failed", last_error=reason, attempts=f.attempts + 1)

    async def _settle(self, f: LocalFile, version: float) -> None:
        """Show the uploaded file from the store, under the inode it had."""
        items = [item async for item in self.client.iter_files(
            ids=[f.remote_id], priority=Priority.UPLOAD)]  # type: ignore[list-item]
        if not items:
            raise TransientError(f"{f.remote_id} is not listed yet")
        current = self.journal.get(f.id)
        if f.replaces_id:  # the new one is in place: the old one goes
            with contextlib.suppress(NotFound):
                await self.client.delete_file(f.replaces_id, priority=Priority.UPLOAD)
        events = []
        with self.store.transaction():
            if f.replaces_id:
                gone = self.store.delete_files([f.replaces_id])
                if gone == [f.inode]:  # an edit: the same inode goes on, under the new id
                    self.store.db.execute("DELETE FROM entries WHERE inode=?", (f.inode,))
                else:
                    events += self.store.remove_entries_of(gone)
            # The local inode now stands for the remote file. Sync may have met the
            # new file first and given it an inode of its own: that one goes.
            other = self.store.db.execute("SELECT inode FROM inodes WHERE kind='file' AND "
                                          "ref=?", (f.remote_id,)).fetchone()
            if other is not None and other[0] != f.inode:
                events += self.store.remove_entries_of([other[0]])
                self.store.db.execute("UPDATE files SET inode=? WHERE id=?",
                                      (f.inode, f.remote_id))
                self.store.db.execute("DELETE FROM inodes WHERE inode=?", (other[0],))
            self.store.db.execute("UPDATE inodes SET kind='file', ref=? WHERE inode=?",
                                  (f.remote_id, f.inode))
            self.store.upsert_files([file_row(items[0])])
            moved = self.store.place_files([f.remote_id], f.folder_key)  # type: ignore[list-item]
            for key in {f.folder_key, *(k for k in moved.values() if k is not None)}:
                events += self.store.rename_dir(key)
            rewritten = current is not None and current.mtime != version
            if rewritten and current is not None:  # changed while uploading: send it again
                self.store.db.execute(
                    "UPDATE upload_journal SET state='pending', step='upload', "
                    "replaces_id=?, remote_id=NULL, sha256=NULL WHERE id=?",
                    (f.remote_id, f.id))
            else:
                self.store.db.execute("DELETE FROM upload_journal WHERE id=?", (f.id,))
        if not rewritten:
            f.staging.unlink(missing_ok=True)
            self.settled(f)
        self.uploaded += 1
        self.syncer.publish(events)
