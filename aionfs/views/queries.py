"""Query results for the virtual folders: fetched once, kept in the store with a TTL.

A query (a semantic search, a full-text search, a color search) costs one
request; its ranked results are stored (`query_views`, `query_results`)
and served from the store until they expire, so repeated listings within
the TTL cost nothing, also across remounts. Results the store does not
know yet (a file the lazy sync has not listed) are looked up by id in one
request and taken in as metadata.

Saved queries (`mkdir search/<text>`) are kept until forgotten and
refreshed in the background at background priority. When the API fails,
a query with earlier results serves those (logged once); one without
fails, and the folder reports the error.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any

import trio

from ..api import AionClient, Priority, answer_after
from ..api.errors import ApiError
from ..callbacks import Signal
from ..store import Store
from ..store.query_results import QueryResults
from ..sync import Syncer
from .colorspec import ColorQuery

log = logging.getLogger(__name__)

#: query kinds that can be saved (mkdir)
SAVABLE = ("search", "text")
#: results kept per query: the semantic search's and the color search's largest page
SEARCH_LIMIT = 500
COLOR_LIMIT = 200
TEXT_LIMIT = 500


class QueryFailed(Exception):
    """The query could not be answered and nothing earlier is cached."""


class QueryCache:
    def __init__(self, store: Store, client: AionClient, syncer: Syncer, *,
                 ttl: float = 600.0, wait: float = 10.0) -> None:
        self.syncer = syncer  # (results it has not seen yet are absorbed into the store)
        self.store = store
        self.kept = QueryResults(self.store)
        self.client = client
        self.ttl = ttl
        self.wait = wait
        self._locks: dict[tuple[str, str], trio.Lock] = {}
        self._logged: set[tuple[str, str]] = set()
        #: whenever stored results or saved queries change
        self.changed = Signal()

    # -- saved queries -------------------------------------------------------------

    def saved(self, kind: str) -> list[str]:
        return self.kept.saved(kind)

    def is_saved(self, kind: str, query: str) -> bool:
        return self.kept.is_saved(kind, query)

    def save(self, kind: str, query: str) -> bool:
        """Keep a query (listed under its folder, refreshed); False if it already was."""
        if self.is_saved(kind, query):
            return False
        self.kept.save(kind, query)
        self.changed()
        return True

    def forget(self, kind: str, query: str) -> bool:
        if not self.is_saved(kind, query):
            return False
        self.kept.forget(kind, query)
        self.changed()
        return True

    # -- results ---------------------------------------------------------------------

    def cached(self, kind: str, query: str) -> tuple[list[str], bool] | None:
        """(file ids best first, still fresh) from the store; None if never fetched."""
        found = self.kept.cached(kind, query)
        if found is None:
            return None
        ids, expires = found
        return ids, expires is not None and expires > time.time()

    async def results(self, kind: str, query: str, color: ColorQuery | None = None,
                      priority: Priority = Priority.INTERACTIVE) -> list[str]:
        """File ids best first: from the store while fresh, else from the API (bounded)."""
        cached = self.cached(kind, query)
        if cached is not None and cached[1]:
            return cached[0]
        async with self._locks.setdefault((kind, query), trio.Lock()):
            cached = self.cached(kind, query)  # a concurrent reader may have fetched it
            if cached is not None and cached[1]:
                return cached[0]
            try:
                with answer_after(self.wait):  # (queued for budget: not counted)
                    return await self._refresh(kind, query, color, priority)
            except (ApiError, trio.TooSlowError) as exc:
                what = "no answer in time" if isinstance(exc, trio.TooSlowError) else str(exc)
                if cached is None:
                    raise QueryFailed(f"{kind} {query!r}: {what}") from exc
                if (kind, query) not in self._logged:
                    self._logged.add((kind, query))
                    log.warning("%s %r failed (%s): serving the results from %s", kind, query,
                                what, time.strftime("%Y-%m-%d %H:%M", time.localtime(
                                    self._refreshed_at(kind, query))))
                return cached[0]

    def _refreshed_at(self, kind: str, query: str) -> float:
        return self.kept.refreshed_at(kind, query)

    async def _refresh(self, kind: str, query: str, color: ColorQuery | None,
                       priority: Priority) -> list[str]:
        fetch: dict[str, Callable[[], Awaitable[list[tuple[str, float | None]]]]] = {
            "search": lambda: self._search(query, priority),
            "text": lambda: self._text(query, priority),
            "colors": lambda: self._colors(color, priority),
        }
        ranked = await fetch[kind]()
        known = await self._ensure_known([fid for fid, _ in ranked], priority)
        ranked = [(fid, score) for fid, score in ranked if fid in known]
        self.kept.replace(kind, query, ranked, self.ttl)
        self._logged.discard((kind, query))
        self.changed()
        return [fid for fid, _ in ranked]

    async def _search(self, query: str, priority: Priority) -> list[tuple[str, float | None]]:
        res = await self.client.search_images(query, limit=SEARCH_LIMIT, priority=priority)
        hits = sorted(res.results, key=lambda h: -h.score)
        return [(h.image_id, h.score) for h in hits]

    async def _text(self, query: str, priority: Priority) -> list[tuple[str, float | None]]:
        items: list[Any] = []
        async for item in self.client.iter_files(search=query, priority=priority,
                                                 page_size=100):
            items.append(item)
            if len(items) >= TEXT_LIMIT:
                break
        self.syncer.absorb(items)
        return [(item.id, None) for item in items]

    async def _colors(self, color: ColorQuery | None, priority: Priority
                      ) -> list[tuple[str, float | None]]:
        if color is None:
            raise ValueError("a color query needs its ColorQuery")
        args = {k: v for k, v in color.api_args().items() if v is not None}
        page = await self.client.color_search(**args, limit=COLOR_LIMIT, priority=priority)
        return [(m.image_id, m.match_score) for m in page.results]

    async def _ensure_known(self, ids: list[str], priority: Priority) -> set[str]:
        """The ids the store knows, after looking up the missing ones by id."""
        known = self._known(ids)
        missing = [fid for fid in ids if fid not in known]
        for start in range(0, len(missing), 500):
            items = [item async for item in self.client.iter_files(
                ids=missing[start:start + 500], priority=priority, page_size=100)]
            known |= self.syncer.absorb(items)
        return known

    def _known(self, ids: list[str]) -> set[str]:
        return self.store.known_files(ids)

    # -- background ------------------------------------------------------------------

    async def keep_saved_fresh(self, interval: float = 60.0) -> None:
        """Refresh saved queries whose results expired, one at a time."""
        while True:
            now = time.time()
            due = self.kept.saved_due(now)
            for kind, query in due:
                try:
                    async with self._locks.setdefault((kind, query), trio.Lock()):
                        await self._refresh(kind, query, None, Priority.BACKGROUND)
                except ApiError as exc:
                    log.info("refreshing the saved %s %r failed: %s", kind, query, exc)
                    break  # the API is unwell: try again next round
            await trio.sleep(min(interval, self.ttl) if math.isfinite(self.ttl) else interval)
