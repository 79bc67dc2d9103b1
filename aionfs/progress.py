"""Progress of a long command: a rich bar on a terminal, a plain line now and then otherwise.

Journals and CI logs get lines they can read (no control characters, at most
one every two seconds, and always the last state); a terminal gets a bar
that disappears when the work is done.
"""

from __future__ import annotations

import sys
import time
from typing import Any


class Progress:
    def __init__(self, what: str, *, stream: Any = None) -> None:
        self.what = what
        self.stream = stream or sys.stderr
        self._rich: Any = None
        self._task: Any = None
        self._last_line = 0.0
        self._pending: str | None = None
        self._closed = False

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def update(self, done: int, total: int | None = None, text: str = "") -> None:
        if self._closed:
            return
        if self.stream.isatty():
            if self._rich is None:
                from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

                self._rich = Progress(TextColumn("{task.description}"), BarColumn(),
                                      TextColumn("{task.fields[text]}"), TimeElapsedColumn(),
                                      transient=True)
                self._task = self._rich.add_task(self.what, total=total, text=text)
                self._rich.start()
            self._rich.update(self._task, completed=done, total=total, text=text)
            return
        line = f"{self.what}: {text or done}" if total is None else \
            f"{self.what}: {done}/{total}" + (f" {text}" if text else "")
        if time.monotonic() - self._last_line >= 2:
            self._last_line = time.monotonic()
            self._pending = None
            print(line, file=self.stream, flush=True)
        else:
            self._pending = line

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._rich is not None:
            self._rich.stop()
        elif self._pending is not None:
            print(self._pending, file=self.stream, flush=True)
