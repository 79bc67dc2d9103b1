"""Per-key request limits of the emulator: a one-minute sliding window.

The service counts requests per API key per minute (FREE 10, STARTER 30,
PROFESSIONAL 100, ENTERPRISE 500). A request over the limit gets 429 with
`Retry-After`: the whole seconds until the oldest request in the window
leaves it.
"""

from __future__ import annotations

import math
import time
from collections import deque

WINDOW = 60.0


class WindowLimiter:
    def __init__(self) -> None:
        self._windows: dict[str, deque[float]] = {}

    def check(self, key: str, per_minute: int | None, now: float | None = None) -> float | None:
        """Count one request; None if allowed, else seconds to wait."""
        if per_minute is None:
            return None
        now = time.monotonic() if now is None else now
        win = self._windows.setdefault(key, deque())
        while win and win[0] <= now - WINDOW:
            win.popleft()
        if len(win) >= per_minute:
            return max(1.0, math.ceil(win[0] + WINDOW - now))
        win.append(now)
        return None

    def used(self, key: str) -> int:
        return len(self._windows.get(key, ()))
