"""The metadata store's schema: every table and column, versioned.

`MIGRATIONS[n]` takes a store from version n to n + 1; a new store runs them
all. The version lives in `PRAGMA user_version`. A store written by a newer
aionfs is refused rather than guessed at. Times are ISO-8601 UTC strings as
the API sends them, except `*_mono`/`*_at_epoch` columns (seconds since the
epoch, for scheduling).
"""

from __future__ import annotations

import sqlite3

ROOT_INODE = 1

_V1 = """
-- Stable inode numbers: one per remote object (and per virtual directory),
-- never reused, kept across remounts so that inodes stay the same.
CREATE TABLE inodes (
    inode INTEGER PRIMARY KEY AUTOINCREMENT,
    kind  TEXT NOT NULL,              -- 'root' | 'folder' | 'file' | 'virtual'
    ref   TEXT NOT NULL,              -- remote id (folder/file) or a virtual path
    UNIQUE (kind, ref)
);

-- The workspace's folder tree (GET /folders).
CREATE TABLE folders (
    id          TEXT PRIMARY KEY,     -- remote folder id
    inode       INTEGER NOT NULL UNIQUE REFERENCES inodes(inode),
    name        TEXT NOT NULL,        -- the name as the API has it
    parent_id   TEXT,                 -- NULL: a root-level folder
    file_count  INTEGER NOT NULL DEFAULT 0, -- files directly inside, per the API
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
CREATE INDEX folders_by_parent ON folders(parent_id);

-- Files (images, documents, saved links) with everything the mount, the
-- xattrs and the virtual views need.
CREATE TABLE files (
    id                 TEXT PRIMARY KEY,   -- remote file id
    inode              INTEGER NOT NULL UNIQUE REFERENCES inodes(inode),
    placement          TEXT NOT NULL,      -- 'folder' (in folder_id), 'root', 'unknown'
    folder_id          TEXT,               -- set when placement = 'folder'
    title              TEXT,
    filename           TEXT,               -- original filename
    size               INTEGER NOT NULL,   -- bytes
    media_type         TEXT,               -- image | document | link | video
    format             TEXT,               -- jpeg, png, pdf, docx, ...
    content_type       TEXT,
    width              INTEGER,
    height             INTEGER,
    tags               TEXT NOT NULL DEFAULT '[]',  -- JSON list
    description        TEXT,
    visible_text       TEXT,
    description_status TEXT,
    variant_status     TEXT,
    page_count         INTEGER,
    source_url         TEXT,               -- links
    domain             TEXT,               -- links
    created_at         TEXT NOT NULL,      -- upload time
    content_created_at TEXT,               -- when the content was made (EXIF), if known
    updated_at         TEXT,               -- from file details, when fetched
    hash               TEXT,               -- SHA-256, from file details, when fetched
    listed_at_epoch    REAL NOT NULL       -- when an API listing last showed it
);
CREATE INDEX files_by_place ON files(placement, folder_id);

-- The names the mount shows: one row per directory entry. Lookups by
-- (parent, name) and whole-directory listings are single index scans.
CREATE TABLE entries (
    parent_inode INTEGER NOT NULL,
    name         TEXT NOT NULL,
    inode        INTEGER NOT NULL,
    is_dir       INTEGER NOT NULL,
    PRIMARY KEY (parent_inode, name)
) WITHOUT ROWID;
CREATE INDEX entries_by_inode ON entries(inode);

-- Per directory: when its files were last listed from the API, and whether
-- that listing was complete. folder_key '' is the all-files listing.
CREATE TABLE listings (
    folder_key      TEXT PRIMARY KEY,
    listed_at_epoch REAL NOT NULL,
    complete        INTEGER NOT NULL,
    total           INTEGER NOT NULL       -- files the API said it holds
);

-- Progress of a full crawl, so that a killed sync resumes where it stopped.
CREATE TABLE crawl (
    pass        INTEGER NOT NULL,          -- crawl number
    folder_key  TEXT NOT NULL,             -- a folder listed in this pass ('' = all files)
    PRIMARY KEY (pass, folder_key)
);

-- Virtual query folders (search/, text/, colors/): a query and its results.
CREATE TABLE query_views (
    kind          TEXT NOT NULL,           -- 'search' | 'text' | 'colors'
    query         TEXT NOT NULL,           -- the name looked up
    saved         INTEGER NOT NULL DEFAULT 0, -- mkdir'd: listed and kept
    refreshed_at_epoch REAL,               -- when results were last fetched
    expires_at_epoch   REAL,               -- results are stale after this
    PRIMARY KEY (kind, query)
);
CREATE TABLE query_results (
    kind     TEXT NOT NULL,
    query    TEXT NOT NULL,
    rank     INTEGER NOT NULL,             -- 1 = best
    file_id  TEXT NOT NULL,
    score    REAL,
    PRIMARY KEY (kind, query, rank)
);

-- The durable upload journal: what users wrote, until it is in the workspace.
CREATE TABLE upload_journal (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    inode           INTEGER NOT NULL,      -- the inode the file has and keeps
    state           TEXT NOT NULL,         -- local | pending | uploading | synced | failed
    step            TEXT NOT NULL,         -- next step: upload | move | title | delete_old | done
    staging_path    TEXT NOT NULL,         -- the bytes, until uploaded
    folder_id       TEXT,                  -- destination folder (NULL: root)
    name            TEXT NOT NULL,         -- the name the user gave
    size            INTEGER NOT NULL,
    sha256          TEXT,
    known_new       INTEGER,               -- hash absent from the workspace before upload
    remote_id       TEXT,                  -- the new file's id, once uploaded
    replaces_id     TEXT,                  -- an old file this one replaces (edits)
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT,
    created_at_epoch REAL NOT NULL,
    updated_at_epoch REAL NOT NULL
);
CREATE INDEX upload_by_state ON upload_journal(state);

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
INSERT INTO inodes (inode, kind, ref) VALUES (1, 'root', '');
"""

_V2 = """
-- The content cache (cache/content.py): which bytes of which file are on
-- disk, and whether they still belong to the file's current version.
CREATE TABLE content_cache (
    file_id     TEXT PRIMARY KEY,
    size        INTEGER NOT NULL,     -- size of the file when caching started
    validator   TEXT NOT NULL,        -- created/updated time and size the bytes belong to
    ranges      TEXT NOT NULL,        -- JSON [[start, end), ...] present on disk, merged
    cached      INTEGER NOT NULL,     -- bytes present
    pinned      INTEGER NOT NULL DEFAULT 0, -- kept offline: never evicted, fetched whole
    last_access REAL NOT NULL         -- for LRU eviction (epoch seconds)
);
CREATE INDEX content_lru ON content_cache(pinned, last_access);
-- Dominant colors of an image ("#HEX name 12.3%" lines), fetched when first asked for.
ALTER TABLE files ADD COLUMN colors TEXT;
"""

_V3 = """
-- Writing through the mount (upload/journal.py): what an upload carries over
-- from a file it replaces, and scratch files that never leave the machine.
ALTER TABLE upload_journal ADD COLUMN title TEXT;           -- title to set after upload
ALTER TABLE upload_journal ADD COLUMN tags TEXT;            -- JSON tags to set after upload
ALTER TABLE upload_journal ADD COLUMN scratch INTEGER NOT NULL DEFAULT 0; -- editor temp file
CREATE INDEX upload_by_place ON upload_journal(folder_id, name);
"""

_V4 = """
-- Watched folders (watch/folder.py): every local file seen in one, so that each
-- is uploaded once, across restarts. A row is written in the same transaction
-- as the upload's journal entry; the journal's own deletion says how it ended.
CREATE TABLE watched_files (
    watch_dir   TEXT NOT NULL,            -- the watched local folder (absolute path)
    relpath     TEXT NOT NULL,            -- the file below it
    size        INTEGER NOT NULL,         -- bytes, when it was taken
    mtime_ns    INTEGER NOT NULL,         -- modification time, when it was taken
    sha256      TEXT,                     -- of the bytes taken (NULL: skipped unread)
    journal_id  INTEGER,                  -- its upload's journal row, while queued
    state       TEXT NOT NULL,            -- queued | uploaded | removed | dropped | skipped
    remote_id   TEXT,                     -- the library file, once uploaded
    reason      TEXT,                     -- why skipped or dropped
    at_epoch    REAL NOT NULL,            -- when the state was last set
    PRIMARY KEY (watch_dir, relpath)
);
CREATE INDEX watched_by_journal ON watched_files(journal_id);
CREATE INDEX watched_by_hash ON watched_files(watch_dir, sha256);
-- An upload's journal row goes when the file is in the workspace (it has a
-- remote id then) or when the user deleted it from the mount before (none).
CREATE TRIGGER watched_upload_ended AFTER DELETE ON upload_journal
BEGIN
    UPDATE watched_files SET
        state = CASE WHEN OLD.remote_id IS NULL THEN 'dropped' ELSE 'uploaded' END,
        remote_id = OLD.remote_id,
        reason = CASE WHEN OLD.remote_id IS NULL THEN 'deleted from the mount before upload'
                 END,
        journal_id = NULL,
        at_epoch = (julianday('now') - 2440587.5) * 86400.0
    WHERE journal_id = OLD.id;
END;
"""

_V5 = """
-- Times set through the mount (writes, truncates, utimens, entries made or removed
-- in a directory), per inode: kept across upload, remount and eviction. An inode
-- without a row shows the times the API gives (a file's upload time).
CREATE TABLE inode_times (
    inode    INTEGER PRIMARY KEY,
    mtime_ns INTEGER NOT NULL,
    ctime_ns INTEGER NOT NULL
);
-- A journal entry unlinked or replaced while its upload was in flight: the copy
-- that lands is deleted at once and never shown (1), so a save never leaves two.
ALTER TABLE upload_journal ADD COLUMN discard INTEGER NOT NULL DEFAULT 0;
-- SHA-256s of earlier versions sent without a known outcome (the file was rewritten
-- while their upload was in flight, then the daemon died): a copy that landed is
-- found by its hash and deleted, so a rewrite never leaves one behind.
ALTER TABLE upload_journal ADD COLUMN uncertain_sha256 TEXT;
-- Names looked up across folders (a new file named like one shown: a new version
-- saved on another client; copies into tags/).
CREATE INDEX entries_by_name ON entries(name);
-- Presigned rendition URLs that list items carry (thumbnail ≈ small_256, medium ≈
-- medium_750), as of the listing that brought them: fetched through while fresh,
-- they cost no API request (thumbnails).
CREATE TABLE file_urls (
    file_id         TEXT PRIMARY KEY,
    thumbnail_url   TEXT,
    medium_url      TEXT,
    listed_at_epoch REAL NOT NULL
);
"""

_V6 = """
-- The URL a list item says is the original (UserFile.full_url of an image,
-- .document_url of a document): read from with no API request once an answer
-- proves it is (total size and type equal the file's; cache/content.py).
ALTER TABLE file_urls ADD COLUMN original_url TEXT;
-- Presigned download URLs got from `GET /user-files/{id}/download`, kept until
-- they expire: a re-read after eviction or a remount costs no API request.
CREATE TABLE download_urls (
    file_id       TEXT PRIMARY KEY,
    url           TEXT NOT NULL,
    expires_epoch REAL NOT NULL
);
"""

_V7 = """
-- Whether a journal entry's bytes and row are known to be on stable storage (the
-- group commit, or an fsync, made them so: upload/durability.py). 0: closed since,
-- durable against a crash of the daemon but not yet against a power loss; after a
-- reboot such an entry is set aside, never uploaded. (Entries of older versions
-- were fsync'd at their close: 1.)
ALTER TABLE upload_journal ADD COLUMN on_disk INTEGER NOT NULL DEFAULT 1;
"""

_V8 = """
-- The all-files listing that last showed the file (a number from meta
-- 'all_listing'): what that listing missed and which unplaced files it had
-- are then two queries, where a million ids would otherwise sit in memory.
ALTER TABLE files ADD COLUMN seen_all INTEGER;
"""

_V9 = """
-- No table changes: staging files are now named by their journal rows
-- (filepool.py makes them ahead, `staging/n<hex>`), no longer `<row id>`.
-- An aionfs from before would take them for strays and delete the bytes of
-- queued uploads; this version makes it refuse the store instead.
"""

#: MIGRATIONS[n] upgrades a store from version n to n + 1.
MIGRATIONS: list[str] = [_V1, _V2, _V3, _V4, _V5, _V6, _V7, _V8, _V9]
SCHEMA_VERSION = len(MIGRATIONS)


class SchemaError(RuntimeError):
    """The store cannot be used by this aionfs."""


def migrate(db: sqlite3.Connection) -> int:
    """Bring a store to SCHEMA_VERSION; returns the version it had."""
    (version,) = db.execute("PRAGMA user_version").fetchone()
    if version > SCHEMA_VERSION:
        raise SchemaError(
            f"this metadata store has schema version {version}, newer than this aionfs "
            f"understands ({SCHEMA_VERSION}); upgrade aionfs or use another --cache-dir")
    for n in range(version, SCHEMA_VERSION):
        db.execute("BEGIN")
        try:
            for statement in _statements(MIGRATIONS[n]):
                db.execute(statement)
            db.execute(f"PRAGMA user_version = {n + 1}")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
    return int(version)


def _statements(script: str) -> list[str]:
    """Split a script into statements (executescript would commit on its own)."""
    out, buf = [], ""
    for line in script.splitlines():
        stripped = line.split("--", 1)[0] if "--" in line else line
        buf += stripped + "\n"
        if sqlite3.complete_statement(buf):
            if buf.strip():
                out.append(buf.strip())
            buf = ""
    return out
