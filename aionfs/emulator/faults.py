"""Fault injection, deterministic by seed: what the network and the service do wrong.

Spec (`--faults`, or per tenant through the admin API), comma-separated:

    latency:20ms     add this much latency to every request (ms or s)
    stall:3s         pause every answer's body halfway for this long (ms or s): a
                     slow storage host, or one that stalls mid-transfer
    500:0.1          answer 10 % of requests with a 5xx (500, 502 or 503)
    reset:0.05       break 5 % of connections off mid-body
    429:0.02         start a burst of 429s (Retry-After: 1) on 2 % of requests
    burst:5          length of a 429 burst (default 5 requests)
    down:1           refuse everything (connection reset before any answer)
    empty:0.5        answer file listings (GET /user-files) with an empty page
    short:1          file listings leave out the last item of every page (total and
                     has_more unchanged: a listing shorter than its total_count)
    drift:1          file listings past the first page start one item early, as if a
                     file had been added ahead meanwhile: each repeats the previous
                     page's last item
    nonconforming:1  answer GET /folders with a body the spec does not allow (a folder
                     whose id is a number and whose name is null: `doctor --api` tests)
    limit:3          stop after injecting 3 faults (e.g. `reset:1,limit:1`: the next
                     request breaks off, later ones succeed)

Faults apply to API requests and to storage (blob) requests alike, unless
`api-only:1` or `blob-only:1` is given. The emulator's admin routes are never faulted.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field


class FaultSpecError(ValueError):
    pass


class EmulatedFault(ConnectionResetError):
    """Raised inside the app to break a connection on purpose (not logged as a crash)."""


@dataclass
class Faults:
    latency: float = 0.0
    stall: float = 0.0
    error_rate: float = 0.0
    reset_rate: float = 0.0
    empty_rate: float = 0.0
    burst_rate: float = 0.0
    burst_length: int = 5
    down: bool = False
    nonconforming: bool = False
    short: bool = False
    drift: bool = False
    api_only: bool = False
    blob_only: bool = False
    seed: int = 0
    limit: int | None = None
    _rng: random.Random = field(default_factory=random.Random, repr=False)
    _burst_left: int = 0

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    @classmethod
    def parse(cls, spec: str | None, seed: int = 0) -> Faults:
        f = cls(seed=seed)
        if not spec:
            return f
        for part in spec.split(","):
            part = part.strip()
            if not part:
                continue
            name, _, value = part.partition(":")
            try:
                if name in ("latency", "stall"):
                    setattr(f, name, float(value[:-2]) / 1000 if value.endswith("ms")
                            else float(value.rstrip("s")))
                elif name in ("500", "5xx"):
                    f.error_rate = _rate(value)
                elif name == "reset":
                    f.reset_rate = _rate(value)
                elif name == "empty":
                    f.empty_rate = _rate(value)
                elif name == "429":
                    f.burst_rate = _rate(value)
                elif name == "burst":
                    f.burst_length = max(1, int(value))
                elif name == "down":
                    f.down = value not in ("0", "false")
                elif name in ("nonconforming", "short", "drift"):
                    setattr(f, name, value not in ("0", "false"))
                elif name == "limit":
                    f.limit = max(0, int(value))
                elif name == "api-only":
                    f.api_only = value not in ("0", "false")
                elif name == "blob-only":
                    f.blob_only = value not in ("0", "false")
                else:
                    raise FaultSpecError(f"unknown fault {name!r}")
            except ValueError as exc:
                raise FaultSpecError(f"bad fault {part!r}: {exc}") from None
        return f

    @property
    def active(self) -> bool:
        return bool(self.latency or self.stall or self.error_rate or self.reset_rate or self.burst_rate
                    or self.empty_rate or self.down or self.nonconforming or self.short
                    or self.drift)

    def decide(self, is_blob: bool, is_listing: bool = False) -> str | None:
        """'down', '429', '5xx', 'reset', 'empty' or None for one request."""
        if (self.api_only if is_blob else self.blob_only) or self.limit == 0:
            return None
        action = self._decide(is_blob)
        if action is None and is_listing and self.empty_rate and \
                self._rng.random() < self.empty_rate:
            action = "empty"
        if action is not None and self.limit is not None:
            self.limit -= 1
        return action

    def _decide(self, is_blob: bool) -> str | None:
        if self.down:
            return "down"
        if not is_blob:
            if self._burst_left > 0:
                self._burst_left -= 1
                return "429"
            if self.burst_rate and self._rng.random() < self.burst_rate:
                self._burst_left = self.burst_length - 1
                return "429"
        if self.error_rate and self._rng.random() < self.error_rate:
            return "5xx"
        if self.reset_rate and self._rng.random() < self.reset_rate:
            return "reset"
        return None

    def pick_5xx(self) -> int:
        return self._rng.choice((500, 502, 503))


def _rate(value: str) -> float:
    r = float(value)
    if not 0 <= r <= 1:
        raise ValueError("a rate is between 0 and 1")
    return r
