"""Rate limits: a token bucket per API key → 429 rate_limited with Retry-After and
X-RateLimit-* (plus RateLimit-Policy), or none of those headers (``rate_headers``
off), or no limit at all (``rate`` None); CDN, storage and admin paths are not
limited; ``capacity`` slows answers down instead of refusing them."""

from __future__ import annotations

import asyncio
import math

import aiohttp
import pytest
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


RATE_HEADERS = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")


async def _burst(http: aiohttp.ClientSession, n: int) -> list[tuple[int, dict[str, str]]]:
    """``n`` concurrent GET /v1/me: (status, headers) of each."""

    async def one() -> tuple[int, dict[str, str]]:
        async with http.get("/v1/me") as r:
            await r.read()
            return r.status, dict(r.headers)

    return list(await asyncio.gather(*(one() for _ in range(n))))


async def test_no_rate_limit_means_no_429_and_no_rate_headers(sim_factory: SimFactory) -> None:
    """rate None (``--rate 0``, profile ``today``): no bucket at all, headers on or off."""
    sim = await sim_factory(rate=None, burst=1, rate_headers=True)
    async with aiohttp.ClientSession(base_url=sim.url, headers={"X-API-Key": KEY}) as http:
        results = await _burst(http, 300)
        config = await call(http, "GET", "/_sim/ledger", 200)
    assert [s for s, _ in results] == [200] * 300
    for _, headers in results:
        assert not {*RATE_HEADERS, "RateLimit-Policy", "Retry-After"} & set(headers)
    assert config["config"]["rate"] is None and config["requests"]["by_status"] == {"200": 300}


async def test_rate_headers_off_still_says_retry_after(sim_factory: SimFactory) -> None:
    """A limit that arrives unannounced (profile ``limit-60``): 429 + Retry-After, nothing else."""
    sim = await sim_factory(rate=2.0, burst=3, rate_headers=False)
    async with aiohttp.ClientSession(base_url=sim.url, headers={"X-API-Key": KEY}) as http:
        results = await _burst(http, 10)
    statuses = [s for s, _ in results]
    assert statuses.count(200) == 3 and statuses.count(429) == 7
    for status, headers in results:
        assert not {*RATE_HEADERS, "RateLimit-Policy"} & set(headers)
        assert ("Retry-After" in headers) == (status == 429)
        if status == 429:
            assert int(headers["Retry-After"]) >= 1


@pytest.mark.parametrize(("rate", "policy"), [(60.0, "60;w=1"), (2.5, "2.5;w=1")])
async def test_rate_headers_on_carry_the_policy(
    sim_factory: SimFactory, rate: float, policy: str
) -> None:
    """``rate_headers`` (the default): X-RateLimit-* and RateLimit-Policy on every answer."""
    sim = await sim_factory(rate=rate, burst=2, rate_headers=True)
    async with aiohttp.ClientSession(base_url=sim.url, headers={"X-API-Key": KEY}) as http:
        results = await _burst(http, 5)
    assert sorted(s for s, _ in results) == [200, 200, 429, 429, 429]
    for _, headers in results:
        assert headers["RateLimit-Policy"] == policy
        assert headers["X-RateLimit-Limit"] == "2"


async def test_live_config_removes_and_restores_the_limit(sim_factory: SimFactory) -> None:
    sim = await sim_factory(rate=1.0, burst=1)
    async with aiohttp.ClientSession(base_url=sim.url, headers={"X-API-Key": KEY}) as http:
        await call(http, "GET", "/v1/me", 200)
        await call(http, "GET", "/v1/me", 429)
        assert (await call(http, "POST", "/_sim/config", 200, json={"rate": 0}))["rate"] is None
        assert [s for s, _ in await _burst(http, 20)] == [200] * 20
        cfg = await call(http, "POST", "/_sim/config", 200, json={"rate": 1, "job_cap": 4})
        assert cfg["rate"] == 1 and cfg["job_cap"] == 4 and sim.world.gens.job_cap == 4
        statuses = [s for s, _ in await _burst(http, 5)]
        assert 429 in statuses  # a limit again (a fresh bucket, burst 1)
        err = await call(http, "POST", "/_sim/config", 422, json={"job_cap": 1.5})
        assert "job_cap" in err["error"]
        cfg = await call(http, "POST", "/_sim/config", 200, json={"job_cap": 0})
        assert cfg["job_cap"] is None and sim.world.gens.job_cap is None


async def test_capacity_makes_answers_queue(sim_factory: SimFactory) -> None:
    """capacity 200 req/s: 60 requests at once hold the virtual server 0.3 s, answered
    one after another, so the answer times climb; no 429, no refusal."""
    sim = await sim_factory(capacity=200.0)
    async with aiohttp.ClientSession(base_url=sim.url, headers={"X-API-Key": KEY}) as http:
        await call(http, "GET", "/v1/me", 200)  # warm the connection path
        await asyncio.sleep(0.02)  # ...and let the server idle again
        loop = asyncio.get_running_loop()
        start = loop.time()

        async def one() -> tuple[int, float]:
            async with http.get("/v1/me") as r:
                await r.read()
                return r.status, loop.time() - start

        results = await asyncio.gather(*(one() for _ in range(60)))
        total = loop.time() - start
        ledger = await call(http, "GET", "/_sim/ledger", 200)
    assert [s for s, _ in results] == [200] * 60
    times = sorted(t for _, t in results)
    assert total >= 60 / 200 * 0.95  # 0.3 s of service, whatever the client's speed
    # Served one after another: 59 services of 5 ms lie between the first answer
    # and the last, however late a busy machine lets the first one go out.
    assert times[-1] - times[0] >= 0.28
    assert times[-1] - times[len(times) // 2] >= 0.1  # they climb
    assert ledger["config"]["capacity"] == 200.0
