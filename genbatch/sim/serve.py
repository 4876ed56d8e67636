"""Run the simulator: in-process (:class:`SimServer`) or as ``genbatch sim``.

In-process use (tests, ``genbatch run --sim``)::

    async with SimServer(SimConfig(api_keys=("k1",), time_scale=0.002)) as sim:
        sim.api_url     # "http://127.0.0.1:PORT/v1"        the API host's base
        sim.agent_url   # "http://127.0.0.1:AGENT_PORT/v1"  the agent host's base
        sim.url         # "http://127.0.0.1:PORT": the API host's root (/_sim, /cdn)
        sim.world       # live state and ledger, for white-box assertions

The two hosts are two ports of one process sharing one world, so a call sent
to the wrong host fails as it would against GEN (genbatch/sim/app.py).

``SimServer(config, state_dir=DIR)`` keeps its world in ``DIR`` (genbatch/sim/state.py):
loaded on start when one was saved there, saved while it runs and on close, one
process at a time.  Without it the world lives and dies with the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
import tempfile
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

from aiohttp import web

from genbatch._constants import CLIENT_ENV_AGENT_URL, CLIENT_ENV_API_URL, SIM_DEMO_API_KEY
from genbatch.sim.app import HOST_PORTS, create_app
from genbatch.sim.config import SimConfig
from genbatch.sim.state import StateDir, autosave, stop_autosave
from genbatch.sim.world import World


class SimServer:
    """A running simulator: the API host on ``config.port``, the agent host on
    ``config.agent_port``, both on ``config.host`` (port 0: a free port).

    ``state_dir``: keep the world there (module docstring); its files go to
    ``state_dir/data``, so ``config.data_dir`` must be None.  ``start`` raises
    :class:`~genbatch.sim.state.SimStateError` when another process holds the dir
    or its saved world cannot be read; :attr:`state_created` says whether this
    server started the dir's world afresh.
    """

    def __init__(self, config: SimConfig | None = None, *, state_dir: Path | None = None) -> None:
        self.config = config or SimConfig()
        self._runner: web.AppRunner | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self.port = 0
        self.agent_port = 0
        self.state = StateDir(state_dir) if state_dir is not None else None
        self.state_created = False
        self._saving = False  # the world is the state dir's: save it on close
        self._autosave: asyncio.Task[None] | None = None
        data_dir = self.config.data_dir
        if self.state is not None:
            if data_dir is not None:
                raise ValueError("give a SimServer data_dir or state_dir, not both")
            self.state.check()
            data_dir = self.state.data_dir
        elif data_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="genbatch-sim-")
            data_dir = Path(self._tmp.name)
        self.world = World.from_config(self.config, data_dir)
        self.app = create_app(self.world, admin_key=self.config.admin_key)

    def _root(self, port: int) -> str:
        host = self.config.host
        shown = "127.0.0.1" if host in ("0.0.0.0", "") else host  # noqa: S104 - display only
        return f"http://{shown}:{port}"

    @property
    def url(self) -> str:
        """The API host's root (no ``/v1``): the admin API, CDN and storage live here."""
        return self._root(self.port)

    @property
    def api_url(self) -> str:
        """The API host's base URL (``GEN_API_URL``)."""
        return self.url + "/v1"

    @property
    def agent_url(self) -> str:
        """The agent host's base URL (``GEN_AGENT_URL``)."""
        return self._root(self.agent_port) + "/v1"

    async def _bind(self, port: int) -> set[int]:
        """Start one more site of the shared app on ``port``; the ports it bound."""
        assert self._runner is not None
        seen = len(self._runner.addresses)
        site = web.TCPSite(self._runner, self.config.host, port, backlog=1024)
        await site.start()
        addrs: list[Any] = self._runner.addresses[seen:]
        return {int(a[1]) for a in addrs}

    async def start(self) -> SimServer:
        saved: bytes | None = None
        if self.state is not None:
            self.state.acquire()
            try:
                saved = self.state.read(self.world) if self.state.exists() else None
            except BaseException:
                self.state.release()
                raise
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        try:
            await self._runner.setup()
            api_ports = await self._bind(self.config.port)
            agent_ports = await self._bind(self.config.agent_port)
            # No await from here on: no request is served before the split is known
            # and the saved world (its URLs rebuilt on this port) is in place.
            self.app[HOST_PORTS].agent.update(agent_ports)
            self.port = min(api_ports)
            self.agent_port = min(agent_ports)
            self.world.base_url = self.url  # CDN and upload URLs: always the API host
            if self.state is not None:
                self._keep(saved)
        except BaseException:
            await self.close()
            raise
        return self

    def _keep(self, saved: bytes | None) -> None:
        """Serve the state dir's world (``saved``) or start it there, and keep it saved."""
        assert self.state is not None
        if saved is not None:
            self.state.load(self.world, saved)
            self.world.webhooks.rearm()
        else:
            self.state.save(self.world)  # the dir shows a world from the first moment
            self.state_created = True
        self._saving = True
        self._autosave = asyncio.get_running_loop().create_task(
            autosave(self.state, self.world), name="genbatch-sim-autosave"
        )

    async def close(self) -> None:
        """Stop serving; with a state dir, save the world (always, even when cancelled)."""
        try:
            await stop_autosave(self._autosave)
            self._autosave = None
            self.world.webhooks.close()  # no timer or delivery outlives the server
            if self._runner is not None:
                await self._runner.cleanup()
                self._runner = None
        finally:
            if self.state is not None:
                try:
                    if self._saving:
                        self._saving = False
                        self.state.save(self.world)
                finally:
                    self.state.release()
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


def describe(config: SimConfig) -> str:
    """One line saying what the simulator plays: its profile, limits, cap, capacity..."""
    if config.rate is None:
        rate = "rate limit: none"
    else:
        told = "rate headers on" if config.rate_headers else "no rate headers"
        rate = f"rate limit: {config.rate:g} req/s per key (burst {config.burst}, {told})"
    parts = [
        f"profile: {config.profile or 'none (defaults)'}",
        rate,
        f"job cap: {config.job_cap if config.job_cap is not None else 'none'}",
        "capacity: "
        + (f"{config.capacity:g} req/s" if config.capacity is not None else "unlimited"),
        f"timestamps: {'on' if config.timestamps else 'off'}",
        f"time scale: {config.time_scale:g}",
    ]
    if config.latency:
        ranges = ", ".join(f"{key} {lo:g}-{hi:g} s" for key, (lo, hi) in config.latency)
        parts.append(f"latency at time scale 1: {ranges}")
    return "; ".join(parts)


def announcement(sim: SimServer) -> str:
    """What ``genbatch sim`` prints once it listens (genbatch/sim/launch.py parses it).

    Only the seeded demo key is shown, never a key given with ``--api-key``; the
    last line is :func:`describe`.
    """
    agent_root = sim.agent_url.removesuffix("/v1")
    return "\n".join(
        (
            f"genbatch sim listening on {sim.url} (api) and {agent_root} (agent)",
            f"{CLIENT_ENV_API_URL}={sim.api_url}",
            f"{CLIENT_ENV_AGENT_URL}={sim.agent_url}",
            f"demo key: {SIM_DEMO_API_KEY}",
            describe(sim.config),
        )
    )


def short_full_collections() -> Callable[[], None]:
    """Keep the garbage collector's full passes short; returns the undo.

    A simulator's world only grows during a batch (its ledger keeps every
    generation), so each full collection walks more of it and stalls the
    process longer (benchmarks/RESULTS.md, "The 429s at 10,000 rows"):
    requests pile up in the sockets meanwhile and then reach the rate limiter
    at once -- 429s no client caused.  What survives a full pass is frozen
    (:func:`gc.freeze`) as it ends, so the next one walks only what came
    since.  Cycles among frozen objects are never freed; the world keeps
    nearly all it makes anyway.  For the ``genbatch sim`` process only:
    in-process, the collector is the host's.
    """

    def after(phase: str, info: dict[str, int]) -> None:
        if phase == "stop" and info["generation"] == 2:
            gc.freeze()  # the pass is over: its survivors, and only they, are frozen

    gc.callbacks.append(after)

    def undo() -> None:
        with contextlib.suppress(ValueError):
            gc.callbacks.remove(after)
        gc.unfreeze()

    return undo


async def serve_forever(config: SimConfig, announce: Callable[[str], None] = print) -> None:
    """Serve until SIGINT/SIGTERM; ``announce`` gets :func:`announcement`, in one call."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    undo = short_full_collections()
    try:
        async with SimServer(config) as sim:
            announce(announcement(sim))
            await stop.wait()
    finally:
        undo()
