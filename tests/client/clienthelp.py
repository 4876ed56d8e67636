"""Shared helpers of the client tests (constants, the simulator handle)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import aiohttp

from genbatch import _constants as C
from genbatch.client.retry import RetryPolicy
from genbatch.sim.serve import SimServer

KEY = "gen_test_client_key_42"
AGENT = C.SIM_DEMO_AGENT_ID
WORKSPACE = C.SIM_DEMO_WORKSPACE_ID
#: Fast backoff so retry tests stay quick; Retry-After still wins when sent.
FAST = RetryPolicy(max_retries=3, backoff_initial=0.01, backoff_max=0.05)
#: Poll quickly: the sim runs at time_scale 0.002 (a 60 s video takes ~0.12 s).
POLL: dict[str, float] = {"initial": 0.01, "max_interval": 0.05, "max_wait": 20.0}


@dataclass
class Sim:
    """The running simulator plus its admin API."""

    server: SimServer
    admin: aiohttp.ClientSession

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def api(self) -> str:
        """The API host's base URL."""
        return self.server.api_url

    @property
    def agent(self) -> str:
        """The agent host's base URL (another port of the same simulator)."""
        return self.server.agent_url

    async def ledger(self) -> dict[str, Any]:
        async with self.admin.get(self.url + "/_sim/ledger") as r:
            assert r.status == 200
            data: dict[str, Any] = await r.json()
            return data

    async def config(self, **body: Any) -> dict[str, Any]:
        async with self.admin.post(self.url + "/_sim/config", json=body) as r:
            assert r.status == 200, await r.text()
            data: dict[str, Any] = await r.json()
            return data

    async def api_requests(self) -> int:
        """Requests the sim saw on /v1 (the admin API's own reads excluded)."""
        by_route: dict[str, int] = (await self.ledger())["requests"]["by_route"]
        return sum(n for r, n in by_route.items() if " /v1/" in r)

    async def count(self, route: str) -> int:
        """Requests the sim saw for a route pattern, e.g. "GET /v1/generations/{id}"."""
        by_route: dict[str, int] = (await self.ledger())["requests"]["by_route"]
        return sum(n for r, n in by_route.items() if _same_route(r, route))


def _same_route(sim_route: str, ours: str) -> bool:
    # The sim's canonical patterns carry regexes ("{id:\d+}"); compare by shape.
    def norm(s: str) -> str:
        return re.sub(r"\{[^}]*\}", "{}", s)

    return norm(sim_route) == norm(ours)
