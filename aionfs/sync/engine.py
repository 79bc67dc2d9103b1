"""The sync engine: keeps the metadata store following the workspace.

The API has no change feed and its list items carry no folder id, so:

* a folder's files are learnt by listing `GET /user-files?folder_id=X`
  (oldest first, so that uploads during the listing append at the end);
* root membership is derived: a file is at the root when it is in the
  all-files listing and in no folder listing, which is known once every
  folder has a complete listing (a full crawl), or — between crawls —
  when the counts agree: files at the root = the all-files total minus the
  sum of the folders' `file_count`, so if the unplaced files plus the known
  root files make exactly that number, the unplaced files are at the root;
* a file missing from a complete listing is not yet deleted: it may have
  moved. Missing files are looked up by id (`GET /user-files?ids=…`, 100 a
  request); only those the lookup does not return are deleted, and only
  within the mass-delete guard;
* new files are found by polling the newest files first until a known id;
  folders whose `file_count` changed are listed again; listed folders are
  revalidated oldest-listed first.

Every applied change is published as store `Event`s to the subscribers.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

import trio

from ..api import AionClient, Priority
from ..api.errors import ApiError, NotFound
from ..api.ratelimit import WINDOW
from ..api.retry import Backoff
from ..store import ROOT_KEY, Event, Store, naming
from ..store.db import file_row, folder_row
from .plan import (
    ListingPlan,
    MassDeleteRefused,
    check_deletions,
    listing_complete,
    plan_listing,
    plan_tree,
)

log = logging.getLogger(__name__)

#: the share of the plan's budget that keeping up with remote changes may use
POLL_SHARE = 0.1
#: a tree fetched this recently (seconds) is not fetched again to start a crawl
#: (the mount fetches it to answer the first `ls`; the crawl follows at once)
TREE_FRESH = 30.0

Subscriber = Callable[[list[Event]], None]


class InconsistentAnswers(ApiError):
    """The API contradicted itself (e.g. a lookup lost files that still exist)."""


@dataclass
class SyncReport:
    added: int = 0
    updated: int = 0
    moved: int = 0
    deleted: int = 0
    folders_changed: int = 0
    folders_deleted: int = 0
    listings: int = 0
    incomplete: int = 0
    requests: int = 0
    seconds: float = 0.0

    def merge_counts(self, other: SyncReport) -> None:
        for k in ("added", "updated", "moved", "deleted", "folders_changed", "folders_deleted",
                  "listings", "incomplete"):
            setattr(self, k, getattr(self, k) + getattr(other, k))


@dataclass
class SyncOptions:
    #: refuse plans deleting more than this share of the library at once
    max_delete_share: float = 0.5
    #: deletions up to this count are never refused
    min_guarded: int = 20
    #: a user confirmed a mass deletion (aionfs sync --allow-mass-delete)
    allow_mass_delete: bool = False
    page_size: int = 100


#: the longest pause between failing rounds: a laptop back from sleep catches up soon
MAX_BACKOFF = 300.0
#: requests a second a crawl is assumed to make with no client limit (for `crawl_fits`)
UNLIMITED_RATE = 50
#: a long crawl logs its progress about this many times
CRAWL_LOG_STEPS = 20
#: folders a crawl lists at once
CRAWL_CONCURRENCY = 4


class Syncer:
    def __init__(self, client: AionClient, store: Store,
                 options: SyncOptions | None = None) -> None:
        self.client = client
        self.store = store
        self.options = options or SyncOptions()
        self._subscribers: list[Subscriber] = []
        self._locks: dict[str, trio.Lock] = {}
        self.report = SyncReport()
        self.last_sync: float | None = None
        self.last_error: str | None = None
        self.progress: Callable[[str, int], None] | None = None
        #: `aionfs sync --now`: wakes the background loop; set when that round ends
        self._wake = trio.Event()
        self._round_done = trio.Event()
        self._tree_generation = 0
        self._tree_at: float | None = None  # (monotonic) when the tree was last fetched
        #: a user waits for the first crawl (the root's first listing): it runs at
        #: interactive priority until it ends
        self._hurry = False
        self._crawling = False
        #: set once a crawl has ended (in this run or an earlier one: no crawl open)
        self.crawl_finished = trio.Event()
        if store.get_meta("crawl_pass") is not None and store.get_meta("crawl_open") is None:
            self.crawl_finished.set()
        #: the crawl running now: (folders listed, folders to list)
        self.crawl_progress: tuple[int, int] | None = None
        self.poll_interval: float | None = None  # run()'s, changeable (SIGHUP)
        self.revalidate_interval: float | None = None
        #: uploads in flight from this mount: (filename, size) before the API names
        #: them, then ids, until the uploader has shown them where they belong
        self._claims: Counter[tuple[str, int]] = Counter()
        self._claimed: set[str] = set()

    # -- events ----------------------------------------------------------------

    def subscribe(self, callback: Subscriber) -> None:
        self._subscribers.append(callback)

    def publish(self, events: list[Event]) -> None:
        """Tell the subscribers (the kernel's caches) about applied changes."""
        self._publish(events)

    def _publish(self, events: list[Event]) -> None:
        if not events:
            return
        for callback in self._subscribers:
            callback(events)

    def _lock(self, key: str) -> trio.Lock:
        return self._locks.setdefault(key, trio.Lock())

    # -- the folder tree ---------------------------------------------------------

    def folders_made(self) -> None:
        """Folders were created in the store (mkdir, or made offline and created now): a
        tree fetched before that must not be applied, or it would delete them."""
        self._tree_generation += 1

    async def refresh_tree(self, priority: Priority = Priority.BACKGROUND) -> SyncReport:
        """`GET /folders` and apply what changed (one request)."""
        for _ in range(3):  # folders made meanwhile: a fresh tree has them
            generation = self._tree_generation
            folders = await self.client.folder_tree(priority=priority)
            if generation == self._tree_generation:
                break
        report = SyncReport()
        async with self._lock("tree"):
            if generation != self._tree_generation:
                log.debug("folders were made while the tree was fetched: applied next round")
                return report
            self._tree_at = time.monotonic()  # (applied: a crawl may start from it)
            remote = [folder_row(f) for f in folders]
            plan = plan_tree(self.store.folders(), remote)
            if plan.empty:
                return report
            events: list[Event] = []
            with self.store.transaction():
                old = self.store.folders()
                changed = self.store.upsert_folders(plan.upserts)
                gone = self.store.delete_folders(plan.deletes)
                events += self.store.remove_entries_of(gone)
                parents = {ROOT_KEY if p is None else p for p in (
                    [r["parent_id"] for r in plan.upserts if r["id"] in changed]
                    + [old[f]["parent_id"] for f in changed if f in old]
                    + [old[f]["parent_id"] for f in plan.deletes])}
                for parent in parents:
                    events += self.store.rename_dir(parent)
                events += [Event("attr", self.store.dir_inode(f)) for f in changed if f in old]
            report.folders_changed = len(changed)
            report.folders_deleted = len(plan.deletes)
            self._publish(events)
        return report

    # -- listings ------------------------------------------------------------------

    async def _fetch_listing(self, folder_key: str, priority: Priority,
                             root_check: int | None = None) -> ListingPlan:
        """List a folder's files (or all files, '') page by page, metadata applied as it
        comes. The all-files listing keeps no ids in memory: each row records the
        listing that showed it (`seen_all`), so memory stays flat on huge libraries.
        `root_check`: the files the folders hold, all listed completely; if the
        first page of all files says the library holds no more, the listing stops
        there (`root_empty`): the root holds none, and the rest would only repeat
        what the folders' listings said."""
        ids: list[str] = []
        totals: list[int] = []
        new: set[str] = set()
        changed: set[str] = set()
        content: set[str] = set()
        filters: dict[str, Any] = {"sort_by": "created_at", "sort_order": "asc",
                                   "priority": priority, "page_size": self.options.page_size}
        everything = folder_key == ROOT_KEY
        seen_all = self.store.start_all_listing() if everything else None
        if not everything:
            filters["folder_id"] = folder_key
        batch: list[dict[str, Any]] = []

        def flush() -> None:
            # Metadata only (placement comes with the plan), ~1,000 rows a
            # transaction: few commits, and memory stays flat on huge libraries.
            with self.store.transaction():
                n, c, b = self.store.upsert_files(batch, seen_all)
            new.update(n)
            changed.update(c)
            content.update(b)
            batch.clear()

        root_empty = False
        async with aclosing(self.client.iter_file_pages(**filters)) as pages:
            async for page in pages:
                totals.append(page.total_count)
                rows = [file_row(f) for f in page.files]
                if not everything:
                    ids += [r["id"] for r in rows]
                batch += rows
                if len(batch) >= 1000:
                    flush()
                if self.progress:
                    self.progress("files", len(rows))
                if root_check is not None and len(totals) == 1 and page.has_more:
                    root_empty = page.total_count == root_check
                    if root_empty:
                        break
        if batch:
            flush()
        if root_empty:
            return ListingPlan(ids=[], complete=False, total=totals[0], root_empty=True)
        if everything:
            # At least the files the folders hold (counts fresh from the tree).
            expected = sum(f["file_count"] for f in self.store.folders().values())
            assert seen_all is not None
            listed = self.store.seen_all_count(seen_all)
            complete, total = listing_complete(listed, totals, expected)
            plan = ListingPlan(ids=[], complete=complete, total=total, listed=listed,
                               seen_all=seen_all,
                               vanished=self.store.missed_by_all(seen_all) if complete else set())
        else:
            row = self.store.folder(folder_key)
            plan = plan_listing(set(self.store.members(folder_key)), ids, totals,
                                row["file_count"] if row else None)
        plan.new, plan.changed, plan.content = new, changed, content
        return plan

    async def list_folder(self, folder_key: str, priority: Priority = Priority.BACKGROUND
                          ) -> SyncReport:
        """List one folder's files (or, for '', all files) and apply the result.

        Files missing from a complete listing are looked up first, so that the
        deletions pass the guard before anything is changed.
        """
        async with self._lock(folder_key):
            plan = await self._fetch_listing(folder_key, priority)
            gone = await self._find_gone(plan.vanished, priority) if plan.vanished else set()
            self._guard(gone)
            return self._apply_listing(folder_key, plan, gone)

    def _apply_listing(self, folder_key: str, plan: ListingPlan, gone: set[str]) -> SyncReport:
        report = SyncReport(listings=1, incomplete=int(not plan.complete))
        events: list[Event] = []
        new, changed, content = plan.new, plan.changed - plan.new, plan.content
        report.added, report.updated = len(new), len(changed)
        with self.store.transaction():
            touched_dirs = {folder_key} | self._shown_in(changed)
            if folder_key != ROOT_KEY:
                moved = self.store.place_files(plan.ids, folder_key)
                moved.update(self.store.place_files(plan.vanished - gone, None))
                report.moved = len([f for f in moved if f not in new])
                touched_dirs |= {k for k in moved.values() if k is not None}
            inodes = self.store.delete_files(gone)
            report.deleted = len(inodes)
            events += self.store.remove_entries_of(inodes)
            events += self._changed(touched_dirs, changed, content)
            self.store.set_listing(folder_key, plan.complete, plan.total)
        if not plan.complete:
            log.info("listing of %s was incomplete (%d of %d files); nothing removed",
                     folder_key or "all files", plan.listed, plan.total)
        if inodes:
            log.info("%d files deleted remotely", len(inodes))
        self._publish(events)
        return report

    def _shown_in(self, file_ids: Iterable[str]) -> set[str]:
        """The directories showing these files (a retitle renames them there)."""
        keys = set()
        for fid in file_ids:
            row = self.store.file(fid)
            if row is not None and row["placement"] != "unknown":
                keys.add(row["folder_id"] if row["placement"] == "folder" else ROOT_KEY)
        return keys

    def _changed(self, dirs: Iterable[str], changed: set[str], content: set[str]
                 ) -> list[Event]:
        """Rename within `dirs`; events for files whose metadata or bytes changed."""
        events: list[Event] = []
        for key in dirs:
            events += self.store.rename_dir(key)
        for fid in changed:
            row = self.store.file(fid)
            if row is not None:
                events.append(Event("content" if fid in content else "attr", row["inode"]))
        return events

    def absorb(self, items: Iterable[Any]) -> set[str]:
        """Take in file metadata seen outside a folder listing (search results).

        Placement stays the listings' business; changed metadata is applied
        and published like any other change. Returns the ids now known.
        """
        rows = [file_row(item) for item in items]
        if not rows:
            return set()
        with self.store.transaction():
            new, changed, content = self.store.upsert_files(rows)
            changed -= new
            events = self._changed(self._shown_in(changed), changed, content)
        self._publish(events)
        return {r["id"] for r in rows}

    async def _find_gone(self, ids: set[str], priority: Priority) -> set[str]:
        """Which of these files no longer exist (the others have moved)."""
        found: set[str] = set()
        wanted = sorted(ids)
        for start in range(0, len(wanted), 500):
            chunk = wanted[start:start + 500]
            async for item in self.client.iter_files(ids=chunk, priority=priority,
                                                     page_size=100):
                found.add(item.id)
        missing = ids - found
        if missing and not found:
            # Nothing found at all: make sure that is not a broken (empty) answer.
            probe = sorted(missing)[0]
            try:
                await self.client.get_file(probe, priority=priority)
            except NotFound:
                pass
            else:
                raise InconsistentAnswers(
                    f"a lookup of {len(ids)} files answered none, but {probe} exists; "
                    "nothing was deleted")
        return missing

    def _guard(self, gone: set[str]) -> None:
        check_deletions(len(gone), self.store.counts()["files"],
                        share=self.options.max_delete_share, minimum=self.options.min_guarded,
                        confirmed=self.options.allow_mass_delete)

    async def _delete_missing(self, ids: set[str], priority: Priority) -> SyncReport:
        """Delete those of `ids` the API proves gone (guarded); the rest stay."""
        return self._delete(await self._find_gone(ids, priority))

    def _delete(self, gone: set[str]) -> SyncReport:
        """Delete files the API proved gone (guarded)."""
        self._guard(gone)
        report = SyncReport()
        if not gone:
            return report
        with self.store.transaction():
            inodes = self.store.delete_files(gone)
            events = self.store.remove_entries_of(inodes)
        report.deleted = len(inodes)
        log.info("%d files deleted remotely", len(inodes))
        self._publish(events)
        return report

    # -- root ------------------------------------------------------------------------

    def _in_listed_folders(self) -> int | None:
        """The files shown in folders, when every folder's listing was complete (what
        the all-files listing's total is compared with: `_fetch_listing`)."""
        folders = self.store.folders()
        if not all((row := self.store.listing(fid)) is not None and row["complete"]
                   for fid in folders):
            return None
        shown = self.store.member_counts()
        return sum(shown.get(fid, 0) for fid in folders)

    async def _root_was_empty(self, total: int, priority: Priority) -> None:
        """The library holds no more files than its folders: the root is empty, and
        the all-files listing (a page per 100 files of the whole library) stopped
        after its first page. Files the store has in no folder are looked up by id
        (those gone are deleted). Libraries kept in folders are crawled at a page
        per 100 files and one per folder."""
        strays = set(self.store.member_ids(ROOT_KEY)) | set(self.store.unplaced())
        if strays:
            await self._delete_missing(strays, priority)
        with self.store.transaction():
            self.store.set_listing(ROOT_KEY, True, total)

    async def _revalidate_root(self, priority: Priority) -> SyncReport:
        """The root's files looked up by id (a page per 100 of them), not the
        all-files listing again (a page per 100 files of the whole library): their
        renames, retags and deletions. Files that moved to or from the root change
        folder counts, which the poll follows."""
        report = SyncReport(listings=1)
        ids = self.store.member_ids(ROOT_KEY)
        found: set[str] = set()
        for start in range(0, len(ids), 100):
            items = [item async for item in self.client.iter_files(
                ids=ids[start:start + 100], priority=priority, page_size=100)]
            found |= self.absorb(items)
        missing = set(ids) - found
        if missing and found:  # (the lookups answered: what they lack is gone)
            report.merge_counts(self._delete(missing))
        elif missing:  # nothing found at all: proven gone or a broken answer?
            report.merge_counts(await self._delete_missing(missing, priority))
        with self.store.transaction():
            self.store.set_listing(ROOT_KEY, True, len(found))
        return report

    # -- uploads in flight ------------------------------------------------------------

    def claim(self, filename: str, size: int) -> None:
        """An upload is on its way: the new file lands at the root before it is moved
        into its folder; sync must not show it there meanwhile."""
        self._claims[(filename, size)] += 1

    def unclaim(self, filename: str, size: int, file_id: str | None = None) -> None:
        self._claims[(filename, size)] -= 1
        if self._claims[(filename, size)] <= 0:
            del self._claims[(filename, size)]
        if file_id is not None:
            self._claimed.discard(file_id)

    def claim_id(self, file_id: str) -> None:
        self._claimed.add(file_id)

    def _claimed_file(self, file_id: str) -> bool:
        if file_id in self._claimed:
            return True
        if not self._claims:
            return False
        row = self.store.file(file_id)
        return row is not None and (row["filename"], row["size"]) in self._claims

    def place_root(self, candidates: Iterable[str]) -> int:
        """Show unplaced files at the root (not uploads of ours still in flight)."""
        candidates = [c for c in candidates if not self._claimed_file(c)]
        with self.store.transaction():
            moved = self.store.place_files(candidates, ROOT_KEY)
            events = self.store.rename_dir(ROOT_KEY) if moved else []
        self._publish(events)
        return len(moved)

    def reconcile_root(self, all_files_total: int, shown: dict[str, int] | None = None
                       ) -> bool:
        """Place unplaced files at the root when the counts prove they are there.
        (`shown`: the store's member counts, when the caller has them current: on a
        million files they take a fifth of a second.)"""
        folders = self.store.folders()
        in_folders = sum(f["file_count"] for f in folders.values())
        expected_root = all_files_total - in_folders
        unplaced = self.store.unplaced()
        shown = self.store.member_counts() if shown is None else shown
        known_root = shown.get(ROOT_KEY, 0)
        mismatched = [fid for fid, f in folders.items()
                      if f["file_count"] != shown.get(fid, 0)]
        if not mismatched and known_root + len(unplaced) == expected_root:
            if unplaced:
                self.place_root(unplaced)
            return True
        return False

    # -- whole passes ------------------------------------------------------------------

    def hurry(self) -> None:
        """Someone waits for the crawl (a fresh mount's first `ls` of the root, whose
        files are known only once every folder was listed): the rest of it runs at
        interactive priority, and starts now if the loop was pausing."""
        if not self.crawl_finished.is_set():
            self._hurry = True
            if not self._crawling:  # (a running crawl takes the new priority at once;
                self._wake.set()    # a wake would only add a round after it)

    def unhurry(self) -> None:
        """Nobody waits any more (the root was served partial): background share again."""
        self._hurry = False

    def crawl_requests_left(self) -> int:
        """Requests the open crawl still needs, as the folder tree's counts tell: a
        page per 100 files of each folder not listed yet, and the all-files listing."""
        open_pass = self.store.get_meta("crawl_open")
        done = self.store.crawl_done(int(open_pass)) if open_pass else set()
        page = self.options.page_size
        folders = self.store.folders()
        left = sum(-(-max(f["file_count"], 1) // page) for fid, f in folders.items()
                   if fid not in done)
        if ROOT_KEY not in done:
            left += -(-max(sum(f["file_count"] for f in folders.values()), 1) // page)
        return left

    def crawl_seconds(self, requests: int) -> float | None:
        """What `requests` take on the plan's budget (None: no client limit, so it is
        the API's speed that counts)."""
        rate = self.client.limiter.configured
        if not rate:
            return None
        used = self.client.limiter.statistics().used_in_window
        return max(0.0, requests - max(rate - used, 0)) * WINDOW / rate

    def crawl_fits(self, seconds: float) -> bool:
        """Could the open crawl end within `seconds`? (A fresh mount's first listing of
        the root waits for it only then: a million-file library, or a crawl on FREE,
        would only make that first `ls` wait for nothing.)"""
        left = self.crawl_requests_left()
        needs = self.crawl_seconds(left)
        return left <= UNLIMITED_RATE * seconds if needs is None else needs <= seconds

    def crawl_status(self) -> dict[str, Any] | None:
        """The running crawl for `aionfs status`: folders listed, files known, requests
        left and the time the plan needs for them."""
        if self.crawl_progress is None:
            return None
        left = self.crawl_requests_left()
        seconds = self.crawl_seconds(left)
        return {"folders_listed": self.crawl_progress[0], "folders": self.crawl_progress[1],
                "files_known": self.store.counts()["files"], "requests_left": left,
                "eta_seconds": None if seconds is None else round(seconds)}

    def _crawl_step(self, started: float) -> None:
        """One more folder listed: a log line every few percent of a long crawl."""
        done, total = self.crawl_progress or (0, 0)
        self.crawl_progress = (done + 1, total)
        step = max(1, total // CRAWL_LOG_STEPS)
        if total >= CRAWL_LOG_STEPS and (done + 1) % step == 0:
            seconds = self.crawl_seconds(left := self.crawl_requests_left())
            log.info("crawl: %d of %d folders listed (%d%%), %d files known, about %d "
                     "requests left%s, %.0f s so far", done + 1, total,
                     100 * (done + 1) // total, self.store.counts()["files"], left,
                     "" if seconds is None else f" ({seconds / 60:.0f} min on this plan)",
                     time.monotonic() - started)

    def _crawl_priority(self, priority: Priority) -> Priority:
        return Priority.INTERACTIVE if self._hurry else priority

    async def full_sync(self, priority: Priority = Priority.BACKGROUND) -> SyncReport:
        """List everything; resumes a crawl that was interrupted."""
        self._crawling = True
        try:
            return await self._full_sync(priority)
        finally:
            self._crawling = False

    async def _full_sync(self, priority: Priority) -> SyncReport:
        started = time.monotonic()
        requests_before = self.client.stats.requests
        report = SyncReport()
        open_pass = self.store.get_meta("crawl_open")
        crawl = int(open_pass) if open_pass else self.store.start_crawl()
        if not open_pass:
            with self.store.transaction():
                self.store.set_meta("crawl_open", str(crawl))
        if self._tree_at is None or time.monotonic() - self._tree_at > TREE_FRESH:
            report.merge_counts(await self.refresh_tree(self._crawl_priority(priority)))
        done = self.store.crawl_done(crawl)
        folders = self.store.folders()
        if self.progress:
            self.progress("folders_total", len(folders))
        self.crawl_progress = (len(done & set(folders)), len(folders))
        order = sorted(folders, key=lambda f: (folders[f]["parent_id"] or "", f))
        if self.progress:
            self.progress("folders", len([f for f in order if f in done]))
        todo = iter([f for f in order if f not in done])  # (shared: each taken once)
        failed: list[Exception] = []

        async def lister(cancel_scope: trio.CancelScope) -> None:
            for fid in todo:
                try:
                    listed = await self.list_folder(fid, self._crawl_priority(priority))
                except Exception as exc:  # the first failure ends the crawl's round
                    failed.append(exc)
                    cancel_scope.cancel()
                    return
                report.merge_counts(listed)
                self._crawl_step(started)
                with self.store.transaction():
                    self.store.mark_crawled(crawl, fid)
                if self.progress:
                    self.progress("folders", 1)

        # A few folders at once: the API's answer time overlaps the store's work
        # (with no client limit a crawl went twice as fast); the plan's budget is
        # the limiter's business either way.
        async with trio.open_nursery() as nursery:
            for _ in range(CRAWL_CONCURRENCY):
                nursery.start_soon(lister, nursery.cancel_scope)
        if failed:
            raise failed[0]
        if ROOT_KEY not in done:
            plan = await self._fetch_listing(ROOT_KEY, self._crawl_priority(priority),
                                             root_check=self._in_listed_folders())
        if ROOT_KEY not in done and plan.root_empty:
            await self._root_was_empty(plan.total, self._crawl_priority(priority))
            with self.store.transaction():
                self.store.mark_crawled(crawl, ROOT_KEY)
        elif ROOT_KEY not in done:
            gone = await self._find_gone(plan.vanished, self._crawl_priority(priority)) if plan.vanished else set()
            self._guard(gone)
            report.merge_counts(self._apply_listing(ROOT_KEY, plan, gone))
            all_complete = plan.complete and all(
                (row := self.store.listing(fid)) is not None and row["complete"]
                for fid in self.store.folders())
            if all_complete:
                assert plan.seen_all is not None
                self.place_root(self.store.unplaced_seen_all(plan.seen_all))
            else:
                self.reconcile_root(plan.total)
            with self.store.transaction():
                self.store.mark_crawled(crawl, ROOT_KEY)
        with self.store.transaction():
            self.store.end_crawl()
        self._hurry, self.crawl_progress = False, None
        self.crawl_finished.set()
        report.requests = self.client.stats.requests - requests_before
        report.seconds = time.monotonic() - started
        self.last_sync = time.time()
        return report

    async def poll(self, priority: Priority = Priority.BACKGROUND) -> SyncReport:
        """Cheap change detection: the tree (with counts) and the newest files."""
        started = time.monotonic()
        requests_before = self.client.stats.requests
        report = await self.refresh_tree(priority)
        fresh: list[dict[str, Any]] = []
        total = None
        pages = self.client.iter_file_pages(sort_by="created_at", sort_order="desc",
                                            priority=priority, page_size=20)
        async with aclosing(pages):
            async for page in pages:
                total = page.total_count if total is None else total
                known = self.store.known_files([f.id for f in page.files])
                new = [file_row(f) for f in page.files if f.id not in known]
                fresh += new
                if len(new) < len(page.files):
                    break  # reached files we know
        if fresh:
            with self.store.transaction():
                added, _, _ = self.store.upsert_files(fresh)
            report.added += len(added)
        folders = self.store.folders()
        # A new file named like one we show in a folder is most likely a new version
        # saved on another client (the old one deleted: the folder's count unchanged):
        # that folder is listed again now, not at its next revalidation.
        namesakes = self._namesake_folders(fresh)
        shown = self.store.member_counts()
        for fid, f in folders.items():
            row = self.store.listing(fid)
            if row is None and not f["file_count"]:
                continue
            if row is None or f["file_count"] != shown.get(fid, 0) or fid in namesakes:
                report.merge_counts(await self.list_folder(fid, priority))
                shown = self.store.member_counts()  # (a move out of a folder listed later)
        if total is not None and not self.reconcile_root(total, shown):
            # Counts disagree at the root: a root or unplaced file moved or went away.
            suspects = set(self.store.member_ids(ROOT_KEY)) | set(self.store.unplaced())
            if suspects:
                report.merge_counts(await self._delete_missing(suspects, priority))
            self.reconcile_root(total)
        report.requests = self.client.stats.requests - requests_before
        report.seconds = time.monotonic() - started
        self.last_sync = time.time()
        return report

    def _namesake_folders(self, rows: list[dict[str, Any]]) -> set[str]:
        """Folders showing a file under the name one of these new files wants."""
        names = {naming.file_name(r["title"], r["filename"], r["format"], r["media_type"],
                                  r["domain"]) for r in rows
                 if r["id"] not in self._claimed  # (our own uploads: we know where they go)
                 and (r["filename"], r["size"]) not in self._claims}
        out: set[str] = set()
        for name in names:
            out |= self.store.folders_holding(name)
        return out

    async def revalidate(self, older_than: float, limit: int = 5,
                         priority: Priority = Priority.BACKGROUND) -> SyncReport:
        """List again the folders listed longest ago (renames, retags, deletes)."""
        report = SyncReport()
        for key in self.store.stale_listings(time.time() - older_than)[:limit]:
            if key == ROOT_KEY:
                report.merge_counts(await self._revalidate_root(priority))
            elif self.store.folder(key) is not None:
                report.merge_counts(await self.list_folder(key, priority))
        return report

    async def run(self, *, poll_interval: float = 60.0, revalidate_interval: float = 900.0,
                  task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """The background loop: finish (or resume) the crawl, then poll and revalidate.

        Runs at BACKGROUND priority, so the shared limiter keeps the user's
        requests ahead of it. Failures are logged once per kind and retried
        with a growing pause; the store keeps serving what it has. A round
        asked for with `request_round` starts at once, even during a pause.
        """
        self.poll_interval, self.revalidate_interval = poll_interval, revalidate_interval
        task_status.started()
        failures = Backoff(poll_interval, MAX_BACKOFF, jitter=False)
        pause = poll_interval
        while True:
            asked, self._wake = self._wake.is_set(), trio.Event()
            done, self._round_done = self._round_done, trio.Event()
            priority = Priority.INTERACTIVE if asked else Priority.BACKGROUND
            before = self.client.stats.requests
            try:
                if not self.crawl_finished.is_set():
                    self.report = await self.full_sync(priority)
                else:
                    self.report = await self.poll(priority)
                    revalidated = await self.revalidate(
                        older_than=0 if asked else self.revalidate_interval, priority=priority)
                    self.report.merge_counts(revalidated)
                pause = self._paced(self.poll_interval, self.client.stats.requests - before)
                self.store.compact()  # (free pages of deleted files, a few MB a round)
                failures.reset(self.poll_interval)
                self.last_error = None
                self.last_sync = time.time()
            except (ApiError, MassDeleteRefused) as exc:
                if str(exc) != self.last_error:
                    log.warning("sync failed, keeping the cached library: %s", exc)
                self.last_error = str(exc)
                pause = failures.next()
            except Exception as exc:  # a bug here must not take the mount down with it
                if repr(exc) != self.last_error:
                    log.exception("sync failed unexpectedly, keeping the cached library")
                self.last_error = repr(exc)
                pause = failures.next()
            done.set()
            with trio.move_on_after(pause):
                await self._wake.wait()

    def _paced(self, interval: float, requests: int) -> float:
        """The pause after a round: the poll interval, or longer where the plan is small,
        so that keeping up spends at most POLL_SHARE of the plan's budget (FREE: one
        request a minute; a round of two requests then comes every two minutes).
        (`requests`: all the client sent during the round, the user's too: a busy user
        leaves the budget to themselves.)
        A change on the mount or `aionfs sync --now` still starts a round at once."""
        rate = self.client.limiter.configured
        if not rate or requests <= 0:
            return interval
        return max(interval, WINDOW * requests / (POLL_SHARE * rate))

    def wake(self) -> None:
        """The API answers again (after sleep or a network loss): no need to wait out
        the backoff."""
        self._wake.set()

    async def request_round(self) -> SyncReport:
        """Have the background loop check for changes now, at interactive priority;
        returns once that round is over (`last_error` says if it failed)."""
        done = self._round_done  # the next round's: one already running does not count
        self._wake.set()
        await done.wait()
        return self.report

    async def ensure_listed(self, folder_key: str,
                            priority: Priority = Priority.INTERACTIVE) -> None:
        """A folder is listed the first time someone opens it (lazy)."""
        if self.store.listing(folder_key) is None:
            await self.list_folder(folder_key, priority)
