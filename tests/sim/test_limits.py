"""Rate limits: a token bucket per API key → 429 rate_limited with Retry-After and
X-RateLimit-*; CDN, storage and admin paths are not limited."""

from __future__ import annotations

import asyncio
import math

import aiohttp
from simhelp import KEY, SimFactory, call


async def test_429_under_load_with_headers(sim_factory: SimFactory) -> None:
    sim = await sim_factory(rate=2.0, burst=5)
    async with aiohttp.ClientSession(base_url=sim.url, headers={"X-API-Key": KEY}) as http:

        async def one() -> tuple[int, dict[str, str], dict[str, str]]:
            async with http.get("/v1/me") as r:
                return r.status, dict(r.headers), await r.json()

        results = await asyncio.gather(*(one() for _ in range(20)))
    statuses = [s for s, _, _ in results]
    assert statuses.count(200) >= 5 and statuses.count(429) >= 10
    for status, headers, body in results:
        assert headers["X-RateLimit-Limit"] == "5"
        assert int(headers["X-RateLimit-Remaining"]) >= 0
        assert int(headers["X-RateLimit-Reset"]) >= 0
        if status == 429:
            assert body == {"error": body["error"], "error_code": "rate_limited"}
            retry = int(headers["Retry-After"])  # integer seconds
            assert 1 <= retry <= math.ceil(1 / 2.0) + 1
            assert headers["X-RateLimit-Remaining"] == "0"
    # the other key has its own bucket
    async with aiohttp.ClientSession(base_url=sim.url, headers={"X-API-Key": "k1"}) as other:
        await call(other, "GET", "/v1/me", 200)


async def test_unlimited_paths_and_ledger_counts(sim_factory: SimFactory) -> None:
    sim = await sim_factory(rate=1.0, burst=1)
    async with aiohttp.ClientSession(base_url=sim.url, headers={"X-API-Key": KEY}) as http:
        await call(http, "GET", "/v1/me", 200)
        await call(http, "GET", "/v1/me", 429)
        for _ in range(10):  # CDN and admin never answer 429
            async with http.get("/cdn/thumbnails/template_tiktok-montage.jpg") as r:
                assert r.status == 200
            await call(http, "GET", "/_sim/ledger", 200)
        ledger = await call(http, "GET", "/_sim/ledger", 200)
    req = ledger["requests"]
    assert req["by_route"]["GET /v1/me"] == 2
    assert req["by_route"]["GET /cdn/{folder}/{name}"] == 10
    assert req["by_status"]["429"] == 1
    assert ledger["requests"]["log"][0]["route"] == "GET /v1/me"
    assert KEY not in str(ledger)  # keys appear only hashed


async def test_rate_is_configurable_at_runtime(sim_factory: SimFactory) -> None:
    sim = await sim_factory(rate=1.0, burst=1)
    async with aiohttp.ClientSession(base_url=sim.url, headers={"X-API-Key": KEY}) as http:
        await call(http, "GET", "/v1/me", 200)
        await call(http, "GET", "/v1/me", 429)
        cfg = await call(http, "POST", "/_sim/config", 200, json={"rate": 1000, "burst": 50})
        assert cfg["rate"] == 1000 and cfg["burst"] == 50
        await asyncio.sleep(0.01)
        for _ in range(5):
            await call(http, "GET", "/v1/me", 200)


async def test_admin_reset_and_admin_key(sim_factory: SimFactory) -> None:
    sim = await sim_factory(admin_key="s3cret")
    async with aiohttp.ClientSession(base_url=sim.url, headers={"X-API-Key": KEY}) as http:
        denied = await call(http, "GET", "/_sim/ledger", 403)
        assert denied["error_code"] == "forbidden"
        admin = {"X-Sim-Admin-Key": "s3cret"}
        await call(http, "POST", "/v1/persisted_tokens", 201, json={"name": "x"})
        await call(http, "POST", "/_sim/config", 200, json={"balance": 5}, headers=admin)
        book = await call(http, "GET", "/_sim/ledger", 200, headers=admin)
        assert book["credits"]["balance"] == 5 and book["requests"]["total"] >= 3
        err = await call(
            http, "POST", "/_sim/config", 422, json={"faults": "bogus:1"}, headers=admin
        )
        assert "bogus" in err["error"]
        await call(http, "POST", "/_sim/reset", 200, headers=admin)
        book = await call(http, "GET", "/_sim/ledger", 200, headers=admin)
    assert book["credits"]["balance"] == 100_000 and book["generations"] == []
    assert book["requests"]["by_route"] == {"POST /_sim/reset": 1}  # counted once done
    assert sim.world.accounts.tokens == {}
