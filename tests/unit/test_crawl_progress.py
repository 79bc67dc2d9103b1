"""What a long first crawl tells: requests left (a page per 100 files of each folder
not listed, and the all-files listing), the time the plan needs for them, whether a
fresh mount's root should wait for it, and a log line every 5 % of the folders."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from aionfs.api.ratelimit import RateLimiter
from aionfs.store import Store
from aionfs.sync import Syncer
from tests.unit.fakes import FakeClient, folder_item


def _syncer(tmp_path: Path, folders: int, files_each: int, rate: int | None) -> Syncer:
    store = Store(tmp_path / "metadata.sqlite3")
    with store.transaction():
        items = [folder_item(f"f{i:03d}", f"Folder {i}") for i in range(folders)]
        for item in items:
            item["file_count"] = files_each
        store.upsert_folders(items)
        store.set_meta("crawl_open", str(store.crawl_pass() + 1))
    client = FakeClient()
    client.limiter = RateLimiter(rate)
    syncer = Syncer(client, store)  # type: ignore[arg-type]
    syncer.crawl_progress = (0, folders)
    return syncer


async def test_requests_left_and_time_on_the_plan(tmp_path: Path) -> None:
    syncer = _syncer(tmp_path, folders=40, files_each=250, rate=10)
    # 40 folders of 3 pages, and the all-files listing of 10,000 files: 100 pages
    assert syncer.crawl_requests_left() == 40 * 3 + 100
    status = syncer.crawl_status()
    assert status is not None and status["requests_left"] == 220
    assert status["eta_seconds"] == pytest.approx((220 - 10) * 6, abs=1)  # FREE: 10 a minute
    assert not syncer.crawl_fits(10.0)  # the root is served at once, said partial
    with syncer.store.transaction():
        syncer.store.mark_crawled(int(syncer.store.get_meta("crawl_open") or 0), "f000")
    assert syncer.crawl_requests_left() == 39 * 3 + 100


async def test_a_small_crawl_without_a_client_limit_is_waited_for(tmp_path: Path) -> None:
    syncer = _syncer(tmp_path, folders=5, files_each=10, rate=None)
    assert syncer.crawl_requests_left() == 6
    assert syncer.crawl_status()["eta_seconds"] is None  # type: ignore[index]
    assert syncer.crawl_fits(10.0)


async def test_a_long_crawl_logs_every_five_percent(tmp_path: Path,
                                              caplog: pytest.LogCaptureFixture) -> None:
    syncer = _syncer(tmp_path, folders=40, files_each=250, rate=10)
    with caplog.at_level(logging.INFO, logger="aionfs.sync.engine"):
        for _ in range(40):
            syncer._crawl_step(0.0)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("crawl:")]
    assert len(lines) == 20
    assert lines[0].startswith("crawl: 2 of 40 folders listed (5%)") and "requests left" in lines[0]
    assert "min on this plan" in lines[0]
