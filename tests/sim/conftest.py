"""Fixtures for the simulator's own tests: an authenticated session on ``sim``."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from simhelp import KEY

from genbatch.sim.serve import SimServer


@pytest.fixture
async def http(sim: SimServer) -> AsyncIterator[aiohttp.ClientSession]:
    """A session against ``sim`` that sends the demo key (like the reference's curl)."""
    async with aiohttp.ClientSession(
        base_url=sim.url, headers={"X-API-Key": KEY}, raise_for_status=False
    ) as session:
        yield session
