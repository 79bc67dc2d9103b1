"""A signal: callbacks told that something happened, wired by whoever wants to know.

The owner of a change (the journal: a file was closed; the query cache: results
changed) holds a `Signal` and calls it; a listener subscribes at construction.
Callbacks take no arguments and run at once, on the caller's thread.
"""

from __future__ import annotations

from collections.abc import Callable


class Signal:
    def __init__(self) -> None:
        self._callbacks: list[Callable[[], None]] = []

    def subscribe(self, callback: Callable[[], None]) -> None:
        self._callbacks.append(callback)

    def __call__(self) -> None:
        for callback in self._callbacks:
            callback()
