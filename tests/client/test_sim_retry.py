"""Retries against the simulator's faults: waits honour Retry-After, and paid POSTs are
never resent blindly — the sim's ledger proves no generation is charged twice."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest
from clienthelp import AGENT, FAST, KEY, Sim

from genbatch.client import AttemptInfo, GenClient, Hooks, Route
from genbatch.client.retry import RetryPolicy
from genbatch.errors import APIConnectionError, ServerError
from genbatch.sim.config import SimConfig
from genbatch.sim.serve import SimServer

VIDEO = {"generation_type": "video_from_text", "data": {"prompt": "tacos", "model": "veo_3"}}
GENERATE = "POST /v1/vidsheet/{id}/cells/{cell_id}/generate"


async def _video_cell(gen: GenClient) -> tuple[str, str]:
    eng = await gen.templates.clone("tiktok-vo-broll", AGENT)
    cell = eng.cell("broll")
    assert cell is not None
    return eng.id, cell.id


async def _generations_for(sim: Sim, cell_id: str) -> list[dict[str, object]]:
    return [g for g in (await sim.ledger())["generations"] if str(g["cell_id"]) == cell_id]


async def test_429_waits_at_least_retry_after(sim: Sim) -> None:
    await sim.config(rate=1.0, burst=1)
    stamps: list[tuple[str, float, int | None, float | None]] = []

    async def before(route: Route) -> None:
        stamps.append(("send", time.monotonic(), None, None))

    def after(info: AttemptInfo) -> None:
        stamps.append(("done", time.monotonic(), info.status, info.retry_after))

    hooks = Hooks(before_attempt=before, after_attempt=after)
    async with GenClient(
        KEY, api_url=sim.api, agent_url=sim.agent, retry_policy=FAST, hooks=hooks
    ) as g:
        await g.agents.me()
        await g.agents.me()  # the bucket is empty: 429 + Retry-After, then success
    statuses = [s[2] for s in stamps if s[0] == "done"]
    assert statuses == [200, 429, 200]
    i = next(n for n, s in enumerate(stamps) if s[2] == 429)
    retry_after = stamps[i][3]
    assert retry_after is not None and retry_after >= 1
    assert stamps[i + 1][1] - stamps[i][1] >= retry_after  # our own monotonic stamps
    # …and the sim's clock agrees: its 200 came no sooner than Retry-After after the 429
    log = [e for e in (await sim.ledger())["requests"]["log"] if e["route"] == "GET /v1/me"]
    t429 = next(e["t"] for e in log if e["status"] == "429")
    t_ok = [e["t"] for e in log if e["status"] == "200"][-1]
    assert t_ok - t429 >= retry_after - 0.01
    assert g.stats.retries_by_reason == {"status_429": 1}


async def test_503_on_a_read_is_retried(sim: Sim) -> None:
    await sim.config(faults="503:1")
    sent = 0

    async def before(route: Route) -> None:
        nonlocal sent
        sent += 1
        if sent == 2:
            await sim.config(faults="")  # the outage ends before the retry

    async with GenClient(
        KEY, api_url=sim.api, agent_url=sim.agent, retry_policy=FAST, hooks=Hooks(before)
    ) as g:
        org = await g.organizations.get(100)
    assert org.id == "100"
    assert g.stats.retries_by_reason == {"status_503": 1}
    assert await sim.count("GET /v1/organizations/{id}") == 2


async def test_reset_after_generate_without_key_is_not_resent(gen: GenClient, sim: Sim) -> None:
    eng_id, cell_id = await _video_cell(gen)
    await sim.config(faults="reset_after:1")
    with pytest.raises(APIConnectionError) as info:
        await gen.generations.generate(eng_id, cell_id, AGENT, VIDEO)
    assert info.value.maybe_sent is True and "reconcile" in str(info.value)
    await sim.config(faults="")
    assert await sim.count(GENERATE) == 1  # sent once, never again
    (charged,) = await _generations_for(sim, cell_id)
    # the reconcile read finds what the lost answer would have said
    cell = await gen.cells.get(eng_id, cell_id, AGENT)
    assert cell.generation_id == str(charged["id"])


async def test_reset_after_generate_with_key_never_charges_twice(gen: GenClient, sim: Sim) -> None:
    eng_id, cell_id = await _video_cell(gen)
    await sim.config(faults="reset_after:1")
    with pytest.raises(APIConnectionError):
        await gen.generations.generate(eng_id, cell_id, AGENT, VIDEO, idempotency_key="row-7-broll")
    assert await sim.count(GENERATE) == 1 + FAST.max_retries  # resent with the same key…
    assert len(await _generations_for(sim, cell_id)) == 1  # …charged once
    await sim.config(faults="")
    again = await gen.generations.generate(
        eng_id, cell_id, AGENT, VIDEO, idempotency_key="row-7-broll"
    )
    (only,) = await _generations_for(sim, cell_id)
    assert again.generation_id == str(only["id"])
    assert (await sim.ledger())["credits"]["charged"] == only["credits"] > 0


@pytest.mark.parametrize("fault", ["reset_after:1", "503:1"])
async def test_keyed_paid_post_with_resend_ambiguous_off_is_sent_once(
    gen: GenClient, sim: Sim, fault: str
) -> None:
    eng_id, cell_id = await _video_cell(gen)
    await sim.config(faults=fault)
    with pytest.raises((ServerError, APIConnectionError)) as info:
        await gen.generations.generate(
            eng_id, cell_id, AGENT, VIDEO, idempotency_key="k-2", resend_ambiguous=False
        )
    if isinstance(info.value, APIConnectionError):
        assert info.value.maybe_sent is True
    await sim.config(faults="")
    assert await sim.count(GENERATE) == 1  # the key alone would have resent it
    assert list(gen.stats.giveups_by_reason) == [
        "ambiguous:" + ("disconnect" if fault.startswith("reset") else "status_503")
    ]
    assert gen.stats.retries == 0


async def test_keyed_generate_retried_through_503(gen: GenClient, sim: Sim) -> None:
    eng_id, cell_id = await _video_cell(gen)
    await sim.config(faults="503:1")
    sent = 0

    async def before(route: Route) -> None:
        nonlocal sent
        sent += 1
        if sent == 2:
            await sim.config(faults="")

    gen.hooks = Hooks(before_attempt=before)
    started = await gen.generations.generate(eng_id, cell_id, AGENT, VIDEO, idempotency_key="k-1")
    assert started.generation_id
    assert await sim.count(GENERATE) == 2
    assert len(await _generations_for(sim, cell_id)) == 1


@pytest.mark.parametrize("fault", ["500:1", "503:1", "reset:1"])
async def test_paid_post_is_never_blindly_resent(gen: GenClient, sim: Sim, fault: str) -> None:
    eng_id, cell_id = await _video_cell(gen)
    eng = await gen.engines.get(eng_id, AGENT)
    final = eng.final_video_cell()
    assert final is not None
    await sim.config(faults=fault)
    with pytest.raises((ServerError, APIConnectionError)):
        await gen.generations.generate(eng_id, cell_id, AGENT, VIDEO)
    with pytest.raises((ServerError, APIConnectionError)):
        await gen.generations.render(eng_id, final.id, AGENT)
    with pytest.raises((ServerError, APIConnectionError)):
        await gen.templates.clone("tiktok-montage", AGENT)
    await sim.config(faults="")
    assert await sim.count(GENERATE) == 1
    assert await sim.count("POST /v1/vidsheet/{id}/cells/{cell_id}/render") == 1
    assert await sim.count("POST /v1/templates/spreadsheets/{slug}/clone") == 2  # setup + 1
    assert await _generations_for(sim, cell_id) == []  # these faults strike before the effect
    assert all(r.startswith("unsafe_post:") for r in gen.stats.giveups_by_reason)


async def test_post_is_resent_when_it_never_left() -> None:
    """A clone sent while nothing listens is retried, and lands exactly once."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    url = f"http://127.0.0.1:{port}/v1"
    policy = RetryPolicy(max_retries=20, backoff_initial=0.05, backoff_max=0.1)
    cfg = SimConfig(api_keys=(KEY,), rate=1000.0, burst=1000, time_scale=0.002, port=port)
    server = SimServer(cfg)

    async def start_later() -> None:
        await asyncio.sleep(0.2)
        await server.start()

    starter = asyncio.create_task(start_later())
    try:
        async with GenClient(KEY, api_url=url, agent_url=url, retry_policy=policy) as g:
            eng = await g.templates.clone("tiktok-montage", AGENT)
            assert eng.title == "TikTok Montage" and eng.spreadsheet_cells
            assert g.stats.retries_by_reason["connect"] >= 1
        await starter
        clones = server.world.counters.by_route
        assert sum(n for r, n in clones.items() if r.startswith("POST /v1/templates")) == 1
    finally:
        starter.cancel()
        await server.close()
