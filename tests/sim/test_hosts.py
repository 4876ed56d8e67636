"""Two hosts on two ports: a call sent to the wrong host fails as it would against GEN.

The API host (api.gen.pro) and the agent host (agent.gen.pro) are two ports of
one simulator sharing one world (docs/dialect.md §1, docs/sim-assumptions.md
"hosts").  A path of the other host answers 404 ``not_found`` naming the right
host, before authentication; CDN and upload URLs always point at the API host.
"""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Any

import aiohttp
import pytest
from simhelp import AGENT, KEY, SimHttp, call, on_agent_host, poll

from genbatch.sim.app import agent_host_path
from genbatch.sim.serve import SimServer

#: Agent-host paths (the teaching document's Step 2, and the vendor's newer ones).
AGENT_PATHS = (
    ("POST", "/v1/agent/run"),
    ("GET", "/v1/agent/runs/1"),
    ("POST", "/v1/agent/runs/1/approve"),
    ("GET", f"/v1/agent/conversations?agent_id={AGENT}"),
    ("GET", "/v1/agent/conversations/1/messages"),
    ("GET", f"/v1/agent/ideas?agent_id={AGENT}"),
    ("PUT", "/v1/agent/ideas/1/status/generated"),
    ("POST", "/v1/research"),
    ("POST", "/v1/ideas/1/expand"),
    ("GET", f"/v1/agents/{AGENT}/recurring-jobs"),
)
#: API-host paths, including the ones that look agent-ish.
API_PATHS = (
    ("GET", "/v1/me"),
    ("GET", f"/v1/agents/{AGENT}/core"),
    ("GET", "/v1/agents"),
    ("POST", f"/v1/user_jobs?agent_id={AGENT}"),  # train_social: api.gen.pro
    ("GET", "/v1/templates/projects"),
    ("POST", f"/v1/vidsheet?agent_id={AGENT}"),
    ("GET", "/v1/generations/701"),
    ("POST", "/v1/direct_upload"),
    ("GET", "/_sim/ledger"),
    ("GET", "/cdn/outputs/template_tiktok-montage_sample.mp4"),
    ("PUT", "/_storage/uploads/abc"),
)


def _root(base: str) -> str:
    return base.removesuffix("/v1")


def test_the_split_the_sim_serves_is_the_documented_one() -> None:
    for _, path in AGENT_PATHS:
        bare = path.split("?", 1)[0]
        assert agent_host_path(bare) and on_agent_host(path), path
    for _, path in API_PATHS:
        bare = path.split("?", 1)[0]
        assert not agent_host_path(bare) and not on_agent_host(path), path
    for lookalike in ("/v1/agents/1000/core", "/v1/agentic", "/v1/researchers", "/v1/ideasx"):
        assert not agent_host_path(lookalike), lookalike


async def test_two_ports_one_world(sim: SimServer) -> None:
    assert sim.api_url == sim.url + "/v1" and sim.agent_url.endswith("/v1")
    assert sim.port != sim.agent_port and f":{sim.agent_port}/v1" in sim.agent_url
    async with SimHttp(sim, headers={"X-API-Key": KEY}) as http:
        started = await call(
            http, "POST", "/v1/agent/run", 201, json={"agent_id": AGENT, "message": "2 ideas"}
        )
        # the API host sees what the agent host did: one world
        assert sim.world.runs and started["run_id"] in sim.world.runs
        ledger = await call(http, "GET", "/_sim/ledger", 200)
        assert ledger["runs"]


def _assert_names_host(body: Any, host: str, method: str, path: str) -> None:
    assert set(body) == {"error", "error_code"} and body["error_code"] == "not_found", body
    message = body["error"]
    assert f"served by the {host} host" in message, message
    assert f"{method} {path.split('?', 1)[0]}" in message, message


@pytest.mark.parametrize(("method", "path"), AGENT_PATHS)
async def test_an_agent_path_on_the_api_port_is_404_naming_the_agent_host(
    sim: SimServer, method: str, path: str
) -> None:
    async with aiohttp.ClientSession(base_url=sim.url) as api:
        for headers in ({"X-API-Key": KEY}, {}):  # routing comes before authentication
            body = await call(api, method, path, 404, json={}, headers=headers)
            _assert_names_host(body, "agent", method, path)


@pytest.mark.parametrize(("method", "path"), API_PATHS)
async def test_an_api_path_on_the_agent_port_is_404_naming_the_api_host(
    sim: SimServer, method: str, path: str
) -> None:
    async with aiohttp.ClientSession(base_url=_root(sim.agent_url)) as agent:
        for headers in ({"X-API-Key": KEY}, {}):
            body = await call(agent, method, path, 404, json={}, headers=headers)
            _assert_names_host(body, "API", method, path)


async def test_wrong_host_requests_spend_nothing_and_are_ledgered_as_unmatched(
    sim: SimServer,
) -> None:
    async with (
        aiohttp.ClientSession(base_url=sim.url, headers={"X-API-Key": KEY}) as api,
        aiohttp.ClientSession(base_url=_root(sim.agent_url), headers={"X-API-Key": KEY}) as agent,
    ):
        run = {"agent_id": AGENT, "message": "Generate 2 ideas"}
        await call(api, "POST", "/v1/agent/run", 404, json=run)
        await call(agent, "POST", "/v1/templates/spreadsheets/tiktok-montage/clone", 404, json={})
        assert not sim.world.runs and not sim.world.sheets.engines
        ledger = await call(api, "GET", "/_sim/ledger", 200)
    routes = ledger["requests"]["by_route"]
    assert routes.get("POST <unmatched>") == 2
    assert not any(r.startswith(("POST /v1/agent/run", "POST /v1/templates")) for r in routes)
    assert ledger["credits"]["charged"] == 0


def _urls(value: Any) -> list[str]:
    if isinstance(value, str):
        return re.findall(r"https?://[^\s\"']+", value)
    if isinstance(value, dict):
        return [u for v in value.values() for u in _urls(v)]
    if isinstance(value, list):
        return [u for v in value for u in _urls(v)]
    return []


async def test_cdn_and_upload_urls_point_at_the_api_host_whoever_asked_first(
    sim_factory: Any,
) -> None:
    sim: SimServer = await sim_factory()
    assert not sim.world.counters.log  # nothing has reached this simulator yet
    async with aiohttp.ClientSession(
        base_url=_root(sim.agent_url), headers={"X-API-Key": KEY}
    ) as agent:
        # the very first request goes to the agent host; its answer cites CDN media
        run = {"agent_id": AGENT, "message": "Generate 3 content ideas"}
        started = await call(agent, "POST", "/v1/agent/run", 201, json=run)
        await poll(agent, f"/v1/agent/runs/{started['run_id']}", ("completed",))
        conv = started["conversation_id"]
        messages = await call(agent, "GET", f"/v1/agent/conversations/{conv}/messages", 200)
    cited = [u for u in _urls(messages) if "/cdn/" in u]
    assert cited, messages
    assert all(u.startswith(sim.url + "/cdn/") for u in cited), cited
    async with SimHttp(sim, headers={"X-API-Key": KEY}) as http:
        blob = {
            "filename": "a.mp4",
            "byte_size": 3,
            "checksum": base64.b64encode(hashlib.md5(b"abc").digest()).decode(),
            "content_type": "video/mp4",
        }
        up = await call(http, "POST", "/v1/direct_upload", 200, json={"blob": blob})
        assert up["direct_upload"]["url"].startswith(sim.url + "/_storage/uploads/")
        template = await call(http, "GET", "/v1/templates/projects/tiktok-montage", 200)
        for url in _urls(template):
            if "/cdn/" in url:
                assert url.startswith(sim.url + "/cdn/"), url
        async with http.agent.get("/cdn/outputs/template_tiktok-montage_sample.mp4") as r:
            assert r.status == 404  # the CDN is not on the agent host
        async with http.api.get("/cdn/outputs/template_tiktok-montage_sample.mp4") as r:
            assert r.status == 200
