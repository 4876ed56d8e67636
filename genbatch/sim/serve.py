"""Run the simulator: in-process (:class:`SimServer`) or as ``genbatch sim``.

In-process use (tests, ``genbatch run --sim``)::

    async with SimServer(SimConfig(api_keys=("k1",), time_scale=0.002)) as sim:
        sim.url     # "http://127.0.0.1:PORT"  (api/agent base = sim.url + "/v1")
        sim.world   # live state and ledger, for white-box assertions
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import tempfile
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

from aiohttp import web

from genbatch.sim.app import create_app
from genbatch.sim.config import SimConfig
from genbatch.sim.world import World


class SimServer:
    """A running simulator bound to ``config.host`` (port 0: a free port)."""

    def __init__(self, config: SimConfig | None = None) -> None:
        self.config = config or SimConfig()
        self._runner: web.AppRunner | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self.port = 0
        data_dir = self.config.data_dir
        if data_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="genbatch-sim-")
            data_dir = Path(self._tmp.name)
        c = self.config
        self.world = World(
            api_keys=c.api_keys,
            credits=c.credits,
            time_scale=c.time_scale,
            seed=c.seed,
            rate=c.rate,
            burst=c.burst,
            faults=c.faults,
            data_dir=data_dir,
        )
        self.app = create_app(self.world, admin_key=c.admin_key)

    @property
    def url(self) -> str:
        host = self.config.host
        shown = "127.0.0.1" if host in ("0.0.0.0", "") else host  # noqa: S104 - display only
        return f"http://{shown}:{self.port}"

    async def start(self) -> SimServer:
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.host, self.config.port, backlog=1024)
        await site.start()
        addr: Any = self._runner.addresses[0]
        self.port = int(addr[1])
        self.world.base_url = self.url
        return self

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    async def __aenter__(self) -> SimServer:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


async def serve_forever(config: SimConfig, announce: Callable[[str], None] = print) -> None:
    """Serve until SIGINT/SIGTERM; ``announce`` gets the one line saying where."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    async with SimServer(config) as sim:
        announce(f"genbatch sim listening on {sim.url}")
        await stop.wait()
