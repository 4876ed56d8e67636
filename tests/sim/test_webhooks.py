"""Webhooks for real: an agent's webhook_url (loopback only) hears every status change of
that agent's generations, without anyone polling and without slowing the API down;
test_webhook / test_callback POST for real and report what happened."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from simhelp import AGENT, KEY, SimFactory, call, cell_url, clone

from genbatch.sim.serve import SimServer
from genbatch.sim.webhooks import SIM_WEBHOOK_EVENT

CONFIG = f"/v1/agents/{AGENT}/automation_config"
TEXT = {"generation_type": "text", "data": {"prompt": "Write a hook about tacos"}}
VIDEO = {
    "generation_type": "video_from_text",
    "data": {"prompt": "taco truck", "model": "veo_3", "aspect_ratio": "9:16", "duration": 5},
}
TERMINAL = ("completed", "failed", "stopped")


@dataclass
class Receiver:
    """A real HTTP endpoint on 127.0.0.1 that records what it is sent."""

    url: str
    bodies: list[dict[str, Any]] = field(default_factory=list)
    status: int = 200
    delay: float = 0.0

    def events(self, generation_id: int) -> list[str]:
        return [
            b["generation"]["status"]
            for b in self.bodies
            if b.get("generation") and b["generation"]["id"] == generation_id
        ]

    async def wait_for(self, generation_id: int, status: str, limit: float = 10.0) -> None:
        deadline = time.monotonic() + limit
        while status not in self.events(generation_id):
            assert time.monotonic() < deadline, (generation_id, status, self.bodies)
            await asyncio.sleep(0.01)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver(url="")

    async def hook(request: web.Request) -> web.Response:
        rec.bodies.append(await request.json())
        if rec.delay:
            await asyncio.sleep(rec.delay)
        return web.Response(status=rec.status)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    rec.url = f"http://127.0.0.1:{port}/hook"
    yield rec
    await runner.cleanup()


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


async def configure(http: aiohttp.ClientSession, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = await call(
        http, "PATCH", CONFIG, 200, json={"automation_config": fields}
    )
    return body


async def test_every_status_change_reaches_the_webhook_without_polling(
    sim_factory: SimFactory, receiver: Receiver
) -> None:
    # time_scale 0.01: a video takes 0.6-1.2 s, its first 10 % pending
    sim = await sim_factory(time_scale=0.01)
    async with aiohttp.ClientSession(base_url=sim.url, headers={"X-API-Key": KEY}) as http:
        await _every_status_change(http, sim, receiver)


async def _every_status_change(
    http: aiohttp.ClientSession, sim: SimServer, receiver: Receiver
) -> None:
    await configure(http, webhook_url=receiver.url)
    eng = await clone(http)
    accepted = await call(http, "POST", cell_url(eng, "shot_1", "generate"), 201, json=VIDEO)
    gid = accepted["generation_id"]
    # nobody reads the generation: the simulator's own timers notice it finish
    await receiver.wait_for(gid, "completed")
    seen = receiver.events(gid)
    assert seen == ["pending", "processing", "completed"], seen
    body = receiver.bodies[-1]
    assert set(body) == {"event", "generation"} and body["event"] == SIM_WEBHOOK_EVENT
    read = await call(http, "GET", f"/v1/generations/{gid}", 200)
    assert body["generation"] == read  # the same object GET /v1/generations/:id answers

    # stop and continue are status changes too
    again = await call(http, "POST", cell_url(eng, "shot_2", "generate"), 201, json=VIDEO)
    gid2 = again["generation_id"]
    await call(http, "POST", f"/v1/generations/{gid2}/stop", 200)
    await receiver.wait_for(gid2, "stopped")
    await call(http, "POST", f"/v1/generations/{gid2}/continue", 200)
    await receiver.wait_for(gid2, "completed")
    seen2 = receiver.events(gid2)
    assert seen2[0] == "pending" and seen2[-1] == "completed" and "stopped" in seen2
    assert seen2[seen2.index("stopped") + 1] == "pending"  # continued: pending again
    await sim.world.webhooks.drain()
    assert sim.world.webhooks.failed == 0


async def test_failures_are_told_too(sim_factory: SimFactory, receiver: Receiver) -> None:
    sim = await sim_factory(faults="gen_fail:1")
    async with aiohttp.ClientSession(base_url=sim.url, headers={"X-API-Key": KEY}) as http:
        await configure(http, webhook_url=receiver.url)
        eng = await clone(http)
        accepted = await call(http, "POST", cell_url(eng, "hook", "generate"), 201, json=TEXT)
        await receiver.wait_for(accepted["generation_id"], "failed")


async def test_only_the_agents_own_generations_are_sent(
    http: aiohttp.ClientSession, receiver: Receiver
) -> None:
    await configure(http, webhook_url=receiver.url)
    other = await call(http, "POST", "/v1/agents", 201, json={"agent": {"name": "Second"}})
    theirs = await call(
        http,
        "POST",
        "/v1/templates/spreadsheets/tiktok-montage/clone",
        201,
        json={"agent_id": other["id"]},
    )
    mine = await clone(http)
    url = cell_url(theirs, "hook", "generate").replace(
        f"agent_id={AGENT}", f"agent_id={other['id']}"
    )
    g_theirs = await call(http, "POST", url, 201, json=TEXT)
    g_mine = await call(http, "POST", cell_url(mine, "hook", "generate"), 201, json=TEXT)
    await receiver.wait_for(g_mine["generation_id"], "completed")
    read = await call(http, "GET", f"/v1/generations/{g_theirs['generation_id']}", 200)
    assert read["status"] in TERMINAL
    assert receiver.events(g_theirs["generation_id"]) == []


@pytest.mark.slow  # waits on the wall clock or a subprocess
async def test_a_slow_receiver_never_slows_the_api(
    http: aiohttp.ClientSession, sim: SimServer, receiver: Receiver
) -> None:
    receiver.delay = 0.5
    await configure(http, webhook_url=receiver.url)
    eng = await clone(http)
    started = time.monotonic()
    ids = []
    for column in ("shot_1", "shot_2", "shot_3"):
        ids.append(
            (await call(http, "POST", cell_url(eng, column, "generate"), 201, json=VIDEO))[
                "generation_id"
            ]
        )
        await call(http, "GET", f"/v1/generations/{ids[-1]}", 200)
    assert time.monotonic() - started < 1.0  # 3 blocking deliveries would take 1.5 s
    for gid in ids:
        await receiver.wait_for(gid, "completed", limit=20.0)
    for gid in ids:  # one in-order queue per URL: each generation's updates stay in order
        seen = receiver.events(gid)
        assert seen[0] == "pending" and seen[-1] == "completed", seen
    await sim.world.webhooks.drain()


async def test_webhook_and_callback_urls_must_stay_on_this_machine(
    http: aiohttp.ClientSession,
) -> None:
    for bad in (
        "https://example.com/hook",
        "http://10.0.0.1/hook",
        "http://192.168.1.20:8080/hook",
        "http://[2001:db8::1]/hook",
        "http://127.0.0.1.nip.io/hook",
        "ftp://127.0.0.1/hook",
        "127.0.0.1/hook",
    ):
        for key in ("webhook_url", "callback_url"):
            err = await call(http, "PATCH", CONFIG, 422, json={"automation_config": {key: bad}})
            assert err["error_code"] == "validation_error" and key in err["error"]
    for good in ("http://127.0.0.1:9000/h", "http://localhost:8000/h", "https://[::1]:8443/h"):
        assert (await configure(http, webhook_url=good))["webhook_url"] == good
    assert (await configure(http, webhook_url=None))["webhook_url"] is None  # null clears it
    got = await call(http, "GET", CONFIG, 200)
    assert got == {"webhook_url": None, "callback_url": None, "polling_enabled": False}


async def test_test_webhook_and_test_callback_report_the_real_outcome(
    http: aiohttp.ClientSession, receiver: Receiver
) -> None:
    for which, key in (("test_webhook", "webhook_url"), ("test_callback", "callback_url")):
        err = await call(http, "POST", f"{CONFIG}/{which}", 422)
        assert err["error_code"] == "validation_error" and key in err["error"]
        await configure(http, **{key: receiver.url})
        receiver.status = 200
        assert await call(http, "POST", f"{CONFIG}/{which}", 200) == {"success": True}
        assert receiver.bodies[-1] == {"event": "test", "generation": None}
        receiver.status = 500
        failed = await call(http, "POST", f"{CONFIG}/{which}", 200)
        assert failed == {"success": False, "error": "the endpoint answered HTTP 500"}
        await configure(http, **{key: f"http://127.0.0.1:{closed_port()}/hook"})
        refused = await call(http, "POST", f"{CONFIG}/{which}", 200)
        assert refused == {"success": False, "error": "connection refused"}
    assert len(receiver.bodies) == 4  # two real POSTs per endpoint reached the receiver
