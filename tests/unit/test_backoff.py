"""The one backoff of every loop that waits after failures."""

from __future__ import annotations

from aionfs.api.retry import Backoff


def test_pauses_double_up_to_the_cap_and_start_over_after_a_success() -> None:
    b = Backoff(1.0, 5.0, jitter=False)
    assert [b.next() for _ in range(5)] == [1.0, 2.0, 4.0, 5.0, 5.0]
    b.reset()
    assert b.next() == 1.0
    b.reset(first=3.0)  # (the sync loop's first pause follows the poll interval)
    assert [b.next(), b.next()] == [3.0, 5.0]


def test_jitter_keeps_each_pause_between_half_and_the_whole() -> None:
    b = Backoff(8.0, 8.0)
    pauses = [b.next() for _ in range(200)]
    assert all(4.0 <= p <= 8.0 for p in pauses) and len(set(pauses)) > 100
