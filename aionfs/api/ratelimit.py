"""One request budget per API key, shared by every task, served by priority.

The service counts requests per key in a one-minute window; this limiter
mirrors that with a sliding window, so a burst beyond the plan waits here
instead of storming 429s. Three priorities share the window:

* INTERACTIVE — a user is waiting on a file operation (ls, open, search);
* UPLOAD      — write-back of what users saved;
* BACKGROUND  — crawl, polling, revalidation, thumbnails.

Waiters are served best priority first, and lower priorities may only fill a
share of the window (by default uploads 80 %, background 50 %), so there is
always budget left for the next `ls` even while a crawl runs flat out.

The rate is learnt from 429s: when the server refuses a request the limiter
believes was within budget, it lowers its rate to what was actually accepted
in the last minute and pauses for the server's Retry-After.

Time comes from `trio.current_time()`, so tests drive it with MockClock.
"""

from __future__ import annotations

import enum
import heapq
import itertools
import math
from collections import deque
from dataclasses import dataclass

import trio

WINDOW = 60.0


class Priority(enum.IntEnum):
    INTERACTIVE = 0
    UPLOAD = 1
    BACKGROUND = 2


DEFAULT_SHARES = {Priority.INTERACTIVE: 1.0, Priority.UPLOAD: 0.8, Priority.BACKGROUND: 0.5}


@dataclass
class LimiterStats:
    rate_per_minute: int
    configured_rate: int
    used_in_window: int
    waiting: dict[str, int]
    throttled_seconds: float
    rate_limited_responses: int


class RateLimiter:
    """Sliding-window request budget with priorities; see the module docstring."""

    def __init__(
        self,
        requests_per_minute: int | None,
        shares: dict[Priority, float] | None = None,
    ) -> None:
        #: None means unlimited (the emulator's benchmark mode).
        self._configured = requests_per_minute
        self._rate = requests_per_minute
        self._shares = dict(DEFAULT_SHARES if shares is None else shares)
        self._grants: deque[float] = deque()
        self._waiters: list[tuple[int, int]] = []
        self._seq = itertools.count()
        self._changed = trio.Event()
        self._paused_until = 0.0
        self._throttled = 0.0
        self._limited = 0

    # -- public ------------------------------------------------------------

    async def acquire(self, priority: Priority = Priority.BACKGROUND) -> None:
        """Wait for a slot in the window; cancellation leaves no trace."""
        if self._rate is None:
            await trio.lowlevel.checkpoint()
            return
        ticket = (int(priority), next(self._seq))
        heapq.heappush(self._waiters, ticket)
        started = trio.current_time()
        try:
            while True:
                now = trio.current_time()
                wait = self._wait_for(ticket, now)
                if wait == 0.0:
                    heapq.heappop(self._waiters)
                    self._grants.append(now)
                    self._notify()
                    break
                changed = self._changed
                with trio.move_on_after(wait):
                    await changed.wait()
        except BaseException:
            self._waiters.remove(ticket)
            heapq.heapify(self._waiters)
            self._notify()
            raise
        self._throttled += trio.current_time() - started

    def on_rate_limited(self, retry_after: float | None) -> None:
        """The server said 429: pause, and learn a lower rate if we were within ours."""
        self._limited += 1
        now = trio.current_time()
        pause = retry_after if retry_after is not None else 5.0
        self._paused_until = max(self._paused_until, now + pause)
        if self._rate is not None:
            self._prune(now)
            accepted = len(self._grants) - 1  # the refused request was counted
            if 0 < accepted < self._rate:
                self._rate = max(1, accepted)
        self._notify()

    def statistics(self) -> LimiterStats:
        now = trio.current_time()
        self._prune(now)
        waiting = {p.name.lower(): 0 for p in Priority}
        for prio, _ in self._waiters:
            waiting[Priority(prio).name.lower()] += 1
        return LimiterStats(
            rate_per_minute=self._rate or 0,
            configured_rate=self._configured or 0,
            used_in_window=len(self._grants),
            waiting=waiting,
            throttled_seconds=round(self._throttled, 3),
            rate_limited_responses=self._limited,
        )

    # -- internals ---------------------------------------------------------

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    def _prune(self, now: float) -> None:
        while self._grants and self._grants[0] <= now - WINDOW:
            self._grants.popleft()

    def _cap(self, priority: int) -> int:
        assert self._rate is not None
        share = self._shares.get(Priority(priority), 1.0)
        # Every priority gets at least one request a window.
        return max(1, math.floor(self._rate * share))

    def _wait_for(self, ticket: tuple[int, int], now: float) -> float:
        """0 if `ticket` may go now, else how long until that could change."""
        if self._waiters[0] != ticket:
            return math.inf  # woken when the head moves
        if now < self._paused_until:
            return self._paused_until - now
        self._prune(now)
        cap = self._cap(ticket[0])
        if len(self._grants) < cap:
            return 0.0
        # The window must shed (used - cap + 1) grants before this ticket fits.
        return max(self._grants[len(self._grants) - cap] + WINDOW - now, 1e-3)
