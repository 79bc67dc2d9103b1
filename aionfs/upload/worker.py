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
import json
import logging
import math
import os
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import trio

from ..api import AionClient, Priority
from ..api.client import UploadItem
from ..api.errors import (
    AmbiguousUpload,
    ApiError,
    Conflict,
    NotFound,
    QuotaExceeded,
    TransientError,
)
from ..api.multipart import FileContent
from ..api.retry import Backoff
from ..store import ROOT_KEY, Event, Store, naming
from ..store.db import LOCAL_PREFIX, file_row
from ..sync import Syncer
from .journal import Journal, LocalFile, content_type

log = logging.getLogger(__name__)


#: while a copy goes on, due files wait for it to pause at most this long (seconds
#: past their write-back delay): a long copy or a slow trickle of closes is not held
#: for minutes
MAX_GATHER = 10.0
#: batches uploaded at the same time
BATCHES_IN_FLIGHT = 2
#: a burst of closes is uploaded once it pauses this long (or after MAX_GATHER)
BURST_GAP = 0.5
#: due files read beyond a batch and those in flight, for files open for writing
#: (passed over; more of those at once only make a batch smaller), and before the
#: service has told its batch size (more than any plan's)
PASSED_OVER = 256
#: rounds an uploaded file may be missing from listings before it counts as deleted
SETTLE_ATTEMPTS = 5


class Uploader:
    def __init__(self, journal: Journal, store: Store, client: AionClient, syncer: Syncer, *,
                 delay: float, busy: Callable[[LocalFile], bool],
                 settled: Callable[[LocalFile], None], shared: Callable[[LocalFile], LocalFile],
                 rekeyed: Callable[[str, str], None]) -> None:
        self.journal = journal
        self.syncer = syncer
        self.client = client
        self.store = store
        self.delay = delay
        self.busy = busy  # open for writing: not yet
        self.settled = settled  # shown from the store now
        self.shared = shared  # the instance the filesystem shows (states seen at once)
        self.rekeyed = rekeyed  # a folder made offline got its remote id
        self._wake = trio.Event()
        self._changed = trio.Event()  # set (and replaced) when the queue may have changed
        self._batch: int | None = None
        self._flushing = 0  # `aionfs flush` callers waiting: no write-back delay meanwhile
        self._looks_by = math.inf  # (trio time) when the loop looks at the journal again
        self._in_flight = journal.in_flight  # journal ids of the batches being taken
        self._versions: dict[int, float] = {}  # journal id → its version when taken
        self._backoff = Backoff(0.5, 30.0)  # no new batch for a while after failures
        self._hold_until = 0.0  # trio time before which no new batch starts
        self._last_close = -math.inf  # (trio time) the latest close or rename told of
        self._oldest: float | None = None  # the oldest due file's close, while holding
        journal.closed.subscribe(self.closed)

    def closed(self) -> None:
        """A file was closed or renamed (the journal's signal): it is due after the
        write-back delay. The loop is woken only if it would look later than that on
        its own (woken at each close, it queried the whole journal per file of a
        copy: quadratic in the copy)."""
        now = trio.current_time()
        self._last_close = now
        if self._flushing or (now + self.delay < self._looks_by and now >= self._hold_until):
            self.wake()  # (held after a failure: nothing is taken before the hold ends)

    def wake(self) -> None:
        """The queue changed (a file closed, a batch ended): the loop looks again,
        and so do `flush` callers."""
        self._wake.set()
        self._changed.set()
        self._changed = trio.Event()

    async def flush(self, seconds: float) -> AsyncIterator[int]:
        """Upload what is queued now, without the write-back delay; yields how many
        are left whenever that changes, until none or the timeout (no cancel scope
        around the yields: an async generator must not suspend inside one)."""
        self._flushing += 1
        try:
            self.wake()
            deadline = trio.current_time() + seconds
            last = -1
            while True:
                changed = self._changed  # (taken before counting: no change is missed)
                left = self.journal.queued()
                if left != last or not left or trio.current_time() >= deadline:
                    yield left
                    last = left
                if not left or trio.current_time() >= deadline:
                    return
                # (and a look a second: a queued file deleted says nothing to us)
                with trio.move_on_after(min(1.0, deadline - trio.current_time())):
                    await changed.wait()
        finally:
            self._flushing -= 1

    async def run(self) -> None:
        """Take due entries in batches, up to BATCHES_IN_FLIGHT at a time.

        Two batches in flight keep the service busy while the other's answer,
        moves and listing travel (and a service that works on requests in
        parallel takes both at once: 300 photos drained in 6 s instead of 8 s
        against the emulator, docs/writes.md). After a transient failure no
        new batch starts until the backoff has passed."""
        slots = trio.Semaphore(BATCHES_IN_FLIGHT)
        async with trio.open_nursery() as nursery:
            while True:
                self._looks_by = trio.current_time()  # (looking now)
                try:
                    await self._create_folders()
                except TransientError as exc:
                    log.info("folders made offline wait for the API (%s)", exc)
                    self._hold(progress=False)
                delay = 0.0 if self._flushing else self.delay
                held = trio.current_time() < self._hold_until
                now = time.time()
                quiet = trio.current_time() - self._last_close
                if not held and not self._flushing and quiet < BURST_GAP:
                    # files are still arriving (a copy in progress): wait for it to
                    # pause, a full batch or more, until the oldest waiting file has
                    # waited MAX_GATHER. (Batches sent during a copy took the copy's
                    # CPU here — hashing, the multipart body, each file's settling —
                    # and doubled the time a copy of small files takes to return, for
                    # a drain no faster; quarter batches also cost a third more
                    # requests: docs/writes.md.) The oldest time is asked once per
                    # hold: nothing is taken meanwhile, so it can only get newer (a
                    # kept value ends the hold early, never late).
                    if self._oldest is None:
                        self._oldest = self.journal.oldest_due(now, delay, self._in_flight)
                    if self._oldest is not None and now - delay - self._oldest < MAX_GATHER:
                        pause = min(BURST_GAP - quiet, BURST_GAP / 5)
                        self._looks_by = trio.current_time() + pause
                        await trio.sleep(pause)
                        continue
                self._oldest = None  # (past the hold: asked again at the next one)
                due = self._due(now, delay)
                if due and not held:
                    batch = due[:await self._batch_limit()]
                    self._in_flight.update(f.id for f in batch)
                    await slots.acquire()  # (a batch in flight may finish meanwhile)
                    nursery.start_soon(self._take, batch, slots)
                    continue
                self._wake = trio.Event()
                if held:
                    wait = self._hold_until - trio.current_time()
                else:
                    wait = max(delay / 2, 0.2) if self.journal.queued() else 3600
                self._looks_by = trio.current_time() + wait
                with trio.move_on_after(wait):
                    await self._wake.wait()

    def _due(self, now: float, delay: float) -> list[LocalFile]:
        """The oldest due files that can be taken (not in flight, not open for
        writing): a batch's worth at least when there are that many, read a window
        at a time (a batch, those in flight and PASSED_OVER more), never the whole
        queue. The service's batch size is asked once something is due."""
        size = (self._batch or 0) + len(self._in_flight) + PASSED_OVER
        want = self._batch or PASSED_OVER
        out: list[LocalFile] = []
        after: tuple[float, int] | None = None
        while True:
            rows = self.journal.due(now, delay, size, after)
            out += [f for f in map(self.shared, rows)
                    if not self.busy(f) and f.id not in self._in_flight]
            if len(rows) < size or len(out) >= want:
                return out
            after = (rows[-1].changed_at, rows[-1].id)  # (all passed over: read on)

    def _hold(self, progress: bool) -> None:
        """A transient failure: no new batch for a while (doubling, up to 30 s;
        short again when some files of the batch got through)."""
        if progress:
            self._backoff.reset()
        self._hold_until = trio.current_time() + self._backoff.next()

    async def _take(self, batch: list[LocalFile], slots: trio.Semaphore) -> None:
        """One batch through its steps; failures recorded, never raised."""
        before = [(f.step, f.state) for f in batch]
        try:
            await self.process(batch)
            self._backoff.reset()
        except TransientError as exc:
            log.info("%d uploads wait for the API (%s)", len(batch), exc)
            for f in batch:
                if f.state == "uploading" and f.step == "upload":
                    continue  # sent, answer lost: resumed (hash-checked) next round
                self.journal.update(f, attempts=f.attempts + 1, last_error=str(exc))
            self._hold(progress=[(f.step, f.state) for f in batch] != before)
        except Exception as exc:  # never lose the queue (or the mount) to a surprise
            log.exception("uploading %d files failed unexpectedly", len(batch))
            for f in batch:
                if f.step != "done" and f.state != "failed":
                    self._fail(f, f"unexpected: {exc!r}")
            self._hold(progress=False)
        finally:
            self._in_flight.difference_update(f.id for f in batch)
            slots.release()
            self.wake()  # the loop decides what comes next

    async def _create_folders(self) -> None:
        """Folders made while the API was unreachable: created now, parents first
        (one that exists by then, made elsewhere, is taken as it is)."""
        for row in self.store.local_folders():
            parent = self.store.folder(row["id"])["parent_id"]  # (a parent may be new)
            if parent and parent.startswith(LOCAL_PREFIX):
                continue  # its parent failed this round
            try:
                folder = await self.client.create_folder(row["name"], parent)
                new_id = folder.id
            except Conflict:
                new_id = next((f.id for f in await self.client.folder_tree()
                               if f.name == row["name"] and f.parent_id == parent), None)
                if new_id is None:
                    raise TransientError(f"folder {row['name']!r} exists, cannot be found") from None
            with self.store.transaction():
                dropped = self.store.rekey_folder(row["id"], new_id)
                events = self.store.rename_dir(parent or ROOT_KEY)
                events += [Event("gone", inode) for inode in dropped]
            self.syncer.folders_made()
            self.rekeyed(row["id"], new_id)
            self.syncer.publish(events)
            log.info("created folder %s (made while offline)", row["name"])

    async def _batch_limit(self) -> int:
        """Files per stream-batch: what the service says (asked once), else the plan's."""
        if self._batch is None:
            try:
                quota = await self.client.quota_check(1, priority=Priority.UPLOAD)
                self._batch = quota.max_batch_size or self.client.settings.batch_limit
            except ApiError as exc:
                log.debug("no batch size from the service (%s): the plan's", exc)
                return self.client.settings.batch_limit
        return self._batch

    async def process(self, files: list[LocalFile]) -> None:
        """Take entries through their remaining steps, each step for all of them at once:
        one duplicate check, one upload request (stream-batch for several), one
        move per folder, one listing to learn what landed."""
        # what each entry was when taken: a later close or rename makes it newer, and
        # every step is recorded only if it is not (journal.advance)
        versions = self.journal.versions([f.id for f in files])
        self._versions.update(versions)
        claims = [(f.name, f.size) for f in files]
        for claim in claims:
            self.syncer.claim(*claim)
        errors: list[TransientError] = []
        live = files
        try:
            # each step for whatever it can; a transient failure ends the round after it
            for step in ("upload", "move", "done"):
                try:
                    # unlinked or saved over meanwhile: never shown, deleted if it landed
                    live = await self._drop_discarded(live)
                    todo = [f for f in live if f.step == step]
                    if step == "upload":
                        await self._upload_all(todo)
                    elif step == "move":
                        await self._move_all(todo)
                    else:
                        await self._settle_all(todo, versions)
                except TransientError as exc:
                    errors.append(exc)
                for f in live:
                    if f.remote_id:
                        self.syncer.claim_id(f.remote_id)
        finally:
            for f, claim in zip(files, claims, strict=True):
                self.syncer.unclaim(*claim, f.remote_id)
                self._versions.pop(f.id, None)
        if errors:
            raise errors[0]

    async def _drop_discarded(self, files: list[LocalFile]) -> list[LocalFile]:
        """Entries dropped while in flight (journal.drop): one never sent goes; one
        that landed is deleted from the workspace, never shown. One sent without an
        answer (after a crash) goes on: its resumed upload learns the id to delete."""
        if not files:
            return files
        rows = self.journal.outcomes([f.id for f in files])
        keep = []
        for f in files:
            row = rows.get(f.id)
            if row is None:  # removed (unlinked before it was taken)
                continue
            discard, remote_id, sha, uncertain, replaces, state, scratch = row
            if scratch and not discard:  # a backup: copies cut off become its to hand on
                if uncertain:
                    await self._find_uncertain([f])
                continue
            if not discard or (remote_id is None and sha is not None and state != "failed"):
                keep.append(f)  # (sent unheard: its resumed upload learns the id to delete)
                continue
            # its own copies: one that landed, ones cut off, ones that landed after the drop
            copies = [*(await self._find_uncertain([f])).get(f.id, [])] if uncertain else []
            copies += [*(replaces or "").split(), *([remote_id] if remote_id else [])]
            for copy in copies:
                with contextlib.suppress(NotFound):
                    await self.client.delete_file(copy, priority=Priority.UPLOAD)
            if copies:
                log.info("%s was removed or saved over while uploading: %d copies deleted",
                         f.name, len(copies))
                with self.store.transaction():  # (a listing may have met them)
                    events = self.store.remove_entries_of(self.store.delete_files(copies))
                self.syncer.publish(events)
            self.journal.remove(f)  # (open descriptors keep their bytes)
            self.settled(f)  # (no longer shown, if it was)
        return keep

    async def _find_uncertain(self, files: list[LocalFile]) -> dict[int, list[str]]:
        """Earlier versions sent without a known outcome (rewritten while in flight, then
        the daemon died): a copy that landed is found by its hash among the newest
        files of its name, and becomes one more file the new version replaces.
        Returns the copies found, per journal id."""
        out: dict[int, list[str]] = {}
        rows = self.journal.uncertain([f.id for f in files])
        by_id = {f.id: f for f in files}
        for jid, hashes, created in rows:
            f = by_id[jid]
            present = set((await self.client.check_duplicates(
                hashes.split(), priority=Priority.UPLOAD)).duplicates)
            found: list[str] = []
            if present:
                page = await self.client.list_files(
                    limit=100, offset=0, sort_by="created_at", sort_order="desc",
                    priority=Priority.UPLOAD)
                for item in page.files:
                    known = self.store.file(item.id)  # (a copy was never moved into a folder)
                    if (f.name in (item.filename, item.title)
                            and item.created_at.timestamp() >= created - 60
                            and (known is None or known["placement"] != "folder")
                            and (await self.client.get_file(
                                item.id, priority=Priority.UPLOAD)).hash in present):
                        found.append(item.id)
                if found:
                    log.info("%s: %d copies of earlier versions whose upload was cut off "
                             "are replaced too", f.name, len(found))
                else:
                    log.warning("%s: an earlier version whose upload was cut off may have "
                                "landed; no copy of it was found among the newest files",
                                f.name)
            replaced = list(dict.fromkeys(f.replaced + found))
            self.journal.update(f, uncertain_sha256=None,
                                replaces_id=" ".join(replaced) or None)
            out[jid] = found
        return out

    async def _upload_all(self, files: list[LocalFile]) -> None:
        if not files:
            return
        await self._find_uncertain(files)
        for f in files:  # an edit carries the metadata the file has *now* (sync keeps it)
            row = self.store.file(f.replaced[0]) if f.replaced else None
            if row is not None:
                f.tags = json.loads(row["tags"])
                # its title too, unless the file was renamed (the name is the new title)
                shown = naming.file_name(row["title"], row["filename"], row["format"],
                                         row["media_type"], row["domain"])
                f.title = row["title"] if shown == f.name else f.name
        contents = await _staged(files)
        try:
            await self._send_all([f for f in files if f.id in contents], contents)
        finally:
            for content in contents.values():
                os.close(content.fd)

    async def _send_all(self, files: list[LocalFile], contents: dict[int, FileContent]) -> None:
        sha = {f.id: contents[f.id].sha256 for f in files}
        recorded = self.journal.sent_hashes([f.id for f in files])
        # a crash (or a lost answer) interrupted these very uploads: one at a time
        resumed = [f for f in files if recorded.get(f.id, (None,))[0] == sha[f.id]]
        fresh = [f for f in files if f not in resumed]
        if fresh:
            dup = await self.client.check_duplicates([sha[f.id] for f in fresh],
                                                     priority=Priority.UPLOAD)
            dups = set(dup.duplicates)
            # (one that changed meanwhile waits for the next round)
            fresh = [f for f in fresh if self.journal.advance(
                f, self._versions[f.id], state="uploading", sha256=sha[f.id],
                known_new=int(sha[f.id] not in dups))]
        failures: list[TransientError] = []

        async def one(f: LocalFile, known_new: bool, resumed: bool) -> None:
            try:
                await self._upload_one(f, contents[f.id], known_new, resumed=resumed)
            except TransientError as exc:  # the others still go
                failures.append(exc)

        for f in resumed:
            await one(f, bool(recorded[f.id][1]), True)
        # a batch holds distinct names (its answers are matched by filename)
        limit = await self._batch_limit()
        while fresh:
            batch, names, rest = [], set(), []
            for f in fresh:
                (rest if f.name in names or len(batch) >= limit else batch).append(f)
                names.add(f.name)
            fresh = rest
            if len(batch) == 1 or any(f.title or f.tags for f in batch):
                for f in batch:
                    await one(f, sha[f.id] not in dups, False)
            else:
                await self._upload_batch(batch, contents)
        if failures:
            raise failures[0]

    async def _upload_one(self, f: LocalFile, data: FileContent, known_new: bool,
                          resumed: bool) -> None:
        if not self.journal.advance(f, self._versions[f.id], state="uploading"):
            return  # changed since taken: the next round
        try:
            res = await self.client.upload_file(
                data, f.name, content_type=content_type(f.name) or "application/octet-stream",
                title=f.title or None, tags=f.tags or None,  # an edit keeps them
                skip_duplicates=resumed and known_new, known_new=known_new)
        except AmbiguousUpload as exc:
            self._fail(f, f"cannot tell whether the upload landed: {exc}")
            return
        except QuotaExceeded as exc:
            self._fail(f, f"quota exhausted: {exc}")
            return
        except TransientError:
            raise
        except ApiError as exc:
            self._fail(f, str(exc))
            return
        remote = res.skipped_existing_image_id if res.skipped else res.image_id
        self.journal.sent(f, self._versions[f.id], data.sha256, remote)
        log.info("uploaded %s (%d bytes) as %s", f.name, data.size, remote)

    async def _upload_batch(self, files: list[LocalFile], data: dict[int, FileContent]
                            ) -> None:
        items = [UploadItem(f.name, data[f.id],
                            content_type(f.name) or "application/octet-stream") for f in files]
        try:
            batch, results = await self.client.upload_batch(items, priority=Priority.UPLOAD)
        except QuotaExceeded as exc:
            for f in files:
                self._fail(f, f"quota exhausted: {exc}")
            return
        except TransientError:
            raise  # sent or not, each file is resumed alone (hash-checked) next round
        except ApiError as exc:
            for f in files:
                self._fail(f, str(exc))
            return
        by_name = {r.filename: r for r in results}
        refused = {r.filename: r.reason for r in batch.rejections or []}
        for f in files:
            r = by_name.get(f.name)
            if r is not None and r.image_id and r.status != "failed":
                self.journal.sent(f, self._versions[f.id], data[f.id].sha256, r.image_id)
            elif f.name in refused or r is not None:
                self._fail(f, refused.get(f.name) or (r.error_message if r else None)
                           or "refused")
            else:
                raise TransientError(f"the batch answer did not mention {f.name}")
        log.info("uploaded %d files in one request", len(files))

    async def _move_all(self, files: list[LocalFile]) -> None:
        by_folder: dict[str, list[LocalFile]] = {}
        for f in files:
            by_folder.setdefault(f.folder_key, []).append(f)
        for key, group in by_folder.items():
            if key != ROOT_KEY:  # uploads land at the root
                try:
                    await self.client.move_files([f.remote_id  # type: ignore[misc]
                                                  for f in group], key, priority=Priority.UPLOAD)
                except NotFound:
                    # The folder was deleted remotely meanwhile: the files stay at the
                    # root, where the upload put them, rather than being lost.
                    log.warning("the folder of %s is gone; %d files stay at the root",
                                group[0].name, len(group))
                    key = ROOT_KEY
            with self.store.transaction():
                for f in group:
                    # (moved or changed meanwhile: uploaded anew, this copy replaced)
                    if self.journal.advance(f, self._versions[f.id], step="done",
                                            folder_id=key or None):
                        f.folder_key = key

    async def _settle_all(self, files: list[LocalFile], versions: dict[int, float]) -> None:
        if not files:
            return
        items = {item.id: item async for item in self.client.iter_files(
            ids=[f.remote_id for f in files], priority=Priority.UPLOAD, page_size=100)}
        ready: list[tuple[LocalFile, Any]] = []
        unlisted: list[LocalFile] = []
        for f in files:
            item = items.get(f.remote_id)  # type: ignore[arg-type]
            if item is not None:
                ready.append((f, item))
            elif f.attempts >= SETTLE_ATTEMPTS:  # deleted remotely since: so be it
                log.warning("%s was deleted remotely right after its upload", f.name)
                self.journal.remove(f)
                self.settled(f)
            else:
                unlisted.append(f)
        await self._settle(ready, versions)
        if unlisted:
            raise TransientError(f"{unlisted[0].remote_id} is not listed yet")

    def _fail(self, f: LocalFile, reason: str) -> None:
        log.warning("upload of %s failed: %s (kept; retried later)", f.name, reason)
        self.journal.advance(f, self._versions.get(f.id, f.changed_at), state="failed",
                             last_error=reason, attempts=f.attempts + 1)

    async def _settle(self, ready: list[tuple[LocalFile, Any]],
                      versions: dict[int, float]) -> None:
        """Show the uploaded files from the store, under the inodes they had.

        One transaction for all of them, and the names of each folder they land
        in computed once: per file, that was a pass over the whole folder, i.e.
        quadratic in a copy of many files into one folder."""
        if not ready:
            return
        # changed since taken (a new version, a new name): not shown, not settled; the
        # next version replaces this copy (journal._superseded_copies)
        now = self.journal.versions([f.id for f, _ in ready])
        # (open for writing now: its close makes a new version that replaces this copy;
        # settled under the writer, the close would find no entry and its bytes be lost)
        ready = [(f, item) for f, item in ready
                 if now.get(f.id) == versions[f.id] and not self.busy(f)]
        for f, _item in ready:
            for old_id in f.replaced:  # the new one is in place: the old ones go
                with contextlib.suppress(NotFound):
                    await self.client.delete_file(old_id, priority=Priority.UPLOAD)
        # dropped during those deletes: left for the next round (which deletes its copy);
        # from here on nothing awaits, so no operation on the mount comes in between
        discarded = self.journal.discarded()
        ready = [(f, item) for f, item in ready if f.id not in discarded]
        events: list[Event] = []
        finished: list[LocalFile] = []
        with self.store.transaction():
            folders: set[str] = set()
            for f, item in ready:
                current = self.journal.get(f.id)
                if (current is None or current.changed_at != versions[f.id]
                        or self.busy(f)):
                    continue  # changed, or opened for writing, during the deletes
                folders |= self._settle_one(f, item, events)
                self.journal.settle(f)
                finished.append(f)
            for key in folders:
                events += self.store.rename_dir(key)
        for f in finished:
            f.staging.unlink(missing_ok=True)
            self.settled(f)
        self.syncer.publish(events)

    def _drop_replaced(self, f: LocalFile, events: list[Event]) -> None:
        """The library files a new version replaced (deleted remotely) leave the store."""
        for inode in self.store.delete_files(f.replaced):
            if inode == f.inode:  # an edit: the same inode goes on, under the new id
                self.store.drop_names(f.inode)
            else:
                events += self.store.remove_entries_of([inode])

    def _settle_one(self, f: LocalFile, item: Any, events: list[Event]) -> set[str]:
        """The store rows of one uploaded file; the folders whose names changed."""
        self._drop_replaced(f, events)
        # The local inode now stands for the remote file. Sync may have met the
        # new file first and given it an inode of its own: that one goes.
        events += self.store.adopt_inode(f.inode, f.remote_id)  # type: ignore[arg-type]
        self.store.upsert_files([file_row(item)])
        moved = self.store.place_files([f.remote_id], f.folder_key)  # type: ignore[list-item]
        return {f.folder_key, *(k for k in moved.values() if k is not None)}


async def _staged(files: list[LocalFile]) -> dict[int, FileContent]:
    """Each file's staging file opened and hashed, a piece at a time in a worker thread:
    the descriptors pin the bytes hashed (a rewrite replaces the staging file, not
    them), and no upload holds a whole file in memory. Files gone meanwhile (removed
    or dropped: their next round says why) are left out."""
    fds: dict[int, int] = {}
    try:
        for f in files:
            try:
                fds[f.id] = os.open(f.staging, os.O_RDONLY)
            except FileNotFoundError:
                log.debug("%s left staging before its upload", f.name)
        hashed = await trio.to_thread.run_sync(
            lambda: {jid: FileContent.hashed(fd) for jid, fd in fds.items()})
    except BaseException:
        for fd in fds.values():
            os.close(fd)
        raise
    return hashed
