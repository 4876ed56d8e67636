"""Each fault kind of ``--faults``, observed from the client side (and the ledger)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from typing import Any

import aiohttp
import pytest
from layerhelp import fill_layers
from simhelp import KEY, SimFactory, admin, call, cell_url, clone, ledger, poll

from genbatch.sim.config import SimConfig
from genbatch.sim.faults import parse_faults
from genbatch.sim.serve import SimServer

VIDEO = {
    "generation_type": "video_from_text",
    "data": {"prompt": "taco truck", "model": "veo_3", "aspect_ratio": "9:16", "duration": 5},
}


@pytest.mark.parametrize(
    ("kind", "status", "code"),
    [("500", 500, "internal_error"), ("503", 503, "service_unavailable")],
)
async def test_5xx_before_side_effect(
    http: aiohttp.ClientSession, kind: str, status: int, code: str
) -> None:
    eng = await clone(http)
    await admin(http, faults=f"{kind}:1")
    err = await call(http, "POST", cell_url(eng, "shot_1", "generate"), status, json=VIDEO)
    assert err["error_code"] == code
    book = await ledger(http)
    assert book["generations"] == [] and book["credits"]["charged"] == 0


async def test_reset_before_side_effect(http: aiohttp.ClientSession) -> None:
    eng = await clone(http)
    await admin(http, faults="reset:1")
    with pytest.raises(aiohttp.ClientConnectionError):
        await call(http, "POST", cell_url(eng, "shot_1", "generate"), json=VIDEO)
    await admin(http, faults="")
    book = await ledger(http)
    assert book["generations"] == [] and book["requests"]["by_status"]["reset"] == 1


async def test_reset_after_side_effect_then_idempotent_retry(http: aiohttp.ClientSession) -> None:
    eng = await clone(http)
    await admin(http, faults="reset_after:1")
    key = {"Idempotency-Key": "row-1-shot_1"}
    with pytest.raises(aiohttp.ClientConnectionError):
        await call(http, "POST", cell_url(eng, "shot_1", "generate"), json=VIDEO, headers=key)
    await admin(http, faults="")
    book = await ledger(http)
    assert len(book["generations"]) == 1 and book["credits"]["charged"] == 300  # it happened
    gid = book["generations"][0]["id"]
    cell = await call(http, "GET", cell_url(eng, "shot_1"), 200)
    # the reconcile read finds it: in the cell's history, as its default (today's cell)
    assert cell["default_user_job"]["id"] == gid and [j["id"] for j in cell["user_jobs"]] == [gid]
    retry = await call(
        http, "POST", cell_url(eng, "shot_1", "generate"), 201, json=VIDEO, headers=key
    )
    assert retry["generation_id"] == gid
    assert (await ledger(http))["credits"]["charged"] == 300


async def test_slow_delays_the_answer(http: aiohttp.ClientSession) -> None:
    await admin(http, faults="slow:1@0.5")
    with pytest.raises(asyncio.TimeoutError):
        await call(http, "GET", "/v1/me", timeout=aiohttp.ClientTimeout(total=0.1))
    await admin(http, faults="")
    await call(http, "GET", "/v1/me", 200)


async def test_gen_fail_fails_generations_and_renders(sim_factory: SimFactory) -> None:
    sim = await sim_factory(faults="gen_fail:1")
    async with aiohttp.ClientSession(base_url=sim.url, headers={"X-API-Key": KEY}) as http:
        eng = await clone(http)
        await fill_layers(http, eng)  # gen_fail:1 fails every generation: fill them instead
        g = await call(http, "POST", cell_url(eng, "shot_1", "generate"), 201, json=VIDEO)
        r = await call(http, "POST", cell_url(eng, "final_video", "render"), 201)
        for accepted in (g, r):
            done = await poll(http, f"/v1/generations/{accepted['generation_id']}")
            assert done["status"] == "failed" and done["failed_reason"]  # today's field name
            assert done["output_resources"] == []
        book = await ledger(http)
    assert book["credits"]["charged"] == 350 and book["credits"]["refunded"] == 350


async def test_truncate_cuts_cdn_body(http: aiohttp.ClientSession, sim: SimServer) -> None:
    url = f"{sim.url}/cdn/outputs/template_tiktok-montage_sample.mp4"
    async with aiohttp.ClientSession() as anon:
        async with anon.get(url) as r:
            full = await r.read()
        await admin(http, faults="truncate:1")
        async with anon.get(url) as r:
            assert int(r.headers["Content-Length"]) == len(full)
            with pytest.raises(aiohttp.ClientPayloadError):
                await r.read()


async def blob(http: aiohttp.ClientSession, payload: bytes) -> dict[str, Any]:
    md5 = base64.b64encode(hashlib.md5(payload).digest()).decode()
    body = {
        "blob": {
            "filename": "a.mp4",
            "byte_size": len(payload),
            "checksum": md5,
            "content_type": "video/mp4",
        }
    }
    result: dict[str, Any] = await call(http, "POST", "/v1/direct_upload", 200, json=body)
    return result


async def test_upload_expired_and_bad_digest(http: aiohttp.ClientSession) -> None:
    payload = b"x" * 1000
    await admin(http, faults="upload_expired:1")
    expired = await blob(http, payload)
    await admin(http, faults="bad_digest:1")
    digest = await blob(http, payload)
    async with aiohttp.ClientSession() as storage:
        up = expired["direct_upload"]
        async with storage.put(up["url"], data=payload, headers=up["headers"]) as r:
            text = await r.text()
            assert r.status == 403 and "<Code>AccessDenied</Code>" in text and "expired" in text
        up = digest["direct_upload"]
        async with storage.put(up["url"], data=payload, headers=up["headers"]) as r:
            assert r.status == 400 and "<Code>BadDigest</Code>" in await r.text()
        await admin(http, faults="")
        async with storage.put(up["url"], data=payload, headers=up["headers"]) as r:
            assert r.status == 200


async def test_429_storm_on_top_of_bucket(http: aiohttp.ClientSession) -> None:
    await admin(http, faults="429:1@3")
    async with http.get("/v1/me") as r:
        assert r.status == 429 and r.headers["Retry-After"] == "3"
        assert (await r.json())["error_code"] == "rate_limited"
    async with http.get("/v1/me") as r:  # the storm lasts, whatever the bucket says
        assert r.status == 429 and 1 <= int(r.headers["Retry-After"]) <= 3
    await admin(http, faults="")
    await call(http, "GET", "/v1/me", 200)


def test_fault_spec_parsing() -> None:
    spec = parse_faults("500:0.02, reset:0.01,reset_after:0.01,slow:0.05@2,gen_fail:0.03,429:0.1")
    assert spec["slow"].arg == 2 and spec["429"].arg == 2.0 and spec["500"].arg is None
    for bad in ("boom:0.1", "500", "500:2", "500:x", "reset:0.1@3", "slow:0.1@-1"):
        with pytest.raises(ValueError):
            parse_faults(bad)
    with pytest.raises(ValueError):
        SimConfig(faults="nope:1")
