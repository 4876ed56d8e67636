"""Fixtures for the simulator's own tests: authenticated sessions on ``sim`` (today's
API) and on ``legacy_sim`` (the teaching document's, ``legacy_paths=True``), each
holding both hosts (:class:`simhelp.SimHttp`: a path goes to the host serving it)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from simhelp import KEY, SimFactory, SimHttp

from genbatch.sim.serve import SimServer


@pytest.fixture
async def http(sim: SimServer) -> AsyncIterator[SimHttp]:
    """Sessions on ``sim``'s two hosts that send the demo key (like the reference's curl)."""
    async with SimHttp(sim, headers={"X-API-Key": KEY}, raise_for_status=False) as session:
        yield session


@pytest.fixture
async def legacy_sim(sim_factory: SimFactory) -> SimServer:
    """A simulator speaking the teaching document's API (``/v1/autocontentengine``)."""
    return await sim_factory(legacy_paths=True)


@pytest.fixture
async def legacy_http(legacy_sim: SimServer) -> AsyncIterator[SimHttp]:
    """Sessions on ``legacy_sim``'s two hosts that send the demo key."""
    async with SimHttp(legacy_sim, headers={"X-API-Key": KEY}, raise_for_status=False) as session:
        yield session
