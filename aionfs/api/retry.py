"""The one retry policy of the client, and the one backoff of every loop that
waits after failures (`Backoff`: uploads, sync rounds, thumbnails, watches).

Only `TransientError`s are retried (network errors, timeouts, 5xx, 429), and
only for requests that are safe to send twice: the caller says so with
`idempotent`. A 429 is always safe to retry, because the service refused it
before doing anything. Waits grow exponentially with full jitter up to a
cap, and a server's Retry-After is honoured when it asks for longer. The log
level rises with the attempt number so a flaky link is visible without
flooding the journal.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import trio

from .errors import NetworkError, RateLimited, TransientError

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    base_delay: float = 0.25
    max_delay: float = 30.0

    def delay(self, attempt: int, error: Exception, rng: random.Random) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based)."""
        wait = _jittered(min(self.max_delay, self.base_delay * 2 ** (attempt - 1)), rng)
        if isinstance(error, RateLimited) and error.retry_after is not None:
            wait = max(wait, min(error.retry_after, self.max_delay * 4))
        return wait


def _jittered(backoff: float, rng: random.Random | None) -> float:
    """Full jitter's upper half: clients that failed together do not come back
    together, and none comes back sooner than half its backoff."""
    return (rng or random).uniform(backoff / 2, backoff)


class Backoff:
    """The pause after failures in a row: `first`, doubled by each further failure
    up to `cap`; a success (`reset`) starts over. Jittered unless told otherwise
    (a loop that is the only one of its kind, such as the sync rounds)."""

    def __init__(self, first: float, cap: float, *, jitter: bool = True) -> None:
        self.first, self.cap, self.jitter = first, cap, jitter
        self._next = first

    def next(self) -> float:
        wait, self._next = self._next, min(self._next * 2, self.cap)
        return _jittered(wait, None) if self.jitter else wait

    def reset(self, first: float | None = None) -> None:
        if first is not None:
            self.first = first
        self._next = self.first


def is_retryable(error: BaseException, idempotent: bool) -> bool:
    if isinstance(error, RateLimited):
        return True
    if not isinstance(error, TransientError):
        return False
    if idempotent:
        return True
    # A connection that never opened cannot have delivered the request.
    return isinstance(error, NetworkError) and error.not_sent


async def with_retries(
    what: str,
    attempt_fn: Callable[[], Awaitable[T]],
    *,
    idempotent: bool,
    policy: RetryPolicy,
    rng: random.Random | None = None,
) -> T:
    """Run `attempt_fn` until it succeeds, fails for good, or attempts run out."""
    rng = rng or random.Random()
    attempt = 1
    while True:
        try:
            return await attempt_fn()
        except TransientError as exc:
            if attempt >= policy.max_attempts or not is_retryable(exc, idempotent):
                raise
            wait = policy.delay(attempt, exc, rng)
            level = logging.DEBUG if attempt == 1 else (
                logging.INFO if attempt < policy.max_attempts - 1 else logging.WARNING)
            log.log(level, "%s failed (attempt %d/%d, retrying in %.2fs): %s",
                    what, attempt, policy.max_attempts, wait, exc)
            await trio.sleep(wait)
            attempt += 1
