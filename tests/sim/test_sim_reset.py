"""``POST /_sim/reset`` restores the seeded start: world, fault dice and latency dice.

A pooled simulator is reset between tests; if its RNGs kept their place, a
test's faults would depend on whatever ran before it.  The same request
sequence must see the same outcomes on a fresh simulator and after every reset.
"""

from __future__ import annotations

from typing import Any

import aiohttp
from simhelp import AGENT, KEY, SimFactory, call, cell_url

from genbatch.sim.serve import SimServer

FAULTS = "500:0.3,gen_fail:0.5"
VIDEO = {
    "generation_type": "video_from_text",
    "data": {"prompt": "taco truck", "model": "veo_3", "aspect_ratio": "9:16", "duration": 5},
}
CLONE = "/v1/templates/spreadsheets/tiktok-montage/clone"


async def sequence(sim: SimServer, http: aiohttp.ClientSession) -> list[Any]:
    """A fixed request sequence; returns every fault outcome and generation latency."""
    seen: list[Any] = []
    engine: dict[str, Any] | None = None
    while engine is None:  # the clone itself may meet a 500
        async with http.post(CLONE, json={"agent_id": AGENT}) as resp:
            body = await resp.json(content_type=None)
            seen.append(("clone", resp.status))
            if resp.status == 201:
                engine = body
        assert len(seen) < 50
    for i in range(16):
        url = cell_url(engine, f"shot_{1 + i % 3}", "generate")
        async with http.post(url, json=VIDEO) as resp:
            body = await resp.json(content_type=None)
            seen.append(("generate", resp.status))
            if resp.status in (200, 201):
                gen = sim.world.generations[int(body["generation_id"])]
                seen.append((gen.id, gen.fail, gen.due_at - gen.started_at))
    return seen


async def test_reset_replays_faults_and_latencies_like_a_fresh_sim(
    sim_factory: SimFactory,
) -> None:
    sim = await sim_factory(faults=FAULTS, seed=23)
    async with aiohttp.ClientSession(base_url=sim.url, headers={"X-API-Key": KEY}) as http:
        fresh = await sequence(sim, http)
        await call(http, "POST", "/_sim/reset", 200)
        first = await sequence(sim, http)
        await call(http, "POST", "/_sim/reset", 200)
        second = await sequence(sim, http)
    assert fresh == first == second
    statuses = [x[1] for x in fresh if isinstance(x[0], str)]
    assert 500 in statuses and 201 in statuses  # the dice really were rolled
    fails = {x[1] for x in fresh if isinstance(x[0], int)}
    assert fails == {True, False}
    latencies = [x[2] for x in fresh if isinstance(x[0], int)]
    assert len(set(latencies)) == len(latencies)  # drawn, not constant
