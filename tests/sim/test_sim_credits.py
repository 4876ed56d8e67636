"""Credits (charge on accept, refund on stop/failure, re-charge on continue) and
Idempotency-Key (a repeated key replays the first answer and charges nothing)."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
from layerhelp import fill_layers
from simhelp import (
    AGENT,
    KEY,
    SimFactory,
    admin,
    call,
    cell_url,
    cells_of,
    clone,
    eng_url,
    ledger,
    poll,
)

from genbatch.sim.serve import SimServer

TEXT = {"generation_type": "text", "data": {"prompt": "Write a hook about tacos"}}
VIDEO = {
    "generation_type": "video_from_text",
    "data": {"prompt": "taco truck", "model": "veo_3", "aspect_ratio": "9:16", "duration": 5},
}


def gen_entry(book: dict[str, Any], gid: int) -> dict[str, Any]:
    entry: dict[str, Any] = next(g for g in book["generations"] if g["id"] == gid)
    return entry


async def test_prices_charged_exactly(http: aiohttp.ClientSession) -> None:
    eng = await clone(http)
    await fill_layers(http, eng)  # a render needs content in every layer; filling is free
    start = await ledger(http)
    t = await call(http, "POST", cell_url(eng, "hook", "generate"), 201, json=TEXT)
    v = await call(http, "POST", cell_url(eng, "shot_1", "generate"), 201, json=VIDEO)
    r = await call(http, "POST", cell_url(eng, "final_video", "render"), 201)
    book = await ledger(http)
    # Published typical costs: Gemini 2.0 Flash text 2, 5 s of Veo 3 at 60/s, a render 50.
    assert book["credits"]["charged"] - start["credits"]["charged"] == 2 + 300 + 50
    assert book["credits"]["balance"] == start["credits"]["balance"] - 352
    assert [gen_entry(book, g["generation_id"])["credits"] for g in (t, v, r)] == [2, 300, 50]
    assert [gen_entry(book, g["generation_id"])["type"] for g in (t, v, r)] == [
        "text",
        "video_from_text",
        "render",
    ]
    entry = gen_entry(book, v["generation_id"])
    assert entry["engine_id"] == eng["id"] and entry["model"] == "veo_3"
    assert entry["row_id"] == eng["spreadsheet_rows"][0]["id"] and entry["created_at"] > 0
    for g in (t, v, r):
        await poll(http, f"/v1/generations/{g['generation_id']}")
    book = await ledger(http)
    assert all(gen_entry(book, g["generation_id"])["completed_at"] for g in (t, v, r))
    assert book["credits"]["refunded"] == start["credits"]["refunded"]  # nothing failed


async def test_failure_refund_settles_without_polling(sim_factory: SimFactory) -> None:
    sim = await sim_factory(faults="gen_fail:1")
    async with aiohttp.ClientSession(base_url=sim.url, headers={"X-API-Key": KEY}) as http:
        eng = await clone(http)
        accepted = await call(http, "POST", cell_url(eng, "shot_1", "generate"), 201, json=VIDEO)
        gid = accepted["generation_id"]
        due = sim.world.generations[gid].due_at
        await asyncio.sleep(max(0.0, due - sim.world.clock.now()) + 0.01)
        book = await ledger(http)  # nobody ever polled the generation
    entry = gen_entry(book, gid)
    assert entry["status"] == "failed" and entry["completed_at"] is not None
    assert book["credits"]["charged"] == 300 and book["credits"]["refunded"] == 300
    assert book["credits"]["balance"] == 100_000
    kinds = [(e["kind"], e["reason"]) for e in book["credits"]["events"]]
    assert kinds == [("charge", "generate"), ("refund", "failed")]


async def test_stop_refunds_and_continue_recharges(http: aiohttp.ClientSession) -> None:
    eng = await clone(http)
    accepted = await call(http, "POST", cell_url(eng, "shot_1", "generate"), 201, json=VIDEO)
    gid = accepted["generation_id"]
    stopped = await call(http, "POST", f"/v1/generations/{gid}/stop", 200)
    assert stopped["status"] == "stopped"
    err = await call(http, "POST", f"/v1/generations/{gid}/stop", 422)
    assert err["error_code"] == "job_cannot_be_stopped"  # the vendor's code for "already over"
    book = await ledger(http)
    assert (book["credits"]["charged"], book["credits"]["refunded"]) == (300, 300)
    await call(http, "POST", f"/v1/generations/{gid}/continue", 200)
    done = await poll(http, f"/v1/generations/{gid}")
    assert done["status"] == "completed" and done["output_resources"]
    book = await ledger(http)
    assert (book["credits"]["charged"], book["credits"]["refunded"]) == (600, 300)
    assert book["credits"]["balance"] == 100_000 - 300
    err = await call(http, "POST", f"/v1/generations/{gid}/continue", 422)
    assert "completed" in err["error"]


async def test_cell_read_carries_latest_generation(http: aiohttp.ClientSession) -> None:
    eng = await clone(http)
    first = await call(http, "POST", cell_url(eng, "hook", "generate"), 201, json=TEXT)
    cell = await call(http, "GET", cell_url(eng, "hook"), 200)
    # today's cell: the history in user_jobs (pending ones included), the newest as default
    assert cell["default_user_job"]["id"] == first["generation_id"]
    assert cell["default_user_job"]["status"] in ("pending", "processing")
    await poll(http, f"/v1/generations/{first['generation_id']}")
    second = await call(http, "POST", cell_url(eng, "hook", "generate"), 201)  # stored card
    cell = await call(http, "GET", cell_url(eng, "hook"), 200)
    assert cell["default_user_job"]["id"] == second["generation_id"] != first["generation_id"]
    assert [j["id"] for j in cell["user_jobs"]] == [first["generation_id"], second["generation_id"]]
    done = await poll(http, f"/v1/generations/{second['generation_id']}")
    cell = await call(http, "GET", cell_url(eng, "hook"), 200)
    assert cell["default_user_job"]["status"] == "completed" and cell["value"] == done["result"]
    read = await call(http, "GET", eng_url(eng), 200)
    in_engine = next(c for c in cells_of(read) if c["id"] == cell["id"])
    assert in_engine["default_user_job"]["id"] == second["generation_id"]


async def test_idempotency_key_charges_once(http: aiohttp.ClientSession) -> None:
    eng = await clone(http)
    url = cell_url(eng, "shot_1", "generate")
    headers = {"Idempotency-Key": "row-7-shot_1"}
    a = await call(http, "POST", url, 201, json=VIDEO, headers=headers)
    async with http.post(url, json=VIDEO, headers=headers) as r:
        assert r.status == 201 and r.headers["Idempotent-Replayed"] == "true"
        b = await r.json()
    assert a == b
    # concurrent repeats of a fresh key: still one generation
    same = {"Idempotency-Key": "row-8"}
    c = await asyncio.gather(
        *(call(http, "POST", url, 201, json=VIDEO, headers=same) for _ in range(5))
    )
    assert len({x["generation_id"] for x in c}) == 1
    book = await ledger(http)
    assert len(book["generations"]) == 2 and book["credits"]["charged"] == 600
    keys = {g["id"]: g["idempotency_key"] for g in book["generations"]}
    assert keys == {a["generation_id"]: "row-7-shot_1", c[0]["generation_id"]: "row-8"}
    # render, clone, publish and agent runs honour the key too
    await fill_layers(http, eng)  # a render needs content in every layer; filling is free
    rh = {"Idempotency-Key": "render-1"}
    r1 = await call(http, "POST", cell_url(eng, "final_video", "render"), 201, headers=rh)
    r2 = await call(http, "POST", cell_url(eng, "final_video", "render"), 201, headers=rh)
    assert r1 == r2
    ch = {"Idempotency-Key": "clone-1"}
    clone_url = "/v1/templates/spreadsheets/tiktok-montage/clone"
    e1 = await call(http, "POST", clone_url, 201, json={"agent_id": AGENT}, headers=ch)
    e2 = await call(http, "POST", clone_url, 201, json={"agent_id": AGENT}, headers=ch)
    assert e1["id"] == e2["id"]
    run = {"agent_id": AGENT, "message": "Generate 2 ideas"}
    k = {"Idempotency-Key": "run-1"}
    assert await call(http, "POST", "/v1/agent/run", 201, json=run, headers=k) == await call(
        http, "POST", "/v1/agent/run", 201, json=run, headers=k
    )
    book = await ledger(http)
    assert book["credits"]["charged"] == 600 + 50 and len(book["runs"]) == 1  # + one render


async def test_idempotency_is_per_api_key_and_errors_are_not_cached(
    http: aiohttp.ClientSession, sim: SimServer
) -> None:
    eng = await clone(http)
    url = cell_url(eng, "shot_1", "generate")
    await admin(http, balance=0)
    k = {"Idempotency-Key": "shared"}
    err = await call(http, "POST", url, 422, json=VIDEO, headers=k)
    assert err["error_code"] == "usable_gen_credit_required"
    await admin(http, balance=1000)  # two 5 s Veo 3 clips (300 each)
    a = await call(http, "POST", url, 201, json=VIDEO, headers=k)  # the 422 was not remembered
    async with aiohttp.ClientSession(base_url=sim.url, headers={"X-API-Key": "k1"}) as other:
        b = await call(other, "POST", url, 201, json=VIDEO, headers=k)
    assert a["generation_id"] != b["generation_id"]


async def test_seed_makes_runs_reproducible(sim_factory: SimFactory) -> None:
    outcomes = []
    for _ in range(2):
        sim = await sim_factory(seed=42, faults="gen_fail:0.5")
        async with aiohttp.ClientSession(base_url=sim.url, headers={"X-API-Key": KEY}) as http:
            eng = await clone(http)
            for _ in range(6):
                await call(http, "POST", cell_url(eng, "shot_1", "generate"), 201, json=VIDEO)
        gens = sim.world.generations.values()
        outcomes.append(
            [(g.id, round(g.due_at - g.created_at, 9), g.fail, g.out_name) for g in gens]
        )
    assert outcomes[0] == outcomes[1]
    assert {f for _, _, f, _ in outcomes[0]} == {True, False}


async def test_price_overrides_are_charged(sim_factory: SimFactory) -> None:
    sim = await sim_factory(prices=(("veo_3", 400.0), ("render", 20.0)))
    async with aiohttp.ClientSession(base_url=sim.url, headers={"X-API-Key": KEY}) as http:
        eng = await clone(http)
        v = await call(http, "POST", cell_url(eng, "shot_1", "generate"), 201, json=VIDEO)
        book = await ledger(http)
    assert gen_entry(book, v["generation_id"])["credits"] == 400
