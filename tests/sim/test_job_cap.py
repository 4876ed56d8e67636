"""Job timing a profile changes: the per-workspace cap on running generations (a FIFO
queue reading ``pending``), latency ranges by model and type, and the timestamps
today's generation object carries when ``timestamps`` is on."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import aiohttp
from layerhelp import fill_layers
from simhelp import KEY, Http, SimFactory, call, cell_url, clone, ledger, poll

from genbatch.sim.clock import SIM_PENDING_FRACTION

TEXT = {"generation_type": "text", "data": {"prompt": "Write a hook"}}
#: Latency at time scale 1 and the scale: every text generation takes exactly 0.1 s.
TEXT_LATENCY = (("text", (10.0, 10.0)),)
SCALE = 0.01
STEP = 10.0 * SCALE


async def _submit(http: Http, n: int) -> list[int]:
    """``n`` text generations on ``n`` engines of the demo workspace, sent together."""
    engines = [await clone(http) for _ in range(n)]
    accepted = await asyncio.gather(
        *(call(http, "POST", cell_url(eng, "hook", "generate"), 201, json=TEXT) for eng in engines)
    )
    return [int(a["generation_id"]) for a in accepted]


def _entries(book: dict[str, Any], ids: list[int]) -> list[dict[str, Any]]:
    by_id = {g["id"]: g for g in book["generations"]}
    return [by_id[i] for i in ids]


async def test_job_cap_queues_fifo_and_queued_jobs_read_pending(sim_factory: SimFactory) -> None:
    sim = await sim_factory(job_cap=2, latency=TEXT_LATENCY, time_scale=SCALE)
    async with aiohttp.ClientSession(base_url=sim.url, headers={"X-API-Key": KEY}) as http:
        ids = await _submit(http, 5)
        first = [(await call(http, "GET", f"/v1/generations/{i}", 200))["status"] for i in ids]
        assert first[2:] == ["pending"] * 3, first  # queued: pending until a slot frees
        assert set(first[:2]) <= {"pending", "processing"}  # running (pending for 10 ms)
        most = 0
        while True:  # one ledger read is one instant: count what runs at once
            states = [g["status"] for g in _entries(await ledger(http), ids)]
            most = max(most, states.count("processing"))
            if states == ["completed"] * 5:
                break
            await asyncio.sleep(0.005)
        book = await ledger(http)
    assert most <= 2
    entries = _entries(book, ids)
    submitted = min(g["created_at"] for g in entries)
    starts = [g["started_at"] - submitted for g in entries]
    ends = [g["completed_at"] - submitted for g in entries]
    # FIFO: two at once, each next one when a slot frees; latency starts off the queue
    for got, want in zip(starts, (0, 0, STEP, STEP, 2 * STEP), strict=True):
        assert abs(got - want) < 0.05, starts
    assert ends == sorted(ends) and all(
        abs(e - s - STEP) < 1e-6 for s, e in zip(starts, ends, strict=True)
    )
    assert ends[4] >= 2 * STEP  # the fifth waited two latencies, then ran one


async def test_a_queued_job_reads_pending_until_its_slot_is_free(sim_factory: SimFactory) -> None:
    sim = await sim_factory(job_cap=1, latency=(("text", (30.0, 30.0)),), time_scale=SCALE)
    async with aiohttp.ClientSession(base_url=sim.url, headers={"X-API-Key": KEY}) as http:
        running, queued = await _submit(http, 2)
        gen = sim.world.generations[queued]
        seen = await poll(http, f"/v1/generations/{queued}", until=("processing",), limit=5)
        t = sim.world.clock.now()
        # it read pending while queued and for the pending fraction of its own latency
        assert seen["_seen"] == ["pending", "processing"]
        assert t >= gen.started_at + 0.3 * SIM_PENDING_FRACTION
        assert gen.started_at >= sim.world.generations[running].due_at - 1e-6
        # a job stopped while queued keeps its slot (docs/sim-assumptions.md, "job-cap")
        third = (await _submit(http, 1))[0]
        await call(http, "POST", f"/v1/generations/{third}/stop", 200)
        fourth = (await _submit(http, 1))[0]
    gens = sim.world.generations
    assert gens[fourth].started_at >= gens[third].started_at + 0.3 - 1e-6


async def test_renders_are_not_capped(sim_factory: SimFactory) -> None:
    sim = await sim_factory(job_cap=1, latency=(("text", (100.0, 100.0)),), time_scale=SCALE)
    async with aiohttp.ClientSession(base_url=sim.url, headers={"X-API-Key": KEY}) as http:
        eng = await clone(http)
        await fill_layers(http, eng)
        await _submit(http, 1)  # takes the one slot
        render = await call(http, "POST", cell_url(eng, "final_video", "render"), 201)
        queued = (await _submit(http, 1))[0]
    gens = sim.world.generations
    r = gens[int(render["generation_id"])]
    assert r.started_at == r.created_at  # the cap's one slot is taken: the render runs anyway
    assert gens[queued].started_at > gens[queued].created_at + 0.5  # a generation waits


async def test_latency_by_model_beats_the_type(sim_factory: SimFactory) -> None:
    sim = await sim_factory(
        latency=(("video_from_text", (100.0, 100.0)), ("veo_3", (1.0, 1.0))), time_scale=0.01
    )
    async with aiohttp.ClientSession(base_url=sim.url, headers={"X-API-Key": KEY}) as http:
        eng = await clone(http)
        took, ids = {}, {}
        for column, model in (("shot_1", "veo_3"), ("shot_2", "kling_1_6")):
            card = {"generation_type": "video_from_text", "data": {"prompt": "p", "model": model}}
            accepted = await call(http, "POST", cell_url(eng, column, "generate"), 201, json=card)
            ids[model] = int(accepted["generation_id"])
            gen = sim.world.generations[ids[model]]
            took[model] = gen.due_at - gen.started_at
        done = await poll(http, f"/v1/generations/{ids['veo_3']}", limit=5)
    assert abs(took["veo_3"] - 0.01) < 1e-6  # the model's range
    assert abs(took["kling_1_6"] - 1.0) < 1e-6  # no range of its own: the type's
    assert done["status"] == "completed"


def _at(stamp: str) -> float:
    assert stamp.endswith("Z") and len(stamp.split(".")[1]) == 4  # ms and Z
    return datetime.fromisoformat(stamp).timestamp()


async def test_timestamps_only_when_enabled(sim_factory: SimFactory) -> None:
    for enabled in (False, True):
        sim = await sim_factory(timestamps=enabled, latency=TEXT_LATENCY, time_scale=SCALE)
        async with aiohttp.ClientSession(base_url=sim.url, headers={"X-API-Key": KEY}) as http:
            (gid,) = await _submit(http, 1)
            early = await call(http, "GET", f"/v1/generations/{gid}", 200)
            done = await poll(http, f"/v1/generations/{gid}")
        assert done["status"] == "completed"
        if not enabled:
            assert "created_at" not in early and "updated_at" not in done
            continue
        created, updated = _at(done["created_at"]), _at(done["updated_at"])
        assert early["created_at"] == done["created_at"]
        # updated_at: the last status change (pending at creation, then processing)
        changed = {"pending": created, "processing": created + STEP * SIM_PENDING_FRACTION}
        assert abs(_at(early["updated_at"]) - changed[early["status"]]) < 0.002
        assert abs(updated - created - STEP) < 0.002  # completed: created + its latency
