"""What `aionfs status` shows (and systemd's STATUS= line): one report, two renderings.

The running daemon builds the report from its live parts; without a daemon
the store alone tells the upload queue. The report is plain JSON (it goes
over the control socket and out of `status --json`) and holds nothing
secret: the key is only ever shown masked.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..api import AionClient
from ..cache.content import ContentCache
from ..store import Store
from ..sync import Syncer
from ..upload import Journal

UPLOAD_STATES = ("local", "pending", "uploading", "failed")


def _iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")


def _queue(journal: Journal) -> tuple[dict[str, int], list[dict[str, Any]]]:
    files = [f for f in journal.all() if not (f.scratch and f.state == "local")]
    queue = [{"name": f.name, "folder": f.folder_key or None, "state": f.state,
              "size": f.size, "error": f.last_error, "attempts": f.attempts} for f in files]
    counts = {state: sum(1 for q in queue if q["state"] == state) for state in UPLOAD_STATES}
    return counts, queue


@dataclass
class Sources:
    """The daemon's parts a report is read from."""

    mountpoint: Path
    profile: str
    read_only: bool
    client: AionClient
    syncer: Syncer
    journal: Journal
    cache: ContentCache
    started: float = field(default_factory=time.time)
    watches: Callable[[], list[dict[str, Any]]] = lambda: []
    thumbs: Any = None  # thumbs.Thumbnails, when seeding
    inodes: Callable[[], dict[str, int]] = lambda: {}  # what the filesystem keeps per inode
    #: kernel requests answered since the mount, by operation
    requests: Callable[[], dict[str, int]] = lambda: {}


def live_status(src: Sources) -> dict[str, Any]:
    import os

    stats = src.client.stats
    limiter = src.client.limiter.statistics()
    counts, queue = _queue(src.journal)
    store = src.syncer.store
    library = store.counts()
    pinned = src.cache.index.pinned_count()
    return {
        "mount": {"state": "mounted", "mountpoint": str(src.mountpoint), "pid": os.getpid(),
                  "profile": src.profile, "read_only": src.read_only,
                  "since": _iso(src.started)},
        "api": {"base_url": src.client.settings.base_url,
                "key": src.client.settings.api_key.masked(),
                "reachable": stats.reachable, "last_success": _iso(stats.last_success),
                "last_error": stats.last_error if stats.reachable is False else None,
                "requests": stats.requests, "retries": stats.retries},
        "sync": {"last_sync": _iso(src.syncer.last_sync), "last_error": src.syncer.last_error,
                 "folders": library["folders"], "files": library["files"],
                 # files at the root are known once a first crawl has ended
                 "root": "complete" if src.syncer.crawl_finished.is_set() else "partial",
                 "crawl": src.syncer.crawl_status()},
        "uploads": counts,
        "queue": queue,
        "inodes": src.inodes(),
        "kernel_requests": src.requests(),
        "cache": {"used": src.cache.used(), "capacity": src.cache.capacity,
                  "pinned_files": int(pinned), **src.cache.sources()},
        # empty files made ahead (filepool.py): a burst that outruns them makes its own
        "files_made_ahead": {"staging": src.journal.pool.statistics(),
                             "cache": src.cache.pool.statistics()},
        "plan": {"name": src.client.settings.plan, "from": src.client.plan_source},
        "rate_limit": {"per_minute": limiter.rate_per_minute or None,
                       "used_last_minute": limiter.used_in_window,
                       "left": (max(0, limiter.rate_per_minute - limiter.used_in_window)
                                if limiter.rate_per_minute else None),
                       "waiting": limiter.waiting,
                       "rate_limited_responses": limiter.rate_limited_responses},
        "watches": src.watches(),
        "thumbnails": asdict(src.thumbs.stats) if src.thumbs is not None else None,
    }


def offline_status(store_path: Path, pid: int | None = None) -> dict[str, Any]:
    store = Store(store_path)
    try:
        counts, queue = _queue(Journal(store, store_path.parent / "staging"))
        library = store.counts()
    finally:
        store.close()
    return {"mount": {"state": "running, not answering" if pid else "not running",
                      "pid": pid},
            "sync": {"folders": library["folders"], "files": library["files"]},
            "uploads": counts, "queue": queue}


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    raise AssertionError


def summary_line(report: dict[str, Any]) -> str:
    """One line for systemd's STATUS=: what a glance at `systemctl status` needs."""
    up = report["uploads"]
    waiting = up.get("pending", 0) + up.get("uploading", 0)
    api = report.get("api", {})
    parts = [f"{report['sync']['files']} files",
             f"{waiting} uploads queued" if waiting else "uploads done"]
    if up.get("failed"):
        parts.append(f"{up['failed']} failed")
    parts.append("API offline" if api.get("reachable") is False else "API ok")
    return f"mounted {report['mount'].get('mountpoint', '')}: " + ", ".join(parts)


def format_status(report: dict[str, Any]) -> str:
    m = report["mount"]
    lines = [f"mount:      {m['state']}" + (f" at {m['mountpoint']}" if m.get("mountpoint")
                                            else "") + (f" (pid {m['pid']})" if m.get("pid")
                                                        else "")]
    if "api" in report:
        api = report["api"]
        state = {True: "reachable", False: "unreachable", None: "not asked yet"}[
            api["reachable"]]
        lines.append(f"api:        {state} ({api['base_url']}, key {api['key']})"
                     + (f": {api['last_error']}" if api.get("last_error") else ""))
    sync = report["sync"]
    line = f"library:    {sync['folders']} folders, {sync['files']} files"
    if "last_sync" in sync:
        line += f"; last sync {sync['last_sync'] or 'not yet'}"
        if sync.get("last_error"):
            line += f" (failing: {sync['last_error']})"
    if sync.get("root") == "partial":
        crawl = sync.get("crawl") or {}
        line += "; first crawl running"
        if crawl:
            eta = crawl.get("eta_seconds")
            line += (f" ({crawl['folders_listed']} of {crawl['folders']} folders listed, "
                     f"{crawl['files_known']} files known, about {crawl['requests_left']} "
                     "requests left" + ("" if eta is None else f", {_duration(eta)} on this "
                                         "plan") + ")")
        line += ": files at the root are not all shown yet"
    lines.append(line)
    if "cache" in report:
        c = report["cache"]
        lines.append(f"cache:      {_size(c['used'])} of {_size(c['capacity'])}, "
                     f"{c['pinned_files']} files pinned; reads: {c['download_requests']} "
                     f"download requests, {c['listed_urls'] + c['kept_urls']} URLs reused")
    if "rate_limit" in report:
        r = report["rate_limit"]
        waiting = sum(r["waiting"].values())
        lines.append("rate limit: " + ("none" if r["per_minute"] is None else
                                       f"{r['left']} of {r['per_minute']} requests left this "
                                       "minute" + (f", {waiting} waiting for budget"
                                                   if waiting else "")))
    plan = report.get("plan")
    if plan is not None:
        lines.append(f"plan:       {plan['name']} (from {plan['from']})")
    lines.append("uploads:    " + ", ".join(f"{n} {s}" for s, n in report["uploads"].items()))
    for q in report["queue"]:
        reason = f"  ({q['error']})" if q["state"] == "failed" and q["error"] else ""
        lines.append(f"  {q['state']:<9} {q['name']}{reason}")
    t = report.get("thumbnails")
    if t is not None:
        lines.append(f"thumbnails: {t['seeded']} written, {t['current']} images current, "
                     f"{t['variant_requests']} variant requests, {t['listed_urls']} through "
                     "listed URLs")
    for w in report.get("watches", []):
        lines.append(f"watching:   {w['dir']} → /{w['to']} ({w['uploaded']} uploaded, "
                     f"{w['waiting']} waiting)")
    return "\n".join(lines)


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
