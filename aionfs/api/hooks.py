"""httpx event hooks that see each API exchange whole: the answer read, its time taken.

What `mount --trace` records (trace.py) and what `doctor --api` checks
(conformance.py) both start here."""

from __future__ import annotations

import time
from typing import Any

import httpx


class ExchangeHooks:
    def __init__(self) -> None:
        self._started: dict[int, float] = {}

    def hooks(self) -> dict[str, list[Any]]:
        """For AionClient(event_hooks=…)."""
        return {"request": [self._on_request], "response": [self._on_response]}

    def exchange(self, response: httpx.Response, ms: float | None) -> None:
        """One answer, read, with the milliseconds since its request was sent."""
        raise NotImplementedError

    async def _on_request(self, request: httpx.Request) -> None:
        self._started[id(request)] = time.perf_counter()

    async def _on_response(self, response: httpx.Response) -> None:
        started = self._started.pop(id(response.request), None)
        await response.aread()
        self.exchange(response, None if started is None
                      else 1000 * (time.perf_counter() - started))
