"""`aionfs sync` and `aionfs ls`: the store and the sync engine from the shell.

Progress is a rich progress bar on a terminal and plain periodic lines
otherwise (journals, CI logs). Errors a user can act on are one line.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import trio

from .api import AionClient, ApiSettings
from .api.errors import ApiError, AuthError
from .store import Store
from .store.schema import SchemaError
from .sync import InconsistentAnswers, MassDeleteRefused, Syncer, SyncOptions


class _Progress:
    """Counts files and folders; draws them on a TTY, prints a line a few seconds otherwise."""

    def __init__(self, client: AionClient) -> None:
        self.client = client
        self.files = 0
        self.folders = 0
        self.folders_total = 0
        self.started = time.monotonic()
        self._last_line = 0.0
        self._rich = None
        if sys.stderr.isatty():
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            self._rich = Progress(TextColumn("{task.description}"), BarColumn(),
                                  TextColumn("{task.fields[stats]}"), TimeElapsedColumn(),
                                  transient=True)
            self._task = self._rich.add_task("syncing", total=None, stats="")
            self._rich.start()

    def __call__(self, what: str, n: int) -> None:
        if what == "files":
            self.files += n
        elif what == "folders":
            self.folders += n
        elif what == "folders_total":
            self.folders_total = n
        elapsed = max(time.monotonic() - self.started, 1e-6)
        stats = (f"{self.folders}/{self.folders_total} folders, {self.files:,} files "
                 f"({self.files / elapsed:,.0f}/s), {self.client.stats.requests} requests")
        if self._rich is not None:
            self._rich.update(self._task, total=self.folders_total or None,
                              completed=self.folders, stats=stats)
        elif time.monotonic() - self._last_line > 2:
            self._last_line = time.monotonic()
            print(f"sync: {stats}", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self._rich is not None:
            self._rich.stop()


def run_sync(settings: ApiSettings, store_path: Path, *, full: bool,
             allow_mass_delete: bool, unlimited: bool = False) -> int:
    async def go() -> int:
        try:
            store = Store(store_path)
        except SchemaError as exc:
            print(f"aionfs sync: {exc}", file=sys.stderr)
            return 2
        async with AionClient(settings, unlimited=unlimited) as client:
            syncer = Syncer(client, store, SyncOptions(allow_mass_delete=allow_mass_delete))
            progress = _Progress(client)
            syncer.progress = progress
            try:
                first = store.get_meta("crawl_pass") is None or store.get_meta("crawl_open")
                report = await (syncer.full_sync() if full or first else syncer.poll())
            except MassDeleteRefused as exc:
                print(f"aionfs sync: {exc}", file=sys.stderr)
                return 1
            except AuthError:
                print("aionfs sync: the API key was refused (check AIONVISION_API_KEY)",
                      file=sys.stderr)
                return 1
            except (InconsistentAnswers, ApiError) as exc:
                print(f"aionfs sync: {exc}", file=sys.stderr)
                return 1
            finally:
                progress.close()
                store.close()
        print(f"synced in {report.seconds:.1f}s with {report.requests} requests: "
              f"{report.added} added, {report.updated} updated, {report.moved} moved, "
              f"{report.deleted} deleted, {report.folders_changed} folders changed, "
              f"{report.folders_deleted} folders deleted"
              + (f", {report.incomplete} listings incomplete" if report.incomplete else ""))
        return 0

    return trio.run(go)


def run_ls(store_path: Path, path: str, *, long: bool) -> int:
    if not store_path.exists():
        print("aionfs ls: nothing synced yet: run 'aionfs sync' first", file=sys.stderr)
        return 1
    store = Store(store_path)
    try:
        entry = store.resolve(path)
        if entry is None:
            print(f"aionfs ls: {path}: no such file or folder", file=sys.stderr)
            return 1
        rows = store.list_dir_with_files(entry.inode) if entry.is_dir else [
            (entry, store.file_by_inode(entry.inode))]
        for ent, row in rows:
            if not long:
                print(ent.name + ("/" if ent.is_dir else ""))
            elif row is None:
                print(f"{'dir':<9} {'-':>12}  {'':<10}  {ent.name}/")
            else:
                tags = ",".join(json.loads(row["tags"]))
                print(f"{row['media_type'] or 'file':<9} {row['size']:>12,}  "
                      f"{(row['content_created_at'] or row['created_at'])[:10]:<10}  {ent.name}"
                      + (f"  [{tags}]" if tags else ""))
    finally:
        store.close()
    return 0
