"""Shared fixtures: an in-process simulator every layer's tests can stand on.

``sim`` is a running :class:`~genbatch.sim.serve.SimServer` on 127.0.0.1 with
fast time (``time_scale`` 0.002: a 90 s video takes ~0.2 s) and a rate limit
generous enough never to get in a functional test's way.  ``sim_factory``
starts one with other settings (faults, credits, rate) and closes it after.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from genbatch.sim.config import SimConfig
from genbatch.sim.serve import SimServer

#: The extra API key every test simulator accepts (besides the seeded demo key).
TEST_API_KEY = "k1"
FAST = {
    "api_keys": (TEST_API_KEY,),
    "rate": 1000.0,
    "burst": 1000,
    "credits": 100_000.0,
    "time_scale": 0.002,
    "faults": "",
    "seed": 1,
    "admin_key": None,
}

SimFactory = Callable[..., Awaitable[SimServer]]


@pytest.fixture(autouse=True)
def _private_sim_state(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every test's `--sim` commands keep their world in a dir of the test's own.

    ``--sim`` keeps its world between commands (genbatch/cli/target.py), by default
    under the current dir: without this, tests would share (and leave behind) one
    world.  Set in ``os.environ``, so CLI subprocesses started with it inherit it.
    """
    monkeypatch.setenv("GENBATCH_SIM_STATE", str(tmp_path_factory.mktemp("sim-state")))


@pytest.fixture
async def sim_factory() -> AsyncIterator[SimFactory]:
    """Start simulators with ``FAST`` settings overridden by keyword; all closed at teardown."""
    started: list[SimServer] = []

    async def make(**overrides: Any) -> SimServer:
        server = await SimServer(SimConfig(**{**FAST, **overrides})).start()
        started.append(server)
        return server

    yield make
    for server in started:
        await server.close()


@pytest.fixture
async def sim(sim_factory: SimFactory) -> SimServer:
    """A running simulator with fast time and a generous rate limit."""
    return await sim_factory()
