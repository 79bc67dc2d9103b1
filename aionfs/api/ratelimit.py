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

A user's operation never fails for want of budget while the API answers:
its deadline (`answer_after`, `answer_within`) counts only the time the API
takes to answer, not the time spent queued here for the plan's budget. On
the FREE plan an `ls` or a `cat` waits for its turn, it does not get EIO.

Time comes from `trio.current_time()`, so tests drive it with MockClock.
"""

from __future__ import annotations

import enum
import heapq
import itertools
import logging
import math
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

import trio

log = logging.getLogger(__name__)

WINDOW = 60.0
#: a grant holds its slot this much longer than the window: the service stamps a
#: request when it arrives, after the limiter granted it (a connection to open, the
#: wire), so a slot freed exactly WINDOW after the grant is a 429 at every window's
#: edge when requests go in bursts. One second costs under 2 % of the budget.
SKEW = 1.0
SPAN = WINDOW + SKEW
#: a wait for budget this long is worth telling the user about (once per episode)
LONG_WAIT = 2.0

#: the deadline of the user operation this task serves: (its scope, its seconds)
_ANSWER: ContextVar[tuple[trio.CancelScope, float] | None] = ContextVar(
    "aionfs_answer_deadline", default=None)


@contextmanager
def answer_within(seconds: float) -> Iterator[trio.CancelScope]:
    """Like `trio.move_on_after`, but time spent waiting for the plan's request
    budget does not count: the deadline is held while a request of this task waits
    in the limiter, and starts again from `seconds` when it is granted."""
    with trio.CancelScope(deadline=trio.current_time() + seconds) as scope:
        token = _ANSWER.set((scope, seconds))
        try:
            yield scope
        finally:
            _ANSWER.reset(token)


@contextmanager
def answer_after(seconds: float) -> Iterator[trio.CancelScope]:
    """Like `trio.fail_after` (TooSlowError), with `answer_within`'s deadline."""
    with answer_within(seconds) as scope:
        yield scope
    if scope.cancelled_caught:
        raise trio.TooSlowError


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
        self._told = False  # a long wait was logged (until the queue empties)

    # -- public ------------------------------------------------------------

    async def acquire(self, priority: Priority = Priority.BACKGROUND) -> None:
        """Wait for a slot in the window; cancellation leaves no trace."""
        if self._rate is None:
            await trio.lowlevel.checkpoint()
            return
        ticket = (int(priority), next(self._seq))
        heapq.heappush(self._waiters, ticket)
        started = trio.current_time()
        answer = _ANSWER.get()
        held = False
        try:
            while True:
                now = trio.current_time()
                wait = self._wait_for(ticket, now)
                if wait == 0.0:
                    heapq.heappop(self._waiters)
                    self._grants.append(now)
                    self._notify()
                    break
                if answer is not None and not held:  # the user's deadline waits too
                    answer[0].deadline, held = math.inf, True
                if (not self._told and priority == Priority.INTERACTIVE
                        and now - started >= LONG_WAIT):
                    self._told = True
                    log.info("operations on the mount wait for the plan's request budget "
                             "(%s requests a minute): they go on when it allows", self._rate)
                changed = self._changed
                with trio.move_on_after(min(wait, LONG_WAIT)):
                    await changed.wait()
        except BaseException:
            self._waiters.remove(ticket)
            heapq.heapify(self._waiters)
            self._notify()
            raise
        finally:
            if held and answer is not None:
                answer[0].deadline = trio.current_time() + answer[1]
        if not self._waiters:
            self._told = False
        self._throttled += trio.current_time() - started

    def waiting(self, priority: Priority = Priority.INTERACTIVE) -> bool:
        """Requests of this priority (or a better one) wait for budget now."""
        return (trio.current_time() < self._paused_until and bool(self._waiters)) or any(
            prio <= priority for prio, _ in self._waiters)

    @property
    def configured(self) -> int | None:
        """The rate set (None: unlimited)."""
        return self._configured

    def set_rate(self, requests_per_minute: int) -> None:
        """A new budget (the plan learnt from the service)."""
        self._configured = self._rate = requests_per_minute
        self._notify()

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
        while self._grants and self._grants[0] <= now - SPAN:
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
        return max(self._grants[len(self._grants) - cap] + SPAN - now, 1e-3)
