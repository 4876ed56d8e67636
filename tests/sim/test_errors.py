"""Every error code of the reference's table (plus the sim's own), each produced for real."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from simhelp import AGENT, SimHttp, admin, call, cell_id, cell_url, clone, eng_url

from genbatch.sim.accounts import SIM_OTHER_AGENT_ID, SIM_OTHER_API_KEY
from genbatch.sim.dialect import TODAY_PREFIX
from genbatch.sim.serve import SimServer

VIDEO = {
    "generation_type": "video_from_text",
    "data": {"prompt": "taco truck", "model": "veo_3", "aspect_ratio": "9:16", "duration": 8},
}


def assert_error(body: dict[str, Any], code: str) -> None:
    assert set(body) == {"error", "error_code"} and body["error_code"] == code
    assert isinstance(body["error"], str) and body["error"]


async def test_401_unauthorized(sim: SimServer) -> None:
    async with SimHttp(sim) as anon:
        assert_error(await call(anon, "GET", "/v1/me", 401), "unauthorized")
        assert_error(
            await call(anon, "GET", "/v1/me", 401, headers={"X-API-Key": "nope"}), "unauthorized"
        )
        assert_error(
            await call(anon, "GET", "/v1/me", 401, headers={"Authorization": "Basic abc"}),
            "unauthorized",
        )
        me = await call(anon, "GET", "/v1/me", 200, headers={"Authorization": "Bearer k1"})
        assert me["id"] == 1  # --api-key keys map to the demo user
        # the agent host answers the same way
        assert_error(await call(anon, "GET", "/v1/agent/runs/1", 401), "unauthorized")


async def test_404_for_another_workspace(http: aiohttp.ClientSession, sim: SimServer) -> None:
    """No access looks like missing: 404 not_found, not 403 (docs/dialect.md §4)."""
    assert_error(
        await call(http, "GET", f"/v1/agent/ideas?agent_id={SIM_OTHER_AGENT_ID}", 404), "not_found"
    )
    assert_error(await call(http, "GET", f"/v1/agents/{SIM_OTHER_AGENT_ID}/core", 404), "not_found")
    async with aiohttp.ClientSession(
        base_url=sim.url, headers={"X-API-Key": SIM_OTHER_API_KEY}
    ) as other:
        theirs = await clone(other, agent=SIM_OTHER_AGENT_ID)
        gen = await call(
            other,
            "POST",
            eng_url(theirs, f"/cells/{cell_id(theirs, 'hook')}/generate", SIM_OTHER_AGENT_ID),
            201,
        )
    assert_error(await call(http, "GET", eng_url(theirs), 404), "not_found")
    assert_error(
        await call(http, "GET", f"/v1/generations/{gen['generation_id']}", 404), "not_found"
    )


async def test_404_not_found(http: aiohttp.ClientSession) -> None:
    assert_error(await call(http, "GET", "/v1/generations/999999", 404), "not_found")
    assert_error(
        await call(http, "GET", f"{TODAY_PREFIX}/999999?agent_id={AGENT}", 404), "not_found"
    )
    assert_error(
        await call(http, "GET", "/v1/templates/projects/no-such-template", 404), "not_found"
    )
    assert_error(await call(http, "GET", "/v1/agents/424242", 404), "not_found")
    assert_error(await call(http, "GET", "/v1/no/such/route", 404), "not_found")
    eng = await clone(http)
    assert_error(
        await call(http, "GET", eng_url(eng, "/cells/1"), 404),
        "not_found",
    )
    assert_error(await call(http, "GET", f"/v1/user_jobs/5?agent_id={AGENT}", 404), "not_found")
    assert_error(await call(http, "GET", "/v1/agent/conversations/77", 404), "not_found")


async def test_422_agent_not_found(http: aiohttp.ClientSession) -> None:
    assert_error(await call(http, "GET", "/v1/agent/ideas?agent_id=999999", 422), "agent_not_found")
    assert_error(await call(http, "GET", "/v1/agent/ideas", 422), "agent_not_found")
    body = {"agent_id": "nope", "message": "Generate 3 ideas"}
    assert_error(await call(http, "POST", "/v1/agent/run", 422, json=body), "agent_not_found")
    assert_error(
        await call(
            http,
            "POST",
            "/v1/templates/spreadsheets/tiktok-montage/clone",
            422,
            json={"agent_id": 1},
        ),
        "agent_not_found",
    )


async def test_422_credit_codes(http: aiohttp.ClientSession) -> None:
    eng = await clone(http)
    url = cell_url(eng, "shot_1", "generate")
    await admin(http, balance=0)
    assert_error(await call(http, "POST", url, 422, json=VIDEO), "usable_gen_credit_required")
    await admin(http, balance=479)  # 8 s of Veo 3 costs 480 (60 a second)
    assert_error(await call(http, "POST", url, 422, json=VIDEO), "insufficient_credits_for_job")
    await admin(http, balance=480)
    await call(http, "POST", url, 201, json=VIDEO)
    org = await call(http, "GET", "/v1/organizations/100", 200)
    assert org["available_credit"]["generic"] == 0 == org["credit"]
    render = cell_url(eng, "final_video", "render")
    assert_error(await call(http, "POST", render, 422), "usable_gen_credit_required")


@pytest.mark.parametrize(
    ("patch", "needle"),
    [
        ({"generation_type": "hologram"}, "generation_type"),
        ({"data": {"prompt": "x", "model": "veo_9"}}, "model"),
        ({"data": {"prompt": "x", "aspect_ratio": "21:9"}}, "aspect_ratio"),
        ({"data": {"prompt": "x", "duration": 7}}, "duration"),
        ({"data": {"model": "veo_3"}}, "prompt"),
        ({"extra": 1}, "unknown"),
    ],
)
async def test_422_validation_error_generate(
    http: aiohttp.ClientSession, patch: dict[str, Any], needle: str
) -> None:
    eng = await clone(http)
    url = cell_url(eng, "shot_1", "generate")
    body = {**VIDEO, **patch}
    err = await call(http, "POST", url, 422, json=body)
    assert_error(err, "validation_error")
    assert needle in err["error"]


async def test_422_validation_error_bodies(http: aiohttp.ClientSession) -> None:
    core = f"/v1/agents/{AGENT}/core"
    assert_error(
        await call(http, "PATCH", core, 422, json={"favourite_colour": "red"}), "validation_error"
    )
    err = await call(http, "PATCH", core, 422, json={"description": "x" * 3000})
    assert_error(err, "validation_error")
    assert "500" in err["error"]
    assert_error(
        await call(http, "PATCH", core, 422, json={"personality": "p" * 20001}), "validation_error"
    )
    await call(
        http, "PATCH", core, 200, json={"personality": "p" * 20000, "description": "d" * 500}
    )
    assert_error(await call(http, "PATCH", core, 422, data=b"{not json"), "validation_error")
    assert_error(
        await call(http, "POST", "/v1/agent/run", 422, json={"agent_id": AGENT}), "validation_error"
    )
    eng = await clone(http)
    final = cell_id(eng, "final_video")
    hook = cell_id(eng, "hook")
    base = f"{TODAY_PREFIX}/{eng['id']}"
    # render only on a final_video cell; generate never on it
    assert_error(
        await call(http, "POST", f"{base}/cells/{hook}/render?agent_id={AGENT}", 422),
        "validation_error",
    )
    assert_error(
        await call(
            http, "POST", f"{base}/cells/{final}/generate?agent_id={AGENT}", 422, json=VIDEO
        ),
        "validation_error",
    )
    assert_error(
        await call(
            http,
            "PATCH",
            f"{base}/cells/{hook}?agent_id={AGENT}",
            422,
            json={"value": "no wrapper"},
        ),
        "validation_error",
    )


async def test_5xx_and_501(http: aiohttp.ClientSession) -> None:
    eng = await clone(http)
    err = await call(
        http,
        "POST",
        f"{TODAY_PREFIX}/{eng['id']}/import_global_variables?agent_id={AGENT}",
        501,
    )
    assert_error(err, "not_implemented")
    await admin(http, faults="500:1")
    assert_error(await call(http, "GET", "/v1/me", 500), "internal_error")
    await admin(http, faults="503:1")
    assert_error(await call(http, "GET", "/v1/me", 503), "service_unavailable")
    await admin(http, faults="")
    await call(http, "GET", "/v1/me", 200)
