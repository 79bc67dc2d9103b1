"""Run the emulator: hypercorn under trio, until SIGINT or SIGTERM.

The socket is bound here (port 0 picks a free port) and handed to hypercorn
as a file descriptor, so the printed base URL is always the real one and
tests never race for a port.
"""

from __future__ import annotations

import json
import logging
import signal
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

import trio
from hypercorn.config import Config
from hypercorn.trio import serve as hypercorn_serve
from starlette.requests import ClientDisconnect

from .app import API_PREFIX, Emulator, build_app
from .faults import EmulatedFault, Faults

log = logging.getLogger(__name__)


@dataclass
class ServerOptions:
    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 8765
    plan: str = "free"
    rpm: int | None = None
    demo: bool = False
    demo_images: int | None = None
    faults: str | None = None
    seed: int = 0
    processing_delay: float = 2.0
    semantic_latency: float = 0.3
    json_banner: bool = False


def _not_emulated(record: logging.LogRecord) -> bool:
    """Drop hypercorn's report of connections broken on purpose by fault injection."""
    exc = record.exc_info[1] if record.exc_info else None
    while exc is not None:
        if isinstance(exc, EmulatedFault | ClientDisconnect):
            return False
        exc = exc.__cause__ or exc.__context__
    return True


async def run(opts: ServerOptions, *, task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED
              ) -> None:
    emu = Emulator(opts.data_dir, faults=Faults.parse(opts.faults, seed=opts.seed),
                   semantic_latency=opts.semantic_latency)
    key = emu.state.default_tenant_key()
    fresh = key is None
    if fresh:
        key, _ = emu.state.create_tenant(opts.plan, rpm=opts.rpm, default=True,
                                         processing_delay=opts.processing_delay)
    else:
        emu.state.update_default_tenant(opts.plan, opts.rpm, opts.processing_delay)
    tenant = emu.state.tenant_by_key(key)
    assert tenant is not None
    seeded_marker = opts.data_dir / ".demo-seeded"
    if opts.demo and not seeded_marker.exists():
        from .demo import seed

        print("seeding the demo library (once per data dir)…", file=sys.stderr, flush=True)
        delay = tenant.processing_delay
        emu.state.set_tenant(tenant, processing_delay=0.0)  # demo files arrive processed
        summary = await seed(emu, tenant, seed=opts.seed or 7, images=opts.demo_images)
        emu.state.set_tenant(tenant, processing_delay=delay, uploads_used=0)
        seeded_marker.write_text(json.dumps(summary.__dict__))

    sock = socket.socket(socket.AF_INET6 if ":" in opts.host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((opts.host, opts.port))
    except OSError as exc:
        raise SystemExit(f"aionfs emulator: cannot listen on {opts.host}:{opts.port}: "
                         f"{exc.strerror}") from None
    sock.listen(512)
    sock.set_inheritable(True)
    port = sock.getsockname()[1]
    host = f"[{opts.host}]" if ":" in opts.host else opts.host
    base = f"http://{host}:{port}{API_PREFIX}"

    config = Config()
    config.bind = [f"fd://{sock.detach()}"]  # hypercorn owns (and closes) it now
    config.accesslog = None
    errorlog = logging.getLogger("hypercorn.error")
    errorlog.addFilter(_not_emulated)
    config.errorlog = errorlog
    config.keep_alive_timeout = 30
    config.graceful_timeout = 2

    banner = {"base_url": base, "api_key": key, "plan": tenant.plan,
              "data_dir": str(opts.data_dir)}
    if opts.json_banner:
        print(json.dumps(banner), flush=True)
    else:
        print(f"Aionvision emulator listening on {base}\n"
              f"  plan: {tenant.plan}   data: {opts.data_dir}\n\n"
              f"  export AIONVISION_BASE_URL={base}\n"
              f"  export AIONVISION_API_KEY={key}\n", flush=True)
    stop = trio.Event()

    async def on_signals() -> None:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for _ in signals:
                stop.set()
                return

    async with trio.open_nursery() as nursery:
        nursery.start_soon(on_signals)
        task_status.started(base)
        await hypercorn_serve(build_app(emu), config, shutdown_trigger=stop.wait)
        nursery.cancel_scope.cancel()
    emu.state.close()
