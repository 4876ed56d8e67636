"""The fault proxy itself, with a real aiohttp server behind it.

Each toxic is shown to do what it says on the wire, as an aiohttp client sees
it — the same stack genbatch uses — and the server side confirms whether the
request reached the handler (the side-effect question every case turns on).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
import pytest
from aiohttp import web
from faultproxy import FaultProxy, ProxyThread, Toxic, _rewrite

pytestmark = pytest.mark.reliability

BIG = bytes(range(256)) * 400  # 102,400 bytes


@dataclass
class Backend:
    url: str
    port: int
    hits: list[str] = field(default_factory=list)


@pytest.fixture
async def backend() -> AsyncIterator[Backend]:
    holder: list[Backend] = []

    async def small(request: web.Request) -> web.Response:
        holder[0].hits.append(f"{request.method} {request.path}")
        return web.json_response({"ok": True, "self": holder[0].url})

    async def big(request: web.Request) -> web.Response:
        holder[0].hits.append(f"{request.method} {request.path}")
        return web.Response(body=BIG, content_type="application/octet-stream")

    async def post(request: web.Request) -> web.Response:
        await request.read()
        holder[0].hits.append(f"{request.method} {request.path}")
        return web.json_response({"created": len(holder[0].hits)}, status=201)

    app = web.Application()
    app.router.add_get("/small", small)
    app.router.add_get("/big", big)
    app.router.add_post("/paid", post)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    holder.append(Backend(f"http://127.0.0.1:{port}", port))
    yield holder[0]
    await runner.cleanup()


@pytest.fixture
async def proxy(backend: Backend) -> AsyncIterator[FaultProxy]:
    async with FaultProxy(("127.0.0.1", backend.port), seed=1) as p:
        yield p


async def _get(url: str, limit_s: float = 5.0) -> tuple[int, bytes]:
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=limit_s)) as s,
        s.get(url) as r,
    ):
        return r.status, await r.read()


async def test_passthrough_is_byte_exact(proxy: FaultProxy, backend: Backend) -> None:
    status, body = await _get(proxy.url + "/big")
    assert (status, body) == (200, BIG)
    assert proxy.stats.connections == 1 and proxy.stats.bytes_down > len(BIG)
    assert backend.hits == ["GET /big"]
    assert proxy.stats.requests == [b"GET /big HTTP/1.1"]


async def test_latency_delays_every_answer(proxy: FaultProxy) -> None:
    proxy.add("latency", ms=150)
    started = time.monotonic()
    status, _ = await _get(proxy.url + "/small")
    assert status == 200
    assert time.monotonic() - started >= 0.14  # a lower bound: the delay really happened


async def test_reset_peer_at_accept_never_reaches_the_server(
    proxy: FaultProxy, backend: Backend
) -> None:
    proxy.add("reset_peer")
    with pytest.raises(aiohttp.ClientConnectionError):
        await _get(proxy.url + "/small")
    assert backend.hits == []


async def test_reset_peer_after_bytes_cuts_the_body(proxy: FaultProxy, backend: Backend) -> None:
    proxy.add("reset_peer", after_bytes=10_000)
    with pytest.raises((aiohttp.ClientPayloadError, aiohttp.ClientConnectionError)):
        await _get(proxy.url + "/big")
    assert backend.hits == ["GET /big"]  # the server did its part
    assert proxy.stats.bytes_down <= 10_000


async def test_timeout_swallows_the_answer_after_the_side_effect(
    proxy: FaultProxy, backend: Backend
) -> None:
    proxy.add("timeout", match=rb"^POST /paid")
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=0.5)) as s:
        with pytest.raises(TimeoutError):
            async with s.post(proxy.url + "/paid", json={"x": 1}) as r:
                await r.read()
    for _ in range(50):  # the server finishes on its own schedule
        if backend.hits:
            break
        await asyncio.sleep(0.01)
    assert backend.hits == ["POST /paid"]


async def test_timeout_after_bytes_stalls_mid_body(proxy: FaultProxy) -> None:
    proxy.add("timeout", match=rb"^GET /big", after_bytes=20_000)
    timeout = aiohttp.ClientTimeout(sock_read=0.3)
    async with aiohttp.ClientSession(timeout=timeout) as s, s.get(proxy.url + "/big") as r:
        assert r.status == 200
        with pytest.raises(TimeoutError):
            await r.read()
    assert proxy.stats.bytes_down == 20_000
    assert proxy.stats.heads[0].startswith(b"GET /big HTTP/1.1\r\n")


async def test_slicer_delivers_every_byte_in_small_slices(proxy: FaultProxy) -> None:
    proxy.add("slicer", size=4096, delay_ms=2)
    started = time.monotonic()
    status, body = await _get(proxy.url + "/big")
    assert (status, body) == (200, BIG)
    assert time.monotonic() - started >= (len(BIG) // 4096 - 1) * 0.002 * 0.9


async def test_limit_data_closes_mid_body(proxy: FaultProxy) -> None:
    proxy.add("limit_data", nbytes=5_000)
    with pytest.raises(aiohttp.ClientPayloadError):
        await _get(proxy.url + "/big")
    assert proxy.stats.bytes_down == 5_000


async def test_down_refuses_and_up_listens_again_on_the_same_port(
    proxy: FaultProxy, backend: Backend
) -> None:
    port = proxy.port
    await proxy.down()
    with pytest.raises(aiohttp.ClientConnectorError):
        await _get(proxy.url + "/small")
    assert backend.hits == []
    await proxy.up()
    assert proxy.port == port
    assert (await _get(proxy.url + "/small"))[0] == 200


async def test_match_faults_only_the_matching_request_on_a_keepalive_connection(
    proxy: FaultProxy, backend: Backend
) -> None:
    # Downstream (the default): the request passes, the answer is reset —
    # the "side effect done, no answer" case.
    toxic = proxy.add("reset_peer", match=rb"^POST /paid", times=1)
    async with aiohttp.ClientSession() as s:
        async with s.get(proxy.url + "/small") as r:
            assert r.status == 200
        with pytest.raises(aiohttp.ClientConnectionError):
            async with s.post(proxy.url + "/paid", json={}) as r:
                await r.read()
        async with s.post(proxy.url + "/paid", json={}) as r:  # times=1: spent
            assert r.status == 201
    assert toxic.hits == 1
    assert backend.hits == ["GET /small", "POST /paid", "POST /paid"]


async def test_upstream_reset_stops_the_request_before_the_server(
    proxy: FaultProxy, backend: Backend
) -> None:
    proxy.add("reset_peer", "upstream", match=rb"^POST /paid")
    async with aiohttp.ClientSession() as s:
        with pytest.raises(aiohttp.ClientConnectionError):
            async with s.post(proxy.url + "/paid", json={}) as r:
                await r.read()
    assert backend.hits == []


async def test_respond_answers_for_the_server(proxy: FaultProxy, backend: Backend) -> None:
    proxy.add(
        "respond",
        "upstream",
        match=rb"^GET /small",
        response=b"HTTP/1.1 307 Temporary Redirect\r\nLocation: http://127.0.0.1:9/x\r\n"
        b"Content-Length: 0\r\nConnection: close\r\n\r\n",
    )
    async with (
        aiohttp.ClientSession() as s,
        s.get(proxy.url + "/small", allow_redirects=False) as r,
    ):
        assert r.status == 307 and r.headers["Location"].endswith(":9/x")
    assert backend.hits == []


async def test_respond_downstream_replaces_the_answer_after_the_side_effect(
    proxy: FaultProxy, backend: Backend
) -> None:
    body = b'{"error": "boom", "error_code": "internal_error"}'
    proxy.add(
        "respond",
        match=rb"^POST /paid",
        response=b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body),
    )
    async with aiohttp.ClientSession() as s, s.post(proxy.url + "/paid", json={}) as r:
        assert r.status == 500 and await r.read() == body
    assert backend.hits == ["POST /paid"]


async def test_toxicity_is_a_seeded_probability(backend: Backend) -> None:
    async def hits_for(seed: int) -> list[int]:
        async with FaultProxy(("127.0.0.1", backend.port), seed=seed) as p:
            t = p.add("reset_peer", toxicity=0.5)
            out = []
            for _ in range(12):
                try:
                    await _get(p.url + "/small")
                    out.append(0)
                except aiohttp.ClientConnectionError:
                    out.append(1)
            # aiohttp itself retries an idempotent GET once on a fresh
            # connection, so hits count reset connections, not failed GETs.
            assert sum(out) <= t.hits < p.stats.connections
            return [*out, t.hits]

    first = await hits_for(5)
    assert first == await hits_for(5)  # reproducible
    assert 0 < first[-1] < 12


async def test_rewrite_points_advertised_urls_at_the_proxy(backend: Backend) -> None:
    old = f"127.0.0.1:{backend.port}".encode()
    async with FaultProxy(("127.0.0.1", backend.port), rewrite_upstream=True) as p:
        assert p.rewrite == (old, p.hostport)
        status, body = await _get(p.url + "/small")
        assert status == 200 and p.hostport in body and old not in body


def test_rewrite_carries_a_match_split_across_chunks() -> None:
    old, new = b"127.0.0.1:41234", b"127.0.0.1:52345"
    first, carry = _rewrite(b'{"url": "http://127.0.0', old, new)
    assert first == b'{"url": "http://' and carry == b"127.0.0"
    rest, carry = _rewrite(carry + b'.1:41234/cdn/x"}', old, new)
    assert first + rest == b'{"url": "http://127.0.0.1:52345/cdn/x"}' and carry == b""


def test_toxic_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        Toxic("bandwidth")
    with pytest.raises(ValueError):
        Toxic("respond", "upstream")  # nothing to answer with
    with pytest.raises(ValueError):
        Toxic("latency", toxicity=1.5)


async def test_thread_proxy_is_controllable_from_another_thread(backend: Backend) -> None:
    proxy = ProxyThread(("127.0.0.1", backend.port))
    try:
        assert (await _get(proxy.url + "/small"))[0] == 200
        proxy.add("limit_data", nbytes=1_000, name="cut")
        with pytest.raises(aiohttp.ClientPayloadError):
            await _get(proxy.url + "/big")
        proxy.remove("cut")
        proxy.down()
        with pytest.raises(aiohttp.ClientConnectorError):
            await _get(proxy.url + "/small")
        proxy.up()
        assert (await _get(proxy.url + "/big")) == (200, BIG)
    finally:
        proxy.close()
