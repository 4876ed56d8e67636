"""Journey tests: the key in the environment (as a user would set it), a client and waiter."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from journeyhelp import KEY

from genbatch.agents.research import research_seeds
from genbatch.client import GenClient
from genbatch.engine.poller import PollHub
from genbatch.engine.watch import HubWatcher
from genbatch.sim.serve import SimServer


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEN_API_KEY", KEY)
    for var in ("GEN_API_URL", "GEN_AGENT_URL", "GEN_AUTH"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
async def gen(sim: SimServer) -> AsyncIterator[GenClient]:
    async with GenClient(KEY, api_url=sim.api_url, agent_url=sim.agent_url) as client:
        yield client


@pytest.fixture
async def waiter(gen: GenClient) -> AsyncIterator[HubWatcher]:
    async with PollHub(seeds=research_seeds()) as hub:
        yield HubWatcher.for_runs(gen, hub, max_wait=30.0)
