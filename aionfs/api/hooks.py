"""httpx event hooks that see each API exchange whole: the answer read, its time taken.

What `mount --trace` records (trace.py) and what `doctor --api` checks
(conformance.py) both start here."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from typing import Any

import httpx


class ExchangeHooks(ABC):
    """The timing and reading every such hook needs; what to do with an exchange is
    the subclass's `exchange`."""

    def __init__(self) -> None:
        self._started: dict[int, float] = {}

    def hooks(self) -> dict[str, list[Any]]:
        """For AionClient(event_hooks=…)."""
        return {"request": [self._on_request], "response": [self._on_response]}

    @abstractmethod
    def exchange(self, response: httpx.Response, ms: float | None) -> None:
        """One answer, read, with the milliseconds since its request was sent."""

    async def _on_request(self, request: httpx.Request) -> None:
        self._started[id(request)] = time.perf_counter()

    async def _on_response(self, response: httpx.Response) -> None:
        started = self._started.pop(id(response.request), None)
        await response.aread()
        self.exchange(response, None if started is None
                      else 1000 * (time.perf_counter() - started))
