"""Every endpoint the reference lists is routed by the sim (no "no route" 404/405).

The list is the teaching document's endpoint blocks, copied verbatim (query
strings dropped).  Each is called for real with placeholder ids: an unknown id
may answer 404 not_found or 422, but never the router's own "no route".  The
list runs verbatim against a simulator speaking the teaching document
(``legacy_paths=True``), and with the engine routes under today's
``/v1/vidsheet`` prefix against the default one; each refuses the other's prefix.
"""

from __future__ import annotations

import re

import aiohttp
import pytest
from simhelp import AGENT, KEY

from genbatch.sim.dialect import LEGACY_PREFIX, TODAY_PREFIX
from genbatch.sim.serve import SimServer

ENDPOINTS = (
    "DELETE /v1/agent/conversations/:id",
    "DELETE /v1/agents/:agent_id/voice/:voice_id",
    "DELETE /v1/agents/:agent_id/voice/integrations/elevenlabs",
    "DELETE /v1/agents/:id",
    "DELETE /v1/asset_folders/:id?agent_id=",
    "DELETE /v1/autocontentengine/:id/cells/:cell_id/layers/:layer_id?agent_id=",
    "DELETE /v1/content_resources/:id?agent_id=",
    "DELETE /v1/organizations/:id",
    "DELETE /v1/persisted_tokens/:id/revoke",
    "DELETE /v1/persisted_tokens/revoke_all",
    "GET /v1/agent/conversations/:id",
    "GET /v1/agent/conversations/:id/messages",
    "GET /v1/agent/conversations/:id/runs",
    "GET /v1/agent/conversations?agent_id=",
    "GET /v1/agent/ideas?agent_id=&status=",
    "GET /v1/agent/runs/:run_id",
    "GET /v1/agents/:agent_id/automation_config",
    "GET /v1/agents/:agent_id/core",
    "GET /v1/agents/:agent_id/voice/library",
    "GET /v1/agents/:agent_id/voice/preview/:job_id",
    "GET /v1/agents/:id",
    "GET /v1/agents?workspace_id=",
    "GET /v1/asset_libraries?agent_id=&folder_id=&asset_type=&search=",
    "GET /v1/autocontentengine/:id/cells/:cell_id/layers/:layer_id?agent_id=",
    "GET /v1/autocontentengine/:id/cells/:cell_id?agent_id=",
    "GET /v1/autocontentengine/:id/columns?agent_id=",
    "GET /v1/autocontentengine/:id/global_variables?agent_id=",
    "GET /v1/autocontentengine/:id/rows/:row_id?agent_id=",
    "GET /v1/autocontentengine/:id/rows?agent_id=",
    "GET /v1/autocontentengine/:id?agent_id=",
    "GET /v1/autocontentengine/global_variables_template",
    "GET /v1/content_resources/:id?agent_id=",
    "GET /v1/content_resources?agent_id=&type=&page=",
    "GET /v1/generations/:id",
    "GET /v1/me",
    "GET /v1/organizations",
    "GET /v1/organizations/:id",
    "GET /v1/persisted_tokens",
    "GET /v1/templates/projects",
    "GET /v1/templates/projects/:slug",
    "GET /v1/user_jobs/:id",
    "GET /v1/user_jobs/:id?agent_id=",
    "GET /v1/workspaces",
    "PATCH /v1/agent/conversations/:id",
    "PATCH /v1/agents/:agent_id/automation_config",
    "PATCH /v1/agents/:agent_id/core",
    "PATCH /v1/agents/:id",
    "PATCH /v1/asset_folders/:id?agent_id=",
    "PATCH /v1/autocontentengine/:id/cells/:cell_id/layers/:layer_id?agent_id=",
    "PATCH /v1/autocontentengine/:id/cells/:cell_id/set_default_user_job?agent_id=",
    "PATCH /v1/autocontentengine/:id/cells/:cell_id?agent_id=",
    "PATCH /v1/autocontentengine/:id/columns/update_positions?agent_id=",
    "PATCH /v1/content_resources/:id?agent_id=",
    "PATCH /v1/organizations/:id",
    "PATCH /v1/persisted_tokens/:id",
    "POST /v1/agent/ideas/:id/status",
    "POST /v1/agent/run",
    "POST /v1/agent/runs/:run_id/approve",
    "POST /v1/agents",
    "POST /v1/agents/:agent_id/automation_config/test_callback",
    "POST /v1/agents/:agent_id/automation_config/test_webhook",
    "POST /v1/agents/:agent_id/voice/:voice_id/preview",
    "POST /v1/agents/:agent_id/voice/clone",
    "POST /v1/agents/:agent_id/voice/design",
    "POST /v1/agents/:agent_id/voice/design/generate-description",
    "POST /v1/agents/:agent_id/voice/design/generate-samples",
    "POST /v1/agents/:agent_id/voice/design/generate-script",
    "POST /v1/agents/:agent_id/voice/integrations/elevenlabs",
    "POST /v1/agents/:agent_id/voice/integrations/elevenlabs/test",
    "POST /v1/asset_folders?agent_id=",
    "POST /v1/autocontentengine/:id/cells/:cell_id/generate?agent_id=",
    "POST /v1/autocontentengine/:id/cells/:cell_id/layers/:layer_id/duplicate?agent_id=",
    "POST /v1/autocontentengine/:id/cells/:cell_id/layers/:layer_id/generate?agent_id=",
    "POST /v1/autocontentengine/:id/cells/:cell_id/layers?agent_id=",
    "POST /v1/autocontentengine/:id/cells/:cell_id/render?agent_id=",
    "POST /v1/autocontentengine/:id/clone?agent_id=",
    "POST /v1/autocontentengine/:id/columns/:col_id/duplicate?agent_id=",
    "POST /v1/autocontentengine/:id/columns?agent_id=",
    "POST /v1/autocontentengine/:id/import_global_variables?agent_id=",
    "POST /v1/autocontentengine/:id/rows/:row_id/duplicate?agent_id=",
    "POST /v1/autocontentengine/:id/rows?agent_id=",
    "POST /v1/autocontentengine?agent_id=",
    "POST /v1/content_resources?agent_id=",
    "POST /v1/direct_upload",
    "POST /v1/generations/:id/continue",
    "POST /v1/generations/:id/stop",
    "POST /v1/organizations",
    "POST /v1/persisted_tokens",
    "POST /v1/research",
    "POST /v1/templates/spreadsheets/:slug/clone",
    "POST /v1/user_jobs",
    "POST /v1/user_jobs?agent_id=",
    "PUT /v1/agent/ideas/:id/status/:status",
    "PUT /v1/autocontentengine/:id/cells/:cell_id/layers/update_positions?agent_id=",
    "PUT /v1/autocontentengine/:id/cells/mass_update?agent_id=",
    "PUT /v1/autocontentengine/:id/columns/mass_update?agent_id=",
    "PUT /v1/autocontentengine/:id/rows/mass_update?agent_id=",
    "PUT /v1/autocontentengine/:id/rows/update_positions?agent_id=",
    "PUT /v1/user_jobs/:id",
)


#: The same list as today's API serves it: engine routes under /v1/vidsheet (docs/dialect.md §1).
TODAY_ENDPOINTS = tuple(e.replace(LEGACY_PREFIX, TODAY_PREFIX) for e in ENDPOINTS)
#: The engine (vidsheet) routes of the list, in the teaching document's spelling.
ENGINE_ENDPOINTS = tuple(e for e in ENDPOINTS if LEGACY_PREFIX in e)


def concrete(path: str) -> str:
    path = path.split("?")[0]
    path = path.replace(":agent_id", str(AGENT)).replace(":slug", "tiktok-montage")
    path = path.replace(":voice_id", "21m00Tcm4TlvDq8ikWAM").replace(":status", "posted")
    return re.sub(r":[a-z_]+", "999999", path)


def test_the_list_is_the_reference() -> None:
    assert len(ENDPOINTS) == 99 and len(set(ENDPOINTS)) == 99
    assert len(ENGINE_ENDPOINTS) == 30 and not any(LEGACY_PREFIX in e for e in TODAY_ENDPOINTS)


async def assert_routed(http: aiohttp.ClientSession, endpoint: str) -> None:
    method, path = endpoint.split(" ", 1)
    async with http.request(method, f"{concrete(path)}?agent_id={AGENT}", json={}) as r:
        body = await r.read()
        assert r.status not in (405, 501) or b"not_implemented" in body, (endpoint, r.status, body)
        assert b"no route" not in body, (endpoint, body)
        assert r.status < 500, (endpoint, r.status, body)


@pytest.mark.parametrize("endpoint", TODAY_ENDPOINTS)
async def test_endpoint_is_routed(http: aiohttp.ClientSession, endpoint: str) -> None:
    await assert_routed(http, endpoint)


@pytest.mark.parametrize("endpoint", ENDPOINTS)
async def test_endpoint_is_routed_verbatim_in_legacy_mode(
    legacy_http: aiohttp.ClientSession, endpoint: str
) -> None:
    await assert_routed(legacy_http, endpoint)


async def prefix_refusals(sim: SimServer, endpoints: tuple[str, ...]) -> list[bytes]:
    """Call each endpoint with and without a key; every answer must be 404 not_found."""
    bodies = []
    async with aiohttp.ClientSession(base_url=sim.url) as http:
        for endpoint in endpoints:
            method, path = endpoint.split(" ", 1)
            for headers in ({"X-API-Key": KEY}, {}):  # routing comes before authentication
                url = f"{concrete(path)}?agent_id={AGENT}"
                async with http.request(method, url, json={}, headers=headers) as r:
                    body = await r.json()
                    assert r.status == 404 and body["error_code"] == "not_found", (endpoint, body)
                    assert set(body) == {"error", "error_code"}
                    bodies.append(body["error"].encode())
    return bodies


async def test_old_prefix_is_gone_and_names_the_new_one(sim: SimServer) -> None:
    for message in await prefix_refusals(sim, ENGINE_ENDPOINTS):
        assert b"moved to /v1/vidsheet/" in message, message


async def test_legacy_mode_does_not_serve_the_new_prefix(legacy_sim: SimServer) -> None:
    today = tuple(e.replace(LEGACY_PREFIX, TODAY_PREFIX) for e in ENGINE_ENDPOINTS)
    for message in await prefix_refusals(legacy_sim, today):
        assert b"/v1/autocontentengine/" in message, message
