"""Fixtures for client tests: a real in-process simulator and a client pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from clienthelp import FAST, KEY, Sim

from genbatch.client import GenClient
from genbatch.sim.config import SimConfig
from genbatch.sim.serve import SimServer


@pytest.fixture
async def sim() -> AsyncIterator[Sim]:
    cfg = SimConfig(
        api_keys=(KEY,), rate=1000.0, burst=1000, credits=100000.0, time_scale=0.002, seed=1
    )
    async with SimServer(cfg) as server, aiohttp.ClientSession() as admin:
        yield Sim(server, admin)


@pytest.fixture
async def gen(sim: Sim) -> AsyncIterator[GenClient]:
    async with GenClient(KEY, api_url=sim.api, agent_url=sim.agent, retry_policy=FAST) as client:
        yield client


def _config(*, legacy: bool) -> SimConfig:
    return SimConfig(
        api_keys=(KEY,),
        rate=1000.0,
        burst=1000,
        credits=100000.0,
        time_scale=0.002,
        seed=1,
        legacy_paths=legacy,
    )


@pytest.fixture
async def legacy_sim() -> AsyncIterator[Sim]:
    """A simulator speaking the teaching document's API (``/v1/autocontentengine``)."""
    async with SimServer(_config(legacy=True)) as server, aiohttp.ClientSession() as admin:
        yield Sim(server, admin)


@pytest.fixture(params=["today", "legacy"])
async def dsim(request: pytest.FixtureRequest) -> AsyncIterator[Sim]:
    """Each dialect in turn: today's simulator, then the teaching document's."""
    cfg = _config(legacy=request.param == "legacy")
    async with SimServer(cfg) as server, aiohttp.ClientSession() as admin:
        yield Sim(server, admin)


@pytest.fixture
async def dgen(dsim: Sim) -> AsyncIterator[GenClient]:
    """A client (dialect "auto") against ``dsim``: it must find the prefix itself."""
    async with GenClient(KEY, api_url=dsim.api, agent_url=dsim.agent, retry_policy=FAST) as client:
        yield client
