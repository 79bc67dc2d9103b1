"""The systemd notify protocol (sd_notify(3)), without libsystemd.

Under `Type=notify` systemd passes `NOTIFY_SOCKET` (a datagram socket; a
leading '@' means the abstract namespace). The daemon sends `READY=1` once
the mount answers, `STATUS=` lines a person reads in `systemctl status`,
`WATCHDOG=1` at half of `WATCHDOG_USEC` while the filesystem really answers
(a statfs through the mount from a worker thread: a hung FUSE loop stops the
pings and systemd restarts the service), and `STOPPING=1` when it begins to
shut down. Without `NOTIFY_SOCKET` every call does nothing.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from pathlib import Path

import trio

log = logging.getLogger(__name__)


class Notifier:
    def __init__(self, environ: dict[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET", "")
        self.address: str | None = None
        if address:
            self.address = "\0" + address[1:] if address.startswith("@") else address
        self.watchdog_interval: float | None = None
        usec, pid = env.get("WATCHDOG_USEC"), env.get("WATCHDOG_PID")
        if usec and (not pid or pid == str(os.getpid())):
            try:
                self.watchdog_interval = int(usec) / 1e6 / 2
            except ValueError:
                log.warning("WATCHDOG_USEC=%r is not a number; no watchdog pings", usec)
        # the variables are for this process only, not for the helpers it starts
        for name in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"):
            os.environ.pop(name, None)
        self._sock: socket.socket | None = None

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, **fields: str | int) -> None:
        """One datagram of NAME=value lines; failures are logged, never raised
        (systemd going away must not take the mount with it)."""
        if self.address is None:
            return
        payload = "\n".join(f"{k.upper()}={v}" for k, v in fields.items()).encode()
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                self._sock.setblocking(False)
            self._sock.sendto(payload, self.address)
        except OSError as exc:
            log.warning("could not notify systemd (%s): %s", self.address.lstrip("\0"), exc)

    def ready(self, status: str) -> None:
        self.send(ready=1, status=status, mainpid=os.getpid())

    def status(self, status: str) -> None:
        self.send(status=status)

    def stopping(self, status: str = "unmounting") -> None:
        self.send(stopping=1, status=status)

    async def keep_alive(self, mountpoint: Path, summary: Callable[[], str]) -> None:
        """Ping the watchdog while the mount answers; refresh STATUS= as it changes."""
        interval = self.watchdog_interval
        last = ""
        while True:
            await trio.sleep(interval if interval is not None else 10.0)
            if interval is not None:
                with trio.move_on_after(interval) as scope:
                    await trio.to_thread.run_sync(os.statvfs, mountpoint,
                                                  abandon_on_cancel=True)
                if scope.cancelled_caught:
                    log.error("the mount did not answer a statfs within %.0fs: no watchdog "
                              "ping (systemd restarts the service if this goes on)", interval)
                    continue
            text = summary()
            fields: dict[str, str | int] = {}
            if interval is not None:
                fields["watchdog"] = 1
            if text != last:
                fields["status"] = last = text
            if fields:
                self.send(**fields)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
