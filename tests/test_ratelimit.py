"""The shared request budget: sliding window, priorities, reserve, learning from 429s.

Model tests run on trio's MockClock (autojump): minutes pass instantly and
exactly. The last tests use a real FREE-plan workspace on the emulator.
"""

from __future__ import annotations

import pytest
import trio
import trio.testing

from aionfs.api import Priority, RateLimiter
from aionfs.api.errors import RateLimited
from aionfs.api.ratelimit import SKEW, SPAN
from tests.conftest import EmulatorProcess, make_client

P = Priority


@pytest.fixture
def autojump_clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0)


async def grant_times(limiter: RateLimiter, n: int, priority: Priority) -> list[float]:
    times = []
    for _ in range(n):
        await limiter.acquire(priority)
        times.append(trio.current_time())
    return times


async def test_window_allows_rate_then_waits(autojump_clock: trio.testing.MockClock) -> None:
    limiter = RateLimiter(10)
    start = trio.current_time()
    times = [t - start for t in await grant_times(limiter, 25, P.INTERACTIVE)]
    assert times[:10] == [0.0] * 10
    # each slot comes back a window (and SKEW: the service's clock sees requests
    # arrive a little after they are granted) after it was taken
    assert all(SPAN - 0.1 < t <= SPAN + 0.1 for t in times[10:20])
    assert all(2 * SPAN - 0.1 < t <= 2 * SPAN + 0.1 for t in times[20:])
    # never more than 10 grants in any 60 s window, even stamped up to SKEW later
    for i in range(len(times)):
        assert sum(1 for t in times if times[i] <= t < times[i] + 60 + SKEW - 0.01) <= 10


async def test_background_leaves_room_for_users(autojump_clock: trio.testing.MockClock) -> None:
    limiter = RateLimiter(10)  # background may use 5 of 10, uploads 8
    start = trio.current_time()
    await grant_times(limiter, 5, P.BACKGROUND)
    done = []

    async def crawl() -> None:
        await limiter.acquire(P.BACKGROUND)
        done.append(("crawl", trio.current_time() - start))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(crawl)
        await trio.sleep(1)
        await limiter.acquire(P.INTERACTIVE)  # a user's ls goes at once
        done.append(("ls", trio.current_time() - start))
    assert done[0] == ("ls", 1.0)
    assert done[1][0] == "crawl" and done[1][1] >= 60
    stats = limiter.statistics()
    assert stats.used_in_window == 2 and stats.throttled_seconds >= 59  # ls + crawl


async def test_interactive_overtakes_queued_background(
        autojump_clock: trio.testing.MockClock) -> None:
    limiter = RateLimiter(2, shares={P.INTERACTIVE: 1.0, P.UPLOAD: 1.0, P.BACKGROUND: 1.0})
    await grant_times(limiter, 2, P.BACKGROUND)
    order: list[str] = []

    async def take(name: str, prio: Priority, delay: float) -> None:
        await trio.sleep(delay)
        await limiter.acquire(prio)
        order.append(name)

    async with trio.open_nursery() as nursery:
        for i in range(3):
            nursery.start_soon(take, f"bg{i}", P.BACKGROUND, 0.1 * i)
        nursery.start_soon(take, "upload", P.UPLOAD, 1)
        nursery.start_soon(take, "user", P.INTERACTIVE, 2)
    assert order[:2] == ["user", "upload"]
    assert order[2:] == ["bg0", "bg1", "bg2"]


async def test_cancelled_waiter_leaves_no_trace(autojump_clock: trio.testing.MockClock) -> None:
    limiter = RateLimiter(1)
    await limiter.acquire(P.INTERACTIVE)
    with trio.move_on_after(5):
        await limiter.acquire(P.INTERACTIVE)
    assert limiter.statistics().waiting["interactive"] == 0
    start = trio.current_time()
    await limiter.acquire(P.BACKGROUND)  # not blocked behind the cancelled ticket
    assert trio.current_time() - start == pytest.approx(SPAN - 5, abs=0.1)


async def test_429_pauses_and_lowers_the_rate(autojump_clock: trio.testing.MockClock) -> None:
    limiter = RateLimiter(10)
    await grant_times(limiter, 4, P.INTERACTIVE)
    limiter.on_rate_limited(retry_after=30)  # the server allowed only 3 of our 4
    stats = limiter.statistics()
    assert stats.rate_per_minute == 3 and stats.rate_limited_responses == 1
    start = trio.current_time()
    await limiter.acquire(P.INTERACTIVE)
    assert trio.current_time() - start >= 30


async def test_unlimited_never_waits(autojump_clock: trio.testing.MockClock) -> None:
    limiter = RateLimiter(None)
    start = trio.current_time()
    await grant_times(limiter, 1000, P.BACKGROUND)
    assert trio.current_time() == start


async def test_free_plan_burst_waits_instead_of_storming_429s(
        emulator: EmulatorProcess) -> None:
    """A FREE workspace allows 10 requests a minute: the 11th waits, no 429 is seen."""
    key = emulator.new_tenant(plan="free", rpm=None)
    since = len(emulator.requests(key))
    async with make_client(emulator, key, plan="free", unlimited=False) as c:
        with trio.move_on_after(2) as scope:
            for _ in range(11):
                await c.folder_tree()
        assert scope.cancelled_caught  # the 11th request is waiting for the window
        assert c.stats.requests == 10 and c.stats.failures == 0
    statuses = [e["status"] for e in emulator.requests(key)[since:]]
    assert statuses == [200] * 10


async def test_server_429_is_honoured(emulator: EmulatorProcess) -> None:
    """A client that believes it has budget learns from the server's 429."""
    key = emulator.new_tenant(plan="free", rpm=3)
    async with make_client(emulator, key, plan="free", rpm=10, unlimited=False) as c:
        for _ in range(3):
            await c.folder_tree()
        with trio.move_on_after(3):
            with pytest.raises(RateLimited):
                c.retry = type(c.retry)(max_attempts=1)
                await c.folder_tree()
        stats = c.limiter.statistics()
        assert stats.rate_limited_responses == 1 and stats.rate_per_minute == 3
