"""The metadata store: SQLite (WAL) holding the library as the mount shows it.

Methods are synchronous and short: no await ever happens inside a
transaction. Sync computes plans from API answers (aionfs.sync.plan) and
applies them here in one transaction each; every change that the kernel
may have cached comes back as `Event`s for the mount to invalidate.

Hot paths (lookup, listing a directory, attributes) are single indexed
queries with prepared (cached) statements.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

from . import naming
from .schema import ROOT_INODE, migrate

log = logging.getLogger(__name__)

#: The root's folder key. The API has no filter for "outside any folder", so the
#: root's files are found in the listing of all files (kept under this key) and
#: placed at the root once no folder claims them (docs/store-and-sync.md).
ROOT_KEY = ""
#: free pages given back per `compact` (8 MiB), and the least worth a call (10 MiB)
COMPACT_PAGES = 2048
COMPACT_MIN_FREE = 2560


@dataclass(frozen=True)
class Event:
    """A change the kernel may have cached.

    kind: 'attr' (an inode's metadata), 'content' (an inode's bytes),
    'entry_added' / 'entry_removed' (a name in `parent`), 'gone' (an inode
    deleted remotely).
    """

    kind: str
    inode: int
    parent: int | None = None
    name: str | None = None
    is_dir: bool = False


class Entry(NamedTuple):
    """A directory entry (a tuple: listings build thousands of them)."""

    name: str
    inode: int
    is_dir: bool


FILE_COLUMNS = ("id", "title", "filename", "size", "media_type", "format", "content_type",
                "width", "height", "tags", "description", "visible_text",
                "description_status", "variant_status", "page_count", "source_url", "domain",
                "created_at", "content_created_at")
#: the id prefix of folders made offline, until they are created remotely
LOCAL_PREFIX = "local:"
#: Times set through the mount (inode_times), as columns of a query over `files f`.
TIME_COLUMNS = ("(SELECT t.mtime_ns FROM inode_times t WHERE t.inode = f.inode) AS set_mtime_ns, "
                "(SELECT t.ctime_ns FROM inode_times t WHERE t.inode = f.inode) AS set_ctime_ns")
#: The file columns attributes need (a link's size depends on its .desktop text).
ATTR_COLUMNS = ("f.id, f.inode, f.size, f.media_type, f.updated_at, f.created_at, f.title, "
                "f.domain, f.source_url, f.tags, "
                "CASE WHEN f.media_type = 'link' THEN f.description END AS description, "
                + TIME_COLUMNS)
#: Columns whose change means the bytes changed (not just metadata).
CONTENT_COLUMNS = frozenset({"size"})


class Store:
    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                                  cached_statements=256)
        self.db.row_factory = sqlite3.Row
        if self.db.execute("PRAGMA user_version").fetchone()[0] == 0:
            # a new store (this must precede its first table): free pages can be given
            # back a few at a time (`compact`)
            self.db.execute("PRAGMA auto_vacuum=INCREMENTAL")
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA temp_store=MEMORY")
        self.db.execute("PRAGMA cache_size=-16384")  # 16 MiB: indexes of big libraries
        # A big crawl dirties pages all over the id indexes: checkpoint every 64 MiB of
        # WAL rather than every 4, so a page written by many commits is copied once
        # (a sync of 200,000 files: 36 s → 31 s)
        self.db.execute("PRAGMA wal_autocheckpoint=16384")
        self.previous_version = migrate(self.db)
        self._in_tx = False

    def close(self) -> None:
        self.db.close()

    def compact(self, pages: int = COMPACT_PAGES) -> int:
        """Give free pages back to the file system, `pages` at most (a few MB: the
        caller is the sync loop, between rounds). Deleted files leave free pages
        that SQLite reuses but never returns; after a library shrank, the store
        would keep its largest size forever. Returns the pages freed."""
        free = self.db.execute("PRAGMA freelist_count").fetchone()[0]
        if free < COMPACT_MIN_FREE or self._in_tx:  # (never inside a transaction)
            return 0
        if self.db.execute("PRAGMA auto_vacuum").fetchone()[0] != 2:
            # A store made before incremental vacuum: converted by one VACUUM, once,
            # when a quarter of it is free (it rewrites the file: seconds for a big store).
            if free < self.db.execute("PRAGMA page_count").fetchone()[0] // 4:
                return 0
            log.info("compacting the metadata store once (%d MB free)", free * 4096 >> 20)
            self.db.execute("PRAGMA auto_vacuum=INCREMENTAL")
            self.db.execute("VACUUM")
            return free
        # (executescript steps it to the end: through execute, sqlite3 steps a pragma
        # that returns no row once, which frees one page)
        self.db.executescript(f"PRAGMA incremental_vacuum({int(pages)});")
        return free - self.db.execute("PRAGMA freelist_count").fetchone()[0]

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE … COMMIT, rolled back on error)."""
        if self._in_tx:
            yield self.db
            return
        self.db.execute("BEGIN IMMEDIATE")
        self._in_tx = True
        try:
            yield self.db
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        finally:
            self._in_tx = False

    # -- meta ----------------------------------------------------------------

    def get_meta(self, key: str, default: str | None = None) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else default

    def set_meta(self, key: str, value: str) -> None:
        self.db.execute("INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE "
                        "SET value=excluded.value", (key, value))

    # -- inodes --------------------------------------------------------------

    def inode_for(self, kind: str, ref: str) -> int:
        row = self.db.execute("SELECT inode FROM inodes WHERE kind=? AND ref=?",
                              (kind, ref)).fetchone()
        if row:
            return int(row[0])
        cur = self.db.execute("INSERT INTO inodes(kind, ref) VALUES (?, ?)", (kind, ref))
        return int(cur.lastrowid)  # type: ignore[arg-type]

    def _file_inodes(self, ids: list[str]) -> dict[str, int]:
        """Inodes for many files at once (created where missing)."""
        if not ids:
            return {}
        self.db.executemany("INSERT OR IGNORE INTO inodes(kind, ref) VALUES ('file', ?)",
                            [(i,) for i in ids])
        out: dict[str, int] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            out.update((r[1], r[0]) for r in self.db.execute(
                f"SELECT inode, ref FROM inodes WHERE kind='file' AND ref IN "
                f"({','.join('?' * len(chunk))})", chunk))
        return out

    def inode_ref(self, inode: int) -> tuple[str, str] | None:
        row = self.db.execute("SELECT kind, ref FROM inodes WHERE inode=?", (inode,)).fetchone()
        return (row[0], row[1]) if row else None

    # -- reading -------------------------------------------------------------

    def folders(self) -> dict[str, sqlite3.Row]:
        """The workspace's folders (not those made offline and not created yet)."""
        return {r["id"]: r for r in self.db.execute(
            "SELECT * FROM folders WHERE id NOT LIKE 'local:%'")}

    # Folders made on the mount while the API was unreachable carry a `local:` id
    # until the uploader creates them; sync never sees them.

    def add_local_folder(self, name: str, parent_id: str | None) -> str:
        folder_id = f"{LOCAL_PREFIX}{uuid.uuid4()}"
        inode = self.inode_for("folder", folder_id)
        now = datetime.now(UTC).isoformat()
        self.db.execute("INSERT INTO folders(id, inode, name, parent_id, file_count, "
                        "created_at, updated_at) VALUES (?,?,?,?,0,?,?)",
                        (folder_id, inode, name, parent_id, now, now))
        self.set_listing(folder_id, True, 0)
        return folder_id

    def local_folders(self) -> list[sqlite3.Row]:
        """Folders waiting to be created, parents before children."""
        rows = list(self.db.execute("SELECT * FROM folders WHERE id LIKE 'local:%'"))
        local = {r["id"] for r in rows}
        ordered: list[sqlite3.Row] = []
        while rows:
            ready = [r for r in rows if r["parent_id"] not in local]
            if not ready:  # cannot happen (no cycles), but never loop forever
                break
            ordered += ready
            local -= {r["id"] for r in ready}
            rows = [r for r in rows if r["id"] in local]
        return ordered

    def rekey_folder(self, old: str, new: str) -> list[int]:
        """A local folder now exists remotely as `new`: keep its inode and entries.
        Returns the inodes of a copy sync may have made of it meanwhile (dropped)."""
        dropped = []
        dup = self.folder(new)
        if dup is not None:
            dropped.append(dup["inode"])
            self.db.execute("DELETE FROM folders WHERE id=?", (new,))
            self.db.execute("DELETE FROM entries WHERE inode=? OR parent_inode=?",
                            (dup["inode"], dup["inode"]))
            self.db.execute("DELETE FROM listings WHERE folder_key=?", (new,))
            self.db.execute("DELETE FROM inodes WHERE inode=?", (dup["inode"],))
        self.db.execute("UPDATE folders SET id=? WHERE id=?", (new, old))
        self.db.execute("UPDATE folders SET parent_id=? WHERE parent_id=?", (new, old))
        self.db.execute("UPDATE inodes SET ref=? WHERE kind='folder' AND ref=?", (new, old))
        self.db.execute("UPDATE listings SET folder_key=? WHERE folder_key=?", (new, old))
        self.db.execute("UPDATE upload_journal SET folder_id=? WHERE folder_id=?", (new, old))
        return dropped

    def folder(self, folder_id: str) -> sqlite3.Row | None:
        return self.db.execute("SELECT * FROM folders WHERE id=?", (folder_id,)).fetchone()

    def folder_by_inode(self, inode: int) -> sqlite3.Row | None:
        return self.db.execute(
            "SELECT f.*, " + TIME_COLUMNS + " FROM folders f WHERE f.inode=?", (inode,)).fetchone()

    def file(self, file_id: str) -> sqlite3.Row | None:
        return self.db.execute("SELECT * FROM files WHERE id=?", (file_id,)).fetchone()

    def file_by_inode(self, inode: int) -> sqlite3.Row | None:
        return self.db.execute(
            "SELECT f.*, " + TIME_COLUMNS + " FROM files f WHERE f.inode=?", (inode,)).fetchone()

    def file_attr_row(self, inode: int) -> sqlite3.Row | None:
        """The columns a file's attributes need (`ATTR_COLUMNS`), for getattr and
        lookup: not the description and text of the whole row, decoded each time."""
        return self.db.execute(
            "SELECT " + ATTR_COLUMNS + " FROM files f WHERE f.inode=?", (inode,)).fetchone()

    def superseded(self) -> set[str]:
        """Library files the upload journal is about to delete, never named: those a
        local version replaces (an edit, a save over them) and the copies that landed
        of entries dropped or changed in flight. Whatever lists them first (a sync, an
        echo), the mount never shows a file that a newer one of the user's stands for."""
        ids: set[str] = set()
        for replaces, remote, discard in self.db.execute(
                "SELECT replaces_id, remote_id, discard FROM upload_journal "
                "WHERE replaces_id IS NOT NULL OR discard"):
            ids.update((replaces or "").split())
            if discard and remote:
                ids.add(remote)
        return ids

    # -- times set through the mount --------------------------------------------

    def times(self, inode: int) -> tuple[int, int] | None:
        """(mtime_ns, ctime_ns) set through the mount, if any."""
        row = self.db.execute("SELECT mtime_ns, ctime_ns FROM inode_times WHERE inode=?",
                              (inode,)).fetchone()
        return (row[0], row[1]) if row else None

    def set_times(self, inode: int, mtime_ns: int, ctime_ns: int) -> None:
        self.db.execute("INSERT OR REPLACE INTO inode_times(inode, mtime_ns, ctime_ns) "
                        "VALUES (?, ?, ?)", (inode, mtime_ns, ctime_ns))

    def forget_times(self, inode: int) -> None:
        self.db.execute("DELETE FROM inode_times WHERE inode=?", (inode,))

    def members(self, folder_key: str) -> dict[str, sqlite3.Row]:
        """Files shown in a folder ('' = the root)."""
        if folder_key == ROOT_KEY:
            rows = self.db.execute("SELECT * FROM files WHERE placement='root'")
        else:
            rows = self.db.execute("SELECT * FROM files WHERE placement='folder' AND "
                                   "folder_id=?", (folder_key,))
        return {r["id"]: r for r in rows}

    def member_ids(self, folder_key: str) -> list[str]:
        """Ids of the files shown in a folder ('' = the root)."""
        if folder_key == ROOT_KEY:
            return [r[0] for r in self.db.execute("SELECT id FROM files WHERE placement='root'")]
        return [r[0] for r in self.db.execute(
            "SELECT id FROM files WHERE placement='folder' AND folder_id=?", (folder_key,))]

    def unplaced(self) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT id FROM files WHERE placement='unknown'")]

    def counts(self) -> dict[str, int]:
        row = self.db.execute(
            "SELECT (SELECT count(*) FROM folders), (SELECT count(*) FROM files), "
            "(SELECT count(*) FROM files WHERE placement='root'), "
            "(SELECT count(*) FROM files WHERE placement='unknown')").fetchone()
        return {"folders": row[0], "files": row[1], "root_files": row[2], "unplaced": row[3]}

    def lookup(self, parent_inode: int, name: str) -> Entry | None:
        row = self.db.execute("SELECT name, inode, is_dir FROM entries WHERE parent_inode=? "
                              "AND name=?", (parent_inode, name)).fetchone()
        return Entry(row[0], row[1], bool(row[2])) if row else None

    def list_dir(self, parent_inode: int) -> list[Entry]:
        """A directory's entries in name order (one index range scan)."""
        return [Entry(r[0], r[1], bool(r[2])) for r in self.db.execute(
            "SELECT name, inode, is_dir FROM entries WHERE parent_inode=? ORDER BY name",
            (parent_inode,))]

    def list_dir_with_files(self, parent_inode: int, columns: str = "f.*"
                            ) -> Iterator[tuple[Entry, sqlite3.Row | None]]:
        """Entries with their file rows (None for directories), in one join.

        `columns` narrows the file columns fetched (e.g. `ATTR_COLUMNS`): a cold
        directory listing spends most of its time moving the long text columns.
        """
        rows = self.db.execute(
            f"SELECT e.name, e.inode, e.is_dir, {columns} FROM entries e LEFT JOIN files f "
            "ON f.inode = e.inode WHERE e.parent_inode=? ORDER BY e.name", (parent_inode,))
        # (a generator: a directory of 100,000 files is never all in memory as rows)
        return ((Entry(r[0], r[1], bool(r[2])), None if r[2] else r) for r in rows)

    def next_files(self, file_id: str, count: int) -> list[tuple[str, int]]:
        """(id, size) of the files after this one in its folder's order (the order
        `ls`, `tar` and `cp -r` read them in): one indexed range scan."""
        # (two statements: joined in one, the planner sorts every later entry of the
        # folder before the LIMIT — quadratic over a folder read through)
        me = self.db.execute(
            "SELECT e.parent_inode, e.name FROM files f JOIN entries e ON e.inode = f.inode "
            "WHERE f.id=? ORDER BY e.parent_inode, e.name LIMIT 1", (file_id,)).fetchone()
        if me is None:
            return []
        rows = self.db.execute(
            "SELECT f.id, f.size FROM entries e JOIN files f ON f.inode = e.inode "
            "WHERE e.parent_inode = ? AND e.name > ? AND e.is_dir = 0 "
            "AND f.media_type != 'link' ORDER BY e.name LIMIT ?", (me[0], me[1], count))
        return [(r[0], r[1]) for r in rows]

    def set_file_fields(self, file_id: str, **fields: str | None) -> None:
        """Metadata the API accepted for a file through the mount (title, tags as
        JSON, colors): kept until the next listing brings the same."""
        bad = set(fields) - {"title", "tags", "colors"}
        if bad:
            raise ValueError(f"not settable here: {sorted(bad)}")
        sets = ", ".join(f"{k}=?" for k in fields)
        self.db.execute(f"UPDATE files SET {sets} WHERE id=?", (*fields.values(), file_id))

    def known_files(self, ids: list[str]) -> set[str]:
        """Which of these file ids the store has (a query per 500)."""
        known: set[str] = set()
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            known.update(r[0] for r in self.db.execute(
                f"SELECT id FROM files WHERE id IN ({','.join('?' * len(chunk))})", chunk))
        return known

    def files_by_inode(self, inodes: list[int]) -> dict[int, sqlite3.Row]:
        """Rows of these files (one query), by inode, with the times set through the
        mount (what `LibraryView.file_attr` shows)."""
        marks = ",".join("?" * len(inodes))
        return {r["inode"]: r for r in self.db.execute(
            f"SELECT f.*, {TIME_COLUMNS} FROM files f WHERE f.inode IN ({marks})", inodes)}

    def folders_holding(self, name: str) -> set[str]:
        """Ids of the folders that show a file under this name."""
        return {r[0] for r in self.db.execute(
            "SELECT DISTINCT fo.id FROM entries e JOIN folders fo ON fo.inode = e.parent_inode "
            "WHERE e.name=? AND e.is_dir=0", (name,))}

    def folder_parents(self) -> list[tuple[str, str | None]]:
        """(id, parent id) of every folder."""
        return [(r[0], r[1]) for r in self.db.execute("SELECT id, parent_id FROM folders")]

    def adopt_inode(self, inode: int, file_id: str) -> list[Event]:
        """A file written here is now the library file `file_id`: its (local) inode
        stands for it from now on. One that sync gave the file meanwhile goes."""
        events: list[Event] = []
        other = self.db.execute("SELECT inode FROM inodes WHERE kind='file' AND ref=?",
                                (file_id,)).fetchone()
        if other is not None and other[0] != inode:
            events += self.remove_entries_of([other[0]])
            self.db.execute("UPDATE files SET inode=? WHERE id=?", (inode, file_id))
            self.db.execute("DELETE FROM inodes WHERE inode=?", (other[0],))
        # (INSERT OR REPLACE: the row of an inode whose file was deleted remotely while
        # edited here is gone, and the number comes back for the new version)
        self.db.execute("INSERT OR REPLACE INTO inodes(inode, kind, ref) VALUES (?, 'file', ?)",
                        (inode, file_id))
        return events

    def drop_names(self, inode: int) -> None:
        """The names of an inode that goes on under another file (no events: the
        names stay in the kernel's view, standing for the new file)."""
        self.db.execute("DELETE FROM entries WHERE inode=?", (inode,))

    def end_crawl(self) -> None:
        """The full crawl is over: a restart need not resume it."""
        self.db.execute("DELETE FROM meta WHERE key='crawl_open'")

    def files_named(self, name: str) -> list[tuple[int, int]]:
        """(inode, size) of the files shown under this name in any folder."""
        return [(r[0], r[1]) for r in self.db.execute(
            "SELECT f.inode, f.size FROM entries e JOIN files f ON f.inode = e.inode "
            "WHERE e.name=? AND e.is_dir=0 AND f.media_type IS NOT 'link'", (name,))]

    def names_of(self, inode: int) -> list[tuple[int, str]]:
        """Every (parent, name) an inode is shown under."""
        return [(r[0], r[1]) for r in self.db.execute(
            "SELECT parent_inode, name FROM entries WHERE inode=?", (inode,))]

    def dir_path(self, inode: int) -> str | None:
        """A directory's path below the root ('' for the root), None if not shown."""
        parts: list[str] = []
        while inode != ROOT_INODE:
            row = self.db.execute("SELECT parent_inode, name FROM entries WHERE inode=? "
                                  "AND is_dir=1", (inode,)).fetchone()
            if row is None or len(parts) > 256:
                return None
            parts.append(row[1])
            inode = row[0]
        return "/".join(reversed(parts))

    def resolve(self, path: str) -> Entry | None:
        """A slash-separated path from the root to its entry."""
        entry = Entry("", ROOT_INODE, True)
        for part in (p for p in path.split("/") if p):
            if not entry.is_dir:
                return None
            found = self.lookup(entry.inode, part)
            if found is None:
                return None
            entry = found
        return entry

    # -- listings state --------------------------------------------------------

    def listing(self, folder_key: str) -> sqlite3.Row | None:
        return self.db.execute("SELECT * FROM listings WHERE folder_key=?",
                               (folder_key,)).fetchone()

    def set_listing(self, folder_key: str, complete: bool, total: int) -> None:
        self.db.execute(
            "INSERT INTO listings(folder_key, listed_at_epoch, complete, total) VALUES (?,?,?,?) "
            "ON CONFLICT(folder_key) DO UPDATE SET listed_at_epoch=excluded.listed_at_epoch, "
            "complete=excluded.complete, total=excluded.total",
            (folder_key, time.time(), int(complete), total))

    def stale_listings(self, older_than: float) -> list[str]:
        """Listed folders, oldest-listed first, last listed before `older_than`."""
        return [r[0] for r in self.db.execute(
            "SELECT folder_key FROM listings WHERE listed_at_epoch < ? AND folder_key NOT "
            "LIKE 'local:%' ORDER BY listed_at_epoch", (older_than,))]

    # -- crawl progress --------------------------------------------------------

    def crawl_pass(self) -> int:
        return int(self.get_meta("crawl_pass", "0") or 0)

    def crawl_done(self, crawl: int) -> set[str]:
        return {r[0] for r in self.db.execute("SELECT folder_key FROM crawl WHERE pass=?",
                                              (crawl,))}

    def mark_crawled(self, crawl: int, folder_key: str) -> None:
        self.db.execute("INSERT OR IGNORE INTO crawl(pass, folder_key) VALUES (?, ?)",
                        (crawl, folder_key))

    def start_crawl(self) -> int:
        with self.transaction():
            crawl = self.crawl_pass() + 1
            self.set_meta("crawl_pass", str(crawl))
            self.db.execute("DELETE FROM crawl WHERE pass < ?", (crawl,))
        return crawl

    # -- writing: folders --------------------------------------------------------

    def upsert_folders(self, rows: Iterable[dict[str, Any]]) -> set[str]:
        """Insert or update folders; returns the ids whose name or parent changed."""
        changed: set[str] = set()
        for r in rows:
            old = self.folder(r["id"])
            if old is None:
                inode = self.inode_for("folder", r["id"])
                self.db.execute(
                    "INSERT INTO folders(id, inode, name, parent_id, file_count, created_at, "
                    "updated_at) VALUES (?,?,?,?,?,?,?)",
                    (r["id"], inode, r["name"], r["parent_id"], r["file_count"],
                     r["created_at"], r["updated_at"]))
                changed.add(r["id"])
            else:
                if (old["name"], old["parent_id"]) != (r["name"], r["parent_id"]):
                    changed.add(r["id"])
                self.db.execute(
                    "UPDATE folders SET name=?, parent_id=?, file_count=?, updated_at=? "
                    "WHERE id=?", (r["name"], r["parent_id"], r["file_count"], r["updated_at"],
                                   r["id"]))
        return changed

    def delete_folders(self, ids: Sequence[str]) -> list[int]:
        """Forget folders; their files lose their placement. Returns the inodes."""
        inodes = []
        for fid in ids:
            row = self.folder(fid)
            if row is None:
                continue
            inodes.append(row["inode"])
            self.db.execute("DELETE FROM folders WHERE id=?", (fid,))
            self.db.execute("DELETE FROM entries WHERE parent_inode=?", (row["inode"],))
            self.db.execute("DELETE FROM listings WHERE folder_key=?", (fid,))
            self.db.execute("UPDATE files SET placement='unknown', folder_id=NULL "
                            "WHERE placement='folder' AND folder_id=?", (fid,))
        return inodes

    # -- writing: files ----------------------------------------------------------

    def upsert_files(self, items: Iterable[dict[str, Any]], seen_all: int | None = None
                     ) -> tuple[set[str], set[str], set[str]]:
        """Insert or update file metadata (not placement).

        Columns the listing does not carry (`colors`, fetched once per file and
        kept) are left alone, except that new bytes (a CONTENT_COLUMNS change)
        forget the colors: they were the old bytes' and are asked again.
        `seen_all`: these items come from that all-files listing (`start_all_listing`).

        Returns (new ids, ids whose metadata changed, ids whose bytes changed).
        """
        now = time.time()
        new: set[str] = set()
        meta_changed: set[str] = set()
        content_changed: set[str] = set()
        cols = ", ".join(FILE_COLUMNS)
        marks = ", ".join("?" * len(FILE_COLUMNS))
        sets = ", ".join(f"{c}=?" for c in FILE_COLUMNS[1:])
        # A listing paged while files arrive can repeat an item: keep its last sight.
        items = list({item["id"]: item for item in items}.values())
        old_rows: dict[str, tuple[Any, ...]] = {}
        for chunk in range(0, len(items), 500):  # one query per 500 items, not one per item
            ids = [it["id"] for it in items[chunk:chunk + 500]]
            for r in self.db.execute(f"SELECT {cols} FROM files WHERE id IN "
                                     f"({','.join('?' * len(ids))})", ids):
                old_rows[r[0]] = tuple(r)
        inodes = self._file_inodes([it["id"] for it in items if it["id"] not in old_rows])
        inserts, updates, touched = [], [], []
        for item in items:
            values = tuple(item[c] for c in FILE_COLUMNS)
            old = old_rows.get(item["id"])
            if old is None:
                inserts.append((*values, inodes[item["id"]], now, seen_all))
                new.add(item["id"])
            elif old != values:
                diff = {c for c, a, b in zip(FILE_COLUMNS, old, values, strict=True) if a != b}
                meta_changed.add(item["id"])
                if diff & CONTENT_COLUMNS:
                    content_changed.add(item["id"])
                updates.append((*values[1:], now, seen_all, item["id"]))
            else:
                touched.append((now, seen_all, item["id"]))
        self.db.executemany(f"INSERT INTO files({cols}, inode, placement, listed_at_epoch, "
                            f"seen_all) VALUES ({marks}, ?, 'unknown', ?, ?)", inserts)
        self.db.executemany(
            "INSERT OR REPLACE INTO file_urls(file_id, thumbnail_url, medium_url, "
            "original_url, listed_at_epoch) VALUES (?, ?, ?, ?, ?)",
            [(it["id"], it.get("thumbnail_url"), it.get("medium_url"), it.get("original_url"),
              now)
             for it in items
             if it.get("thumbnail_url") or it.get("medium_url") or it.get("original_url")])
        self.db.executemany(f"UPDATE files SET {sets}, listed_at_epoch=?, seen_all="
                            "coalesce(?, seen_all) WHERE id=?", updates)
        self.db.executemany("UPDATE files SET colors=NULL WHERE id=?",
                            [(fid,) for fid in content_changed])
        # new bytes: a download URL kept for the old ones would serve those
        self.db.executemany("DELETE FROM download_urls WHERE file_id=?",
                            [(fid,) for fid in content_changed])
        self.db.executemany("UPDATE files SET listed_at_epoch=?, seen_all=coalesce(?, seen_all)"
                            " WHERE id=?", touched)
        return new, meta_changed, content_changed

    def start_all_listing(self) -> int:
        """A number for an all-files listing about to start (see `upsert_files`)."""
        token = int(self.get_meta("all_listing", "0") or 0) + 1
        with self.transaction():
            self.set_meta("all_listing", str(token))
        return token

    def seen_all_count(self, token: int) -> int:
        """How many distinct files that all-files listing showed."""
        return int(self.db.execute("SELECT count(*) FROM files WHERE seen_all=?",
                                   (token,)).fetchone()[0])

    def missed_by_all(self, token: int) -> set[str]:
        """Files the store has that that all-files listing did not show."""
        return {r[0] for r in self.db.execute(
            "SELECT id FROM files WHERE seen_all IS NOT ?", (token,))}

    def unplaced_seen_all(self, token: int) -> list[str]:
        """Unplaced files that that all-files listing showed."""
        return [r[0] for r in self.db.execute(
            "SELECT id FROM files WHERE placement='unknown' AND seen_all=?", (token,))]

    def member_counts(self) -> dict[str, int]:
        """Files shown per folder ('' = the root), from the placement index in its order.
        (Not one GROUP BY over both placements: SQLite then sorts a million entries in
        a temporary B-tree, 0.7 s and 80 MB, where these take 0.05 s and nothing.)"""
        counts = {r[0]: r[1] for r in self.db.execute(
            "SELECT folder_id, count(*) FROM files WHERE placement='folder' GROUP BY folder_id")}
        counts[ROOT_KEY] = self.db.execute(
            "SELECT count(*) FROM files WHERE placement='root'").fetchone()[0]
        return counts

    def place_files(self, ids: Iterable[str], folder_key: str | None) -> dict[str, str | None]:
        """Set where files are shown ('' root, a folder id, None unknown).

        Returns {id: the folder key it was shown in before} for files that moved.
        """
        moved: dict[str, str | None] = {}
        if folder_key is None:
            placement, folder = "unknown", None
        elif folder_key == ROOT_KEY:
            placement, folder = "root", None
        else:
            placement, folder = "folder", folder_key
        for fid in ids:
            row = self.db.execute("SELECT placement, folder_id FROM files WHERE id=?",
                                  (fid,)).fetchone()
            if row is None or (row[0], row[1]) == (placement, folder):
                continue
            self.db.execute("UPDATE files SET placement=?, folder_id=? WHERE id=?",
                            (placement, folder, fid))
            moved[fid] = {"root": ROOT_KEY, "folder": row[1]}.get(row[0])
        return moved

    def listed_url(self, file_id: str, kind: str, fresh_after: float) -> str | None:
        """A URL a list item carried (`thumbnail_url`, `medium_url`, `original_url`)
        from a listing made after `fresh_after` (epoch seconds), if one is known."""
        assert kind in ("thumbnail_url", "medium_url", "original_url")
        row = self.db.execute(f"SELECT {kind} FROM file_urls WHERE file_id=? AND "
                              "listed_at_epoch > ?", (file_id, fresh_after)).fetchone()
        return row[0] if row else None

    def forget_listed_url(self, file_id: str, kind: str) -> None:
        """That listed URL failed (expired early, or not what it was taken for)."""
        assert kind in ("thumbnail_url", "medium_url", "original_url")
        self.db.execute(f"UPDATE file_urls SET {kind}=NULL WHERE file_id=?", (file_id,))

    def download_url(self, file_id: str, fresh_until: float) -> str | None:
        """A download URL of the file that stays valid past `fresh_until` (epoch s)."""
        row = self.db.execute("SELECT url FROM download_urls WHERE file_id=? AND "
                              "expires_epoch > ?", (file_id, fresh_until)).fetchone()
        return row[0] if row else None

    def forget_download_url(self, file_id: str, url: str | None = None) -> None:
        """That download URL failed (or, None: the file's bytes changed). Only that
        one: another reader may have kept a fresh one meanwhile."""
        if url is None:
            self.db.execute("DELETE FROM download_urls WHERE file_id=?", (file_id,))
        else:
            self.db.execute("DELETE FROM download_urls WHERE file_id=? AND url=?",
                            (file_id, url))

    def keep_download_url(self, file_id: str, url: str, expires_epoch: float) -> None:
        """Remember a download URL until it expires."""
        self.db.execute("INSERT OR REPLACE INTO download_urls(file_id, url, expires_epoch) "
                        "VALUES (?, ?, ?)", (file_id, url, expires_epoch))

    def delete_files(self, ids: Iterable[str]) -> list[int]:
        inodes = []
        for fid in ids:
            row = self.db.execute("SELECT inode FROM files WHERE id=?", (fid,)).fetchone()
            if row is None:
                continue
            inodes.append(row[0])
            self.db.execute("DELETE FROM files WHERE id=?", (fid,))
            # (AUTOINCREMENT never hands the number out again: the row need not stay,
            # and a library that churns does not grow its store without bound)
            self.db.execute("DELETE FROM inodes WHERE inode=?", (row[0],))
            self.db.execute("DELETE FROM file_urls WHERE file_id=?", (fid,))
            self.db.execute("DELETE FROM download_urls WHERE file_id=?", (fid,))
            self.db.execute("DELETE FROM query_results WHERE file_id=?", (fid,))
        return inodes

    # -- names -------------------------------------------------------------------

    def dir_inode(self, folder_key: str) -> int:
        if folder_key == ROOT_KEY:
            return ROOT_INODE
        row = self.db.execute("SELECT inode FROM folders WHERE id=?", (folder_key,)).fetchone()
        return int(row[0]) if row else 0

    def rename_dir(self, folder_key: str) -> list[Event]:
        """Recompute the names shown in one directory; events for what changed."""
        parent = self.dir_inode(folder_key)
        if not parent:
            return []
        children: list[naming.Child] = []
        is_dir: dict[int, bool] = {}
        subfolders = self.db.execute(
            "SELECT id, inode, name, created_at FROM folders WHERE parent_id IS ?",
            (None if folder_key == ROOT_KEY else folder_key,))
        for r in subfolders:
            children.append(naming.Child(r["inode"], naming.folder_name(r["name"]),
                                         r["created_at"], r["id"]))
            is_dir[r["inode"]] = True
        superseded = self.superseded()
        placed = ("placement='root'" if folder_key == ROOT_KEY
                  else "placement='folder' AND folder_id=?")
        for fid, inode, title, filename, fmt, media_type, domain, created_at in self.db.execute(
                "SELECT id, inode, title, filename, format, media_type, domain, created_at "
                f"FROM files WHERE {placed}", () if folder_key == ROOT_KEY else (folder_key,)):
            # (only the columns names need: a root of 100,000 files as whole rows was
            # the peak of a million-file sync's memory)
            if fid in superseded:
                continue
            children.append(naming.Child(
                inode, naming.file_name(title, filename, fmt, media_type, domain),
                created_at, fid))
            is_dir[inode] = False
        existing: dict[int, str] = {}
        for name, inode, was_dir in self.db.execute(
                "SELECT name, inode, is_dir FROM entries WHERE parent_inode=?", (parent,)):
            existing[inode] = name
            is_dir.setdefault(inode, bool(was_dir))
        reserved = naming.VIRTUAL_ROOT_NAMES if parent == ROOT_INODE else frozenset()
        names = naming.assign(children, reserved)
        events: list[Event] = []
        for inode, old in existing.items():
            if names.get(inode) != old:
                self.db.execute("DELETE FROM entries WHERE parent_inode=? AND name=?",
                                (parent, old))
                events.append(Event("entry_removed", inode, parent, old, is_dir[inode]))
        for inode, name in names.items():
            if existing.get(inode) != name:
                self.db.execute("INSERT OR REPLACE INTO entries(parent_inode, name, inode, "
                                "is_dir) VALUES (?,?,?,?)", (parent, name, inode,
                                                            int(is_dir[inode])))
                events.append(Event("entry_added", inode, parent, name, is_dir[inode]))
        return events

    def remove_entries_of(self, inodes: Iterable[int]) -> list[Event]:
        events = []
        for inode in inodes:
            for parent, name, is_dir in self.db.execute(
                    "SELECT parent_inode, name, is_dir FROM entries WHERE inode=?", (inode,)):
                events.append(Event("entry_removed", inode, parent, name, bool(is_dir)))
            self.db.execute("DELETE FROM entries WHERE inode=?", (inode,))
            self.forget_times(inode)  # (inodes are never reused)
            events.append(Event("gone", inode))
        return events


def file_row(item: Any) -> dict[str, Any]:
    """A store row from an API list item (aionfs.api.models.UserFile)."""
    dims = item.dimensions
    return {
        "id": item.id, "title": item.title, "filename": item.filename, "size": item.size_bytes,
        "media_type": item.media_type, "format": item.format,
        "content_type": item.content_type,
        "width": dims.width if dims else None, "height": dims.height if dims else None,
        "tags": json.dumps(item.tags), "description": item.upload_description,
        "visible_text": item.visible_text, "description_status": item.description_status,
        "variant_status": item.variant_status, "page_count": item.page_count,
        "source_url": item.source_url, "domain": item.domain,
        "created_at": _iso(item.created_at), "content_created_at": _iso(item.content_created_at),
        "thumbnail_url": item.thumbnail_url, "medium_url": item.medium_url,
        "original_url": (item.document_url if item.media_type == "document"
                         else item.full_url if item.media_type == "image" else None),
    }


def folder_row(folder: Any) -> dict[str, Any]:
    return {"id": folder.id, "name": folder.name, "parent_id": folder.parent_id,
            "file_count": folder.file_count, "created_at": _iso(folder.created_at),
            "updated_at": _iso(folder.updated_at)}


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    return value.isoformat() if hasattr(value, "isoformat") else str(value)
