"""The emulator's persistent state: tenants, folders, files, upload sessions.

SQLite in WAL mode under the data dir; bytes live in the BlobStore beside it.
Every row belongs to a tenant (one per API key), and every query filters by
tenant, so workspaces never see each other's objects. Deleted files keep
their row with `deleted_at` set (the API's soft delete).
"""

from __future__ import annotations

import hashlib
import json
import secrets
import sqlite3
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS tenants (
    id TEXT PRIMARY KEY,
    key_hash TEXT UNIQUE NOT NULL,     -- sha256 of the API key
    api_key TEXT NOT NULL,             -- kept so the emulator can print it again
    plan TEXT NOT NULL,
    rpm INTEGER,                       -- requests/minute override; NULL = plan's, 0 = none
    monthly_quota INTEGER,             -- upload quota override; NULL = plan's
    uploads_used INTEGER NOT NULL DEFAULT 0,
    processing_delay REAL NOT NULL DEFAULT 0,
    is_default INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS folders (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    name TEXT NOT NULL,
    parent_id TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS folders_by_parent ON folders(tenant, parent_id);
CREATE TABLE IF NOT EXISTS files (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT UNIQUE NOT NULL,
    tenant TEXT NOT NULL,
    folder_id TEXT,
    title TEXT,
    original_filename TEXT,
    media_type TEXT NOT NULL,          -- image | document | link
    format TEXT,
    content_type TEXT,
    size_bytes INTEGER NOT NULL,
    sha256 TEXT,
    blob TEXT,                         -- BlobStore key of the original (NULL for links)
    variants TEXT,                     -- JSON {variant: blob key}
    width INTEGER,
    height INTEGER,
    description TEXT,
    visible_text TEXT,
    colors TEXT,                       -- JSON {dominant_colors, analytics}
    tags TEXT NOT NULL DEFAULT '[]',   -- JSON list
    page_count INTEGER,
    source_url TEXT,
    domain TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    content_created_at TEXT,
    ready_at TEXT NOT NULL,            -- processing completes at this time
    indexed INTEGER NOT NULL DEFAULT 0, -- description/visible text in the FTS index
    deleted_at TEXT
);
CREATE INDEX IF NOT EXISTS files_by_tenant ON files(tenant, deleted_at, created_at);
-- (created_at last: a folder's pages come in listing order without a sort)
CREATE INDEX IF NOT EXISTS files_by_folder_listing ON files(tenant, folder_id, deleted_at,
                                                            created_at);
CREATE INDEX IF NOT EXISTS files_by_hash ON files(tenant, sha256);
CREATE INDEX IF NOT EXISTS files_pending ON files(tenant, indexed, ready_at);
CREATE VIRTUAL TABLE IF NOT EXISTS files_fts USING fts5(
    title, filename, description, visible_text, tags, tokenize='unicode61 remove_diacritics 2'
);
CREATE TABLE IF NOT EXISTS upload_sessions (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    created_at TEXT NOT NULL,
    results TEXT NOT NULL              -- JSON {created_at, tags, results, rejections}
);
"""

PLANS: dict[str, dict[str, int | None]] = {
    "free": {"rpm": 10, "batch": 10, "quota": 1000},
    "starter": {"rpm": 30, "batch": 50, "quota": 10000},
    "professional": {"rpm": 100, "batch": 100, "quota": 50000},
    "enterprise": {"rpm": 500, "batch": 200, "quota": None},
}
MAX_DEPTH = 10  # folder levels: depth 0 .. 9


def now_dt() -> datetime:
    return datetime.now(UTC)


def iso(dt: datetime | None) -> str | None:
    if dt is None:
        return None
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def key_hash(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()


@dataclass
class Tenant:
    id: str
    plan: str
    rpm: int | None
    monthly_quota: int | None
    uploads_used: int
    processing_delay: float

    @property
    def rate_per_minute(self) -> int | None:
        """None: unlimited."""
        if self.rpm is not None:
            return self.rpm or None
        return PLANS[self.plan]["rpm"]

    @property
    def batch_limit(self) -> int:
        return PLANS[self.plan]["batch"] or 10

    @property
    def quota(self) -> int | None:
        return self.monthly_quota if self.monthly_quota is not None else PLANS[self.plan]["quota"]


class FolderError(Exception):
    """A folder rule was broken; `status` is the HTTP status to answer."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class State:
    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(SCHEMA)

    def close(self) -> None:
        self.db.close()

    # -- tenants -----------------------------------------------------------

    def create_tenant(self, plan: str, *, rpm: int | None = None, quota: int | None = None,
                      processing_delay: float = 0.0, default: bool = False,
                      api_key: str | None = None) -> tuple[str, Tenant]:
        if plan not in PLANS:
            raise ValueError(f"unknown plan {plan!r}")
        api_key = api_key or "aion_emu" + secrets.token_hex(16)
        tid = str(uuid.uuid4())
        self.db.execute(
            "INSERT INTO tenants (id, key_hash, api_key, plan, rpm, monthly_quota, "
            "processing_delay, is_default, created_at) VALUES (?,?,?,?,?,?,?,?,?)",
            (tid, key_hash(api_key), api_key, plan, rpm, quota, processing_delay, int(default),
             iso(now_dt())))
        return api_key, self.tenant_by_key(api_key)  # type: ignore[return-value]

    def default_tenant_key(self) -> str | None:
        row = self.db.execute("SELECT api_key FROM tenants WHERE is_default=1").fetchone()
        return row["api_key"] if row else None

    def update_default_tenant(self, plan: str, rpm: int | None, delay: float) -> None:
        self.db.execute("UPDATE tenants SET plan=?, rpm=?, processing_delay=? WHERE is_default=1",
                        (plan, rpm, delay))

    def tenant_by_key(self, api_key: str) -> Tenant | None:
        row = self.db.execute(
            "SELECT id, plan, rpm, monthly_quota, uploads_used, processing_delay FROM tenants "
            "WHERE key_hash=?", (key_hash(api_key),)).fetchone()
        return Tenant(**dict(row)) if row else None

    def set_tenant(self, tenant: Tenant, **fields: Any) -> None:
        allowed = {"plan", "rpm", "monthly_quota", "uploads_used", "processing_delay"}
        for k, v in fields.items():
            if k not in allowed:
                raise ValueError(k)
            self.db.execute(f"UPDATE tenants SET {k}=? WHERE id=?", (v, tenant.id))
            setattr(tenant, k, v)

    def count_upload(self, tenant: Tenant, n: int) -> None:
        self.db.execute("UPDATE tenants SET uploads_used = uploads_used + ? WHERE id=?",
                        (n, tenant.id))
        tenant.uploads_used += n

    # -- folders -----------------------------------------------------------

    def folders(self, tenant: Tenant) -> list[sqlite3.Row]:
        return self.db.execute(
            "SELECT * FROM folders WHERE tenant=? ORDER BY created_at, id", (tenant.id,)
        ).fetchall()

    def folder(self, tenant: Tenant, folder_id: str) -> sqlite3.Row | None:
        return self.db.execute("SELECT * FROM folders WHERE tenant=? AND id=?",
                               (tenant.id, folder_id)).fetchone()

    def folder_depth(self, tenant: Tenant, folder_id: str | None) -> int:
        """Depth of a folder (root-level folders are 0); -1 for the root itself."""
        depth = -1
        while folder_id is not None:
            row = self.folder(tenant, folder_id)
            if row is None:
                break
            depth += 1
            folder_id = row["parent_id"]
        return depth

    def subtree_height(self, tenant: Tenant, folder_id: str) -> int:
        kids = self.db.execute("SELECT id FROM folders WHERE tenant=? AND parent_id=?",
                               (tenant.id, folder_id)).fetchall()
        return 1 + max((self.subtree_height(tenant, k["id"]) for k in kids), default=0)

    def ancestors(self, tenant: Tenant, folder_id: str | None) -> list[sqlite3.Row]:
        chain = []
        while folder_id is not None:
            row = self.folder(tenant, folder_id)
            if row is None:
                break
            chain.append(row)
            folder_id = row["parent_id"]
        return list(reversed(chain))

    def folder_view(self, tenant: Tenant, row: sqlite3.Row) -> dict[str, Any]:
        files = self.db.execute(
            "SELECT count(*) FROM files WHERE tenant=? AND folder_id=? AND deleted_at IS NULL",
            (tenant.id, row["id"])).fetchone()[0]
        subs = self.db.execute("SELECT count(*) FROM folders WHERE tenant=? AND parent_id=?",
                               (tenant.id, row["id"])).fetchone()[0]
        return {"id": row["id"], "name": row["name"], "parent_id": row["parent_id"],
                "depth": self.folder_depth(tenant, row["id"]), "file_count": files,
                "subfolder_count": subs, "created_at": row["created_at"],
                "updated_at": row["updated_at"]}

    def folder_tree_view(self, tenant: Tenant) -> list[dict[str, Any]]:
        """All folders with counts in three queries (no per-folder queries)."""
        rows = self.folders(tenant)
        files = dict(self.db.execute(
            "SELECT folder_id, count(*) FROM files WHERE tenant=? AND deleted_at IS NULL "
            "AND folder_id IS NOT NULL GROUP BY folder_id", (tenant.id,)).fetchall())
        by_id = {r["id"]: r for r in rows}
        subs: dict[str, int] = {}
        for r in rows:
            if r["parent_id"]:
                subs[r["parent_id"]] = subs.get(r["parent_id"], 0) + 1

        def depth(fid: str) -> int:
            d, cur = 0, by_id[fid]["parent_id"]
            while cur is not None and cur in by_id and d <= MAX_DEPTH:
                d, cur = d + 1, by_id[cur]["parent_id"]
            return d

        return [{"id": r["id"], "name": r["name"], "parent_id": r["parent_id"],
                 "depth": depth(r["id"]), "file_count": files.get(r["id"], 0),
                 "subfolder_count": subs.get(r["id"], 0), "created_at": r["created_at"],
                 "updated_at": r["updated_at"]} for r in rows]

    def _name_taken(self, tenant: Tenant, parent_id: str | None, name: str,
                    exclude: str | None = None) -> bool:
        row = self.db.execute(
            "SELECT id FROM folders WHERE tenant=? AND parent_id IS ? AND name=? AND id IS NOT ?",
            (tenant.id, parent_id, name, exclude)).fetchone()
        return row is not None

    def create_folder(self, tenant: Tenant, name: str, parent_id: str | None) -> str:
        if parent_id is not None and self.folder(tenant, parent_id) is None:
            raise FolderError(404, "FOLDER_NOT_FOUND", "parent folder not found")
        if self.folder_depth(tenant, parent_id) + 1 >= MAX_DEPTH:
            raise FolderError(422, "MAX_DEPTH_EXCEEDED",
                              f"folders can be nested at most {MAX_DEPTH} levels deep")
        if self._name_taken(tenant, parent_id, name):
            raise FolderError(409, "FOLDER_EXISTS",
                              f"a folder named {name!r} already exists at this level")
        fid, ts = str(uuid.uuid4()), iso(now_dt())
        self.db.execute("INSERT INTO folders VALUES (?,?,?,?,?,?)",
                        (fid, tenant.id, name, parent_id, ts, ts))
        return fid

    def rename_folder(self, tenant: Tenant, folder_id: str, name: str) -> None:
        row = self.folder(tenant, folder_id)
        if row is None:
            raise FolderError(404, "FOLDER_NOT_FOUND", "folder not found")
        if self._name_taken(tenant, row["parent_id"], name, exclude=folder_id):
            raise FolderError(409, "FOLDER_EXISTS",
                              f"a folder named {name!r} already exists at this level")
        self.db.execute("UPDATE folders SET name=?, updated_at=? WHERE id=?",
                        (name, iso(now_dt()), folder_id))

    def move_folder(self, tenant: Tenant, folder_id: str, new_parent: str | None) -> None:
        row = self.folder(tenant, folder_id)
        if row is None:
            raise FolderError(404, "FOLDER_NOT_FOUND", "folder not found")
        if new_parent is not None:
            if self.folder(tenant, new_parent) is None:
                raise FolderError(404, "FOLDER_NOT_FOUND", "target parent folder not found")
            if any(a["id"] == folder_id for a in self.ancestors(tenant, new_parent)):
                raise FolderError(422, "CIRCULAR_REFERENCE",
                                  "cannot move a folder into itself or its descendants")
        if self.folder_depth(tenant, new_parent) + self.subtree_height(tenant, folder_id) \
                >= MAX_DEPTH:
            raise FolderError(422, "MAX_DEPTH_EXCEEDED",
                              f"the move would nest folders deeper than {MAX_DEPTH} levels")
        if self._name_taken(tenant, new_parent, row["name"], exclude=folder_id):
            raise FolderError(409, "FOLDER_EXISTS",
                              f"a folder named {row['name']!r} already exists at the destination")
        self.db.execute("UPDATE folders SET parent_id=?, updated_at=? WHERE id=?",
                        (new_parent, iso(now_dt()), folder_id))

    def delete_folder(self, tenant: Tenant, folder_id: str, mode: str) -> tuple[int, int]:
        """(files affected, subfolders affected)."""
        row = self.folder(tenant, folder_id)
        if row is None:
            raise FolderError(404, "FOLDER_NOT_FOUND", "folder not found")
        parent = row["parent_id"]
        ts = iso(now_dt())
        with self.db:
            self.db.execute("BEGIN")
            if mode == "move_to_parent":
                files = self.db.execute(
                    "UPDATE files SET folder_id=? WHERE tenant=? AND folder_id=? "
                    "AND deleted_at IS NULL", (parent, tenant.id, folder_id)).rowcount
                kids = self.db.execute("SELECT id, name FROM folders WHERE tenant=? AND "
                                       "parent_id=?", (tenant.id, folder_id)).fetchall()
                for kid in kids:
                    # A subfolder whose name is taken in the parent gets " (2)", " (3)"...
                    name, n = kid["name"], 2
                    while self._name_taken(tenant, parent, name, exclude=kid["id"]):
                        name, n = f"{kid['name']} ({n})", n + 1
                    self.db.execute("UPDATE folders SET parent_id=?, name=?, updated_at=? "
                                    "WHERE id=?", (parent, name, ts, kid["id"]))
                subs = len(kids)
            else:
                ids = [folder_id]
                i = 0
                while i < len(ids):
                    ids += [r["id"] for r in self.db.execute(
                        "SELECT id FROM folders WHERE tenant=? AND parent_id=?",
                        (tenant.id, ids[i]))]
                    i += 1
                marks = ",".join("?" * len(ids))
                gone = [r[0] for r in self.db.execute(
                    f"SELECT seq FROM files WHERE tenant=? AND folder_id IN ({marks}) "
                    "AND deleted_at IS NULL", (tenant.id, *ids))]
                files = len(gone)
                self.db.executemany("UPDATE files SET deleted_at=? WHERE seq=?",
                                    [(ts, s) for s in gone])
                self.db.executemany("DELETE FROM files_fts WHERE rowid=?", [(s,) for s in gone])
                self.db.execute(f"DELETE FROM folders WHERE tenant=? AND id IN ({marks})",
                                (tenant.id, *ids))
                subs = len(ids) - 1
            self.db.execute("DELETE FROM folders WHERE id=?", (folder_id,))
        return files, subs

    # -- files -------------------------------------------------------------

    def insert_file(self, tenant: Tenant, fields: dict[str, Any]) -> str:
        fid = str(uuid.uuid4())
        created = now_dt()
        row = {
            "id": fid, "tenant": tenant.id, "created_at": iso(created),
            "updated_at": iso(created),
            "ready_at": iso(created + timedelta(seconds=tenant.processing_delay)),
            **fields,
        }
        row["tags"] = json.dumps(row.get("tags") or [])
        cols = ",".join(row)
        cur = self.db.execute(f"INSERT INTO files ({cols}) VALUES ({','.join('?' * len(row))})",
                              tuple(row.values()))
        self._index(cur.lastrowid, full=tenant.processing_delay <= 0)
        return fid

    def insert_link(self, tenant: Tenant, url: str, domain: str, title: str | None,
                    tags: list[str], folder_id: str | None) -> str:
        """A saved website link: a file without bytes (`media_type` link)."""
        return self.insert_file(tenant, {
            "folder_id": folder_id, "title": title or domain, "media_type": "link",
            "format": "link", "content_type": "text/html", "size_bytes": 0,
            "description": f"Saved link to {domain}: {url}", "tags": tags,
            "source_url": url, "domain": domain})

    def _index(self, seq: int | None, *, full: bool) -> None:
        r = self.db.execute("SELECT title, original_filename, description, visible_text, tags "
                            "FROM files WHERE seq=?", (seq,)).fetchone()
        tags = " ".join(json.loads(r["tags"]))
        self.db.execute("DELETE FROM files_fts WHERE rowid=?", (seq,))
        self.db.execute(
            "INSERT INTO files_fts (rowid, title, filename, description, visible_text, tags) "
            "VALUES (?,?,?,?,?,?)",
            (seq, r["title"], r["original_filename"], r["description"] if full else None,
             r["visible_text"] if full else None, tags))
        self.db.execute("UPDATE files SET indexed=? WHERE seq=?", (int(full), seq))

    def complete_due(self, tenant: Tenant) -> None:
        """Finish 'processing' of files whose ready time has come (index their text)."""
        due = self.db.execute("SELECT seq FROM files WHERE tenant=? AND indexed=0 AND "
                              "ready_at<=? AND deleted_at IS NULL",
                              (tenant.id, iso(now_dt()))).fetchall()
        for row in due:
            self._index(row["seq"], full=True)

    def file(self, tenant: Tenant, file_id: str, *, prefix: bool = False) -> sqlite3.Row | None:
        row = self.db.execute("SELECT * FROM files WHERE tenant=? AND id=? AND deleted_at IS "
                              "NULL", (tenant.id, file_id)).fetchone()
        if row is None and prefix and len(file_id) == 8:
            rows = self.db.execute("SELECT * FROM files WHERE tenant=? AND id LIKE ? AND "
                                   "deleted_at IS NULL LIMIT 2",
                                   (tenant.id, file_id + "%")).fetchall()
            row = rows[0] if len(rows) == 1 else None
        return row

    def update_file(self, tenant: Tenant, file_id: str, **fields: Any) -> None:
        sets = ", ".join(f"{k}=?" for k in fields)
        self.db.execute(f"UPDATE files SET {sets}, updated_at=? WHERE tenant=? AND id=?",
                        (*fields.values(), iso(now_dt()), tenant.id, file_id))
        row = self.db.execute("SELECT seq, indexed FROM files WHERE id=?", (file_id,)).fetchone()
        self._index(row["seq"], full=bool(row["indexed"]))

    def delete_file(self, tenant: Tenant, file_id: str) -> str | None:
        row = self.file(tenant, file_id)
        if row is None:
            return None
        ts = iso(now_dt())
        self.db.execute("UPDATE files SET deleted_at=? WHERE seq=?", (ts, row["seq"]))
        self.db.execute("DELETE FROM files_fts WHERE rowid=?", (row["seq"],))
        return ts

    def move_files(self, tenant: Tenant, ids: list[str], folder_id: str | None) -> int:
        marks = ",".join("?" * len(ids))
        return self.db.execute(
            f"UPDATE files SET folder_id=? WHERE tenant=? AND deleted_at IS NULL "
            f"AND id IN ({marks})", (folder_id, tenant.id, *ids)).rowcount

    def hashes_present(self, tenant: Tenant, hashes: list[str]) -> set[str]:
        marks = ",".join("?" * len(hashes))
        return {r[0] for r in self.db.execute(
            f"SELECT DISTINCT sha256 FROM files WHERE tenant=? AND deleted_at IS NULL "
            f"AND sha256 IN ({marks})", (tenant.id, *hashes))}

    def file_by_hash(self, tenant: Tenant, sha: str) -> sqlite3.Row | None:
        return self.db.execute("SELECT * FROM files WHERE tenant=? AND sha256=? AND deleted_at "
                               "IS NULL ORDER BY seq LIMIT 1", (tenant.id, sha)).fetchone()

    def bulk_insert(self, tenant: Tenant, files: int, folders: int, blob: str,
                    size: int) -> None:
        """Many synthetic files at once (benchmarks): rows only, sharing one blob."""
        import random

        rng = random.Random(files * 7919 + folders)
        folder_ids = [self.create_folder(tenant, f"Bulk {i:04d}", None) for i in range(folders)]
        base = now_dt() - timedelta(days=365)
        rows = []
        for i in range(files):
            ts = iso(base + timedelta(seconds=i))
            rows.append((str(uuid.UUID(int=rng.getrandbits(128), version=4)), tenant.id,
                         rng.choice(folder_ids) if folder_ids and rng.random() < 0.9 else None,
                         f"Bulk photo {i}", f"bulk_{i:06d}.jpg", "image", "jpeg",
                         "image/jpeg", size, blob, blob, 64, 48, "A generated bulk photo.",
                         json.dumps(["bulk", f"t{i % 10}"]), ts, ts, ts, ts))
        with self.db:
            self.db.execute("BEGIN")
            cur = self.db.executemany(
                "INSERT INTO files (id, tenant, folder_id, title, original_filename, media_type,"
                " format, content_type, size_bytes, sha256, blob, width, height, description,"
                " tags, created_at, updated_at, ready_at, content_created_at, indexed) VALUES "
                "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,1)", rows)
            del cur
            self.db.execute(
                "INSERT INTO files_fts (rowid, title, filename, description, tags) SELECT seq, "
                "title, original_filename, description, tags FROM files WHERE tenant=? AND "
                "original_filename LIKE 'bulk_%'", (tenant.id,))

    # -- sessions ----------------------------------------------------------

    def save_session(self, tenant: Tenant, results: dict[str, Any]) -> str:
        sid = str(uuid.uuid4())
        self.db.execute("INSERT INTO upload_sessions VALUES (?,?,?,?)",
                        (sid, tenant.id, iso(now_dt()), json.dumps(results)))
        return sid

    def session(self, tenant: Tenant, sid: str) -> dict[str, Any] | None:
        row = self.db.execute("SELECT results FROM upload_sessions WHERE tenant=? AND id=?",
                              (tenant.id, sid)).fetchone()
        return json.loads(row[0]) if row else None
