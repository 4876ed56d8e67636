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
    async with GenClient(KEY, api_url=sim.api, agent_url=sim.api, retry_policy=FAST) as client:
        yield client
