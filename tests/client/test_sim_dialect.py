"""The engine prefix, learned per session: today's ``/v1/vidsheet`` first; against a
server that only serves the teaching document's ``/v1/autocontentengine`` the client
falls back once (one 404 per session) and remembers (docs/dialect.md §1)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from clienthelp import AGENT, FAST, KEY, POLL, Sim

from genbatch import errors as E
from genbatch.client import GenClient

VIDEO = {"generation_type": "video_from_text", "data": {"prompt": "tacos", "model": "veo_3"}}


async def _requests(sim: Sim) -> list[dict[str, Any]]:
    log: list[dict[str, Any]] = (await sim.ledger())["requests"]["log"]
    return [e for e in log if not e["route"].split(" ", 1)[1].startswith("/_sim/")]


async def _404s(sim: Sim) -> int:
    return sum(1 for e in await _requests(sim) if e["status"] == "404")


async def test_today_prefix_needs_no_fallback(sim: Sim, gen: GenClient) -> None:
    assert gen.dialect is None and gen.engine_prefix == "/v1/vidsheet"
    eng = await gen.templates.clone("tiktok-vo-broll", AGENT)
    assert gen.dialect is None  # template routes are the same in both dialects
    await gen.engines.get(eng.id, AGENT)
    assert gen.dialect == "today" and gen.dialect_misses == 0
    await gen.cells.get(eng.id, eng.spreadsheet_cells[0].id, AGENT)
    assert await _404s(sim) == 0
    routes = [e["route"] for e in await _requests(sim)]
    assert any(r.startswith("GET /v1/vidsheet/") for r in routes)
    assert not any("/autocontentengine" in r for r in routes)


async def test_legacy_server_one_404_per_session_then_remembered(legacy_sim: Sim) -> None:
    sim = legacy_sim
    async with GenClient(KEY, api_url=sim.api, agent_url=sim.agent, retry_policy=FAST) as gen:
        eng = await gen.templates.clone("tiktok-vo-broll", AGENT)
        assert await _404s(sim) == 0
        got = await gen.engines.get(eng.id, AGENT)  # 404 under /v1/vidsheet, then the old one
        assert got.id == eng.id
        assert gen.dialect == "legacy" and gen.engine_prefix == "/v1/autocontentengine"
        assert gen.dialect_misses == 1 and await _404s(sim) == 1
        hook = got.cell("hook")
        assert hook is not None
        await gen.cells.update(eng.id, hook.id, AGENT, "remembered")
        await gen.rows.list(eng.id, AGENT)
        await gen.engines.clone(eng.id, AGENT)
        assert await _404s(sim) == 1  # the rest of the session goes straight to the old prefix
        # after the prefix is known, a 404 is a plain NotFoundError, not another probe
        sent = len(await _requests(sim))
        with pytest.raises(E.NotFoundError) as info:
            await gen.engines.get(987654, AGENT)
        assert info.value.route == "GET /v1/autocontentengine/{id}"
        assert len(await _requests(sim)) == sent + 1 and gen.dialect_misses == 1
    # a new client is a new session: it learns again (once)
    async with GenClient(KEY, api_url=sim.api, agent_url=sim.agent, retry_policy=FAST) as fresh:
        await fresh.engines.get(eng.id, AGENT)
        await fresh.engines.get(eng.id, AGENT)
        assert fresh.dialect == "legacy" and fresh.dialect_misses == 1
    assert await _404s(sim) == 3  # two sessions' probes + the missing engine
    refused = [e for e in await _requests(sim) if e["status"] == "404"]
    assert sum(1 for e in refused if e["route"] == "GET <unmatched>") == 2


async def test_concurrent_first_calls_pay_one_404(legacy_sim: Sim) -> None:
    sim = legacy_sim
    async with GenClient(KEY, api_url=sim.api, agent_url=sim.agent, retry_policy=FAST) as gen:
        engines = [await gen.templates.clone("tiktok-montage", AGENT) for _ in range(3)]
        got = await asyncio.gather(*(gen.engines.get(e.id, AGENT) for e in engines * 4))
    assert {g.id for g in got} == {e.id for e in engines}
    assert gen.dialect_misses == 1 and await _404s(sim) == 1


async def test_paid_post_as_the_first_engine_call_is_charged_once(legacy_sim: Sim) -> None:
    # A 404 means nothing ran: the generate goes again under the old prefix, once.
    sim = legacy_sim
    async with GenClient(KEY, api_url=sim.api, agent_url=sim.agent, retry_policy=FAST) as gen:
        eng = await gen.templates.clone("tiktok-vo-broll", AGENT)
        broll = eng.cell("broll")
        assert broll is not None
        started = await gen.generations.generate(
            eng.id, broll.id, AGENT, VIDEO, idempotency_key="row-1-broll"
        )
        assert gen.dialect == "legacy"
        done = await gen.generations.wait(started.generation_id, **POLL)
        # the same key again is the same generation (the key crossed the fallback intact)
        again = await gen.generations.generate(
            eng.id, broll.id, AGENT, VIDEO, idempotency_key="row-1-broll"
        )
    assert again.generation_id == started.generation_id and done.status == "completed"
    ledger = await sim.ledger()
    mine = [g for g in ledger["generations"] if str(g["cell_id"]) == broll.id]
    assert len(mine) == 1
    posts = [e for e in await _requests(sim) if e["method"] == "POST"]
    assert [e["status"] for e in posts if e["route"] == "POST <unmatched>"] == ["404"]
    charges = [e for e in ledger["credits"]["events"] if e["kind"] == "charge"]
    assert [str(e["generation_id"]) for e in charges] == [started.generation_id]


async def test_variables_template_first_against_legacy_server(legacy_sim: Sim) -> None:
    # Any engine route may be the one that learns: here a read that is not the engine's.
    sim = legacy_sim
    async with GenClient(KEY, api_url=sim.api, agent_url=sim.agent, retry_policy=FAST) as gen:
        xlsx = await gen.global_variables.template()
        assert xlsx[:2] == b"PK" and gen.dialect == "legacy"
    assert await _404s(sim) == 1


async def test_a_401_proves_nothing_about_the_prefix(legacy_sim: Sim, sim: Sim) -> None:
    for server in (sim, legacy_sim):
        async with GenClient(
            "gen_wrong_key_000000", api_url=server.api, agent_url=server.agent, retry_policy=FAST
        ) as bad:
            with pytest.raises(E.AuthenticationError):
                await bad.engines.get(1, AGENT)
            assert bad.dialect is None  # still unknown: auth may come before routing
    # today's server authenticates first (no fallback); the old one routes first
    assert await _404s(sim) == 0 and await _404s(legacy_sim) == 1


async def test_missing_engine_before_the_prefix_is_known(sim: Sim, gen: GenClient) -> None:
    # Both prefixes 404: the resource is missing (or not ours) — the error says so
    # and the session has learned nothing yet.
    with pytest.raises(E.NotFoundError) as info:
        await gen.engines.get(987654, AGENT)
    assert info.value.route == "GET /v1/vidsheet/{id}" and "987654" in str(info.value)
    assert gen.dialect is None and gen.dialect_misses == 1
    eng = await gen.templates.clone("tiktok-vo-broll", AGENT)
    await gen.engines.get(eng.id, AGENT)
    assert gen.dialect == "today"


async def test_forced_dialect(sim: Sim, legacy_sim: Sim) -> None:
    async with GenClient(
        KEY, api_url=legacy_sim.api, agent_url=legacy_sim.agent, retry_policy=FAST, dialect="legacy"
    ) as old:
        eng = await old.templates.clone("tiktok-vo-broll", AGENT)
        await old.engines.get(eng.id, AGENT)
    assert await _404s(legacy_sim) == 0
    async with GenClient(
        KEY, api_url=sim.api, agent_url=sim.agent, retry_policy=FAST, dialect="legacy"
    ) as wrong:
        eng = await wrong.templates.clone("tiktok-vo-broll", AGENT)
        with pytest.raises(E.NotFoundError) as info:  # forced: no fallback
            await wrong.engines.get(eng.id, AGENT)
    assert "/v1/vidsheet" in str(info.value)  # the server names where the engine API moved
    with pytest.raises(E.GenError):
        GenClient(KEY, api_url=sim.api, dialect="modern")  # type: ignore[arg-type]
