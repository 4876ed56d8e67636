"""Step 1 rules (agent core 422/207, keyword mirroring, voices, tokens, workspaces,
automation) and Step 2 flows (approval, idea status, conversations)."""

from __future__ import annotations

from typing import Any

import aiohttp
from simhelp import AGENT, call, cell_id, poll

from genbatch.sim.dialect import TODAY_PREFIX
from genbatch.sim.serve import SimServer

CORE = f"/v1/agents/{AGENT}/core"
VOICE = f"/v1/agents/{AGENT}/voice"


async def test_keywords_without_monitored_are_mirrored(http: aiohttp.ClientSession) -> None:
    await call(
        http,
        "PATCH",
        CORE,
        200,
        json={"monitored": [{"handle": "@keithlee", "item_type": "account"}]},
    )
    core = await call(http, "PATCH", CORE, 200, json={"keywords": ["tacos", "#birria"]})
    assert core["keywords"] == ["tacos", "birria"]
    assert core["monitored"] == [
        {"handle": "@keithlee", "item_type": "account"},
        {"handle": "tacos", "item_type": "keyword"},
        {"handle": "birria", "item_type": "keyword"},
    ]
    both = await call(
        http,
        "PATCH",
        CORE,
        200,
        json={"keywords": ["x"], "monitored": [{"handle": "y", "item_type": "hashtag"}]},
    )
    assert both["monitored"] == [{"handle": "y", "item_type": "hashtag"}]  # explicit wins


async def test_207_when_some_sections_fail(http: aiohttp.ClientSession) -> None:
    body = {
        "brand_name": "Santi",
        "linked_accounts": [{"url": "https://myspace.com/santi", "platform": "myspace"}],
        "default_user_voice": {"voice_id": "no-such-voice", "source": "public"},
        "goal": "awareness",
    }
    out = await call(http, "PATCH", CORE, 207, json=body)
    assert out["brand_name"] == "Santi" and out["goal"] == "awareness"  # good sections applied
    assert set(out["errors"]) == {"linked_accounts", "default_user_voice"}
    assert out["errors"]["linked_accounts"]["error_code"] == "validation_error"
    assert "myspace" in out["errors"]["linked_accounts"]["error"]
    core = await call(http, "GET", CORE, 200)
    assert core["linked_accounts"][0]["platform"] == "tiktok"  # failed section left unchanged
    every = await call(http, "PATCH", CORE, 422, json={"shortform": "yes"})
    assert every["error_code"] == "validation_error"


async def test_approval_flow(http: aiohttp.ClientSession) -> None:
    for approved in (True, False):
        run = await call(
            http,
            "POST",
            "/v1/agent/run",
            201,
            json={"agent_id": AGENT, "message": "Publish idea 2 to TikTok now"},
        )
        url = f"/v1/agent/runs/{run['run_id']}"
        waiting = await poll(http, url, ("awaiting_approval", "completed"))
        assert (
            waiting["status"] == "awaiting_approval"
            and waiting["pending_action"]["type"] == "publish"
        )
        resumed = await call(http, "POST", f"{url}/approve", 200, json={"approved": approved})
        assert resumed["status"] == "running"
        done = await poll(http, url, ("completed", "failed"))
        # executed only if it really happened: this fresh conversation has no idea 2
        # (the full publish path: tests/sim/test_content.py)
        assert done["status"] == "completed" and done["result"]["executed"] is False
        assert done["result"]["reason"] == (
            "idea 2 is not in this conversation" if approved else "not approved"
        )
        err = await call(http, "POST", f"{url}/approve", 422, json={"approved": True})
        assert err["error_code"] == "validation_error"
    bad = await call(http, "POST", f"{url}/approve", 422, json={"approved": "yes"})
    assert bad["error_code"] == "validation_error"


async def ideas(http: aiohttp.ClientSession, n: int = 2) -> tuple[int, list[dict[str, Any]]]:
    run = await call(
        http,
        "POST",
        "/v1/agent/run",
        201,
        json={"agent_id": AGENT, "message": f"Give me {n} ideas"},
    )
    done = await poll(http, f"/v1/agent/runs/{run['run_id']}", ("completed",))
    return run["conversation_id"], done["result"]["ideas"]


async def test_idea_status_flow(http: aiohttp.ClientSession) -> None:
    _, got = await ideas(http, 2)
    iid = got[0]["id"]
    seen = [got[0]["status"]]
    for _ in range(4):
        seen.append((await call(http, "POST", f"/v1/agent/ideas/{iid}/status", 200))["status"])
    assert seen == [
        "generated",
        "approve_to_create",
        "ready_for_review",
        "approved_to_post",
        "posted",
    ]
    assert (await call(http, "POST", f"/v1/agent/ideas/{iid}/status", 422))[
        "error_code"
    ] == "validation_error"
    for status in ("change_idea", "change_video", "rejected", "generated"):
        assert (await call(http, "PUT", f"/v1/agent/ideas/{iid}/status/{status}", 200))[
            "status"
        ] == status
    await call(http, "PUT", f"/v1/agent/ideas/{iid}/status/change_video", 200)
    assert (await call(http, "POST", f"/v1/agent/ideas/{iid}/status", 200))[
        "status"
    ] == "approve_to_create"
    await call(http, "PUT", f"/v1/agent/ideas/{iid}/status/banana", 422)
    listed = await call(
        http, "GET", f"/v1/agent/ideas?agent_id={AGENT}&status=approve_to_create", 200
    )
    assert [i["id"] for i in listed] == [iid]


async def test_conversations(http: aiohttp.ClientSession) -> None:
    conv, _ = await ideas(http, 1)
    listed = await call(http, "GET", f"/v1/agent/conversations?agent_id={AGENT}", 200)
    assert [c["id"] for c in listed] == [conv]
    patched = await call(
        http,
        "PATCH",
        f"/v1/agent/conversations/{conv}",
        200,
        json={"title": "Tacos", "pinned": True},
    )
    assert patched["title"] == "Tacos" and patched["pinned"] is True
    runs = await call(http, "GET", f"/v1/agent/conversations/{conv}/runs", 200)
    assert len(runs) == 1 and runs[0]["status"] == "completed"
    msgs = await call(http, "GET", f"/v1/agent/conversations/{conv}/messages", 200)
    assert [m["role"] for m in msgs] == ["user", "assistant"]
    chat = await call(
        http,
        "POST",
        "/v1/agent/run",
        201,
        json={"agent_id": AGENT, "message": "hello", "conversation_id": conv},
    )
    done = await poll(http, f"/v1/agent/runs/{chat['run_id']}", ("completed",))
    assert done["result"]["type"] == "chat" and done["conversation_id"] == conv
    await call(http, "DELETE", f"/v1/agent/conversations/{conv}", 200)
    await call(http, "GET", f"/v1/agent/conversations/{conv}", 404)


async def test_voices(http: aiohttp.ClientSession) -> None:
    public = await call(http, "GET", f"{VOICE}/library?source=public", 200)
    assert "21m00Tcm4TlvDq8ikWAM" in [v["voice_id"] for v in public]
    script = await call(
        http, "POST", f"{VOICE}/design/generate-script", 200, json={"prompt": "gravelly cowboy"}
    )
    desc = await call(
        http, "POST", f"{VOICE}/design/generate-description", 200, json={"script": script["script"]}
    )
    samples = await call(http, "POST", f"{VOICE}/design/generate-samples", 200, json=desc)
    assert len(samples["samples"]) == 3
    gid = samples["samples"][1]["generated_voice_id"]
    voice = await call(
        http, "POST", f"{VOICE}/design", 201, json={"generated_voice_id": gid, "name": "Tex"}
    )
    assert voice["source"] == "user" and voice["method"] == "designed"
    mine = await call(http, "GET", f"{VOICE}/library?source=user", 200)
    assert [v["voice_id"] for v in mine] == [voice["voice_id"]]
    await call(
        http,
        "PATCH",
        CORE,
        200,
        json={"default_user_voice": {"voice_id": voice["voice_id"], "source": "user"}},
    )
    cloned = await call(
        http, "POST", f"{VOICE}/clone", 201, json={"name": "Me", "audio_resource_id": 5921}
    )
    assert cloned["method"] == "cloned"
    job = await call(
        http, "POST", f"{VOICE}/{voice['voice_id']}/preview", 202, json={"text": "Howdy"}
    )
    done = await poll(http, f"{VOICE}/preview/{job['job_id']}", ("completed",))
    assert done["audio_url"].endswith(".m4a")
    assert (await call(http, "DELETE", f"{VOICE}/21m00Tcm4TlvDq8ikWAM", 403))[
        "error_code"
    ] == "forbidden"
    await call(http, "DELETE", f"{VOICE}/{cloned['voice_id']}", 200)
    el = f"{VOICE}/integrations/elevenlabs"
    assert (await call(http, "POST", f"{el}/test", 200, json={"api_key": "sk_" + "a" * 30}))[
        "valid"
    ] is True
    assert (await call(http, "POST", f"{el}/test", 200, json={"api_key": "bad"}))["valid"] is False
    assert (await call(http, "POST", el, 200, json={"api_key": "sk_" + "b" * 30}))[
        "api_key_last4"
    ] == "bbbb"
    assert (await call(http, "DELETE", el, 200))["connected"] is False


async def test_persisted_tokens_authenticate(http: aiohttp.ClientSession, sim: SimServer) -> None:
    made = await call(http, "POST", "/v1/persisted_tokens", 201, json={"name": "ci"})
    token = made["token"]
    async with aiohttp.ClientSession(base_url=sim.url, headers={"X-API-Key": token}) as new:
        assert (await call(new, "GET", "/v1/me", 200))["id"] == 1
        listed = await call(new, "GET", "/v1/persisted_tokens", 200)
        assert "token" not in listed[0] and listed[0]["last_four"] == token[-4:]
        await call(new, "PATCH", f"/v1/persisted_tokens/{made['id']}", 200, json={"name": "ci-2"})
        await call(http, "DELETE", f"/v1/persisted_tokens/{made['id']}/revoke", 200)
        await call(new, "GET", "/v1/me", 401)
    two = [
        await call(http, "POST", "/v1/persisted_tokens", 201, json={"name": f"t{i}"})
        for i in range(2)
    ]
    assert (await call(http, "DELETE", "/v1/persisted_tokens/revoke_all", 200))["revoked"] == 2
    async with aiohttp.ClientSession(
        base_url=sim.url, headers={"X-API-Key": two[0]["token"]}
    ) as gone:
        await call(gone, "GET", "/v1/me", 401)


async def test_workspaces_and_agents(http: aiohttp.ClientSession) -> None:
    ws = await call(
        http, "POST", "/v1/organizations", 201, json={"organization": {"name": "Side project"}}
    )
    assert ws["available_credit"]["generic"] == 0 and ws["user_role"] == "owner"  # today's fields
    assert len(await call(http, "GET", "/v1/workspaces", 200)) == 2
    await call(http, "PATCH", f"/v1/organizations/{ws['id']}", 200, json={"name": "Side"})
    agent = await call(
        http, "POST", "/v1/agents", 201, json={"agent": {"name": "Bot", "workspace_id": ws["id"]}}
    )
    listed = await call(http, "GET", f"/v1/agents?workspace_id={ws['id']}", 200)
    assert [a["id"] for a in listed] == [agent["id"]]
    eng = await call(
        http,
        "POST",
        "/v1/templates/spreadsheets/tiktok-montage/clone",
        201,
        json={"agent_id": agent["id"]},
    )
    url = f"{TODAY_PREFIX}/{eng['id']}/cells/{cell_id(eng, 'hook')}/generate?agent_id={agent['id']}"
    err = await call(
        http, "POST", url, 422, json={"generation_type": "text", "data": {"prompt": "hi"}}
    )
    assert err["error_code"] == "usable_gen_credit_required"  # the new workspace has no credits
    await call(http, "PATCH", f"/v1/agents/{agent['id']}", 200, json={"name": "Bot 2"})
    await call(http, "DELETE", f"/v1/agents/{agent['id']}", 200)
    await call(http, "GET", f"/v1/agents/{agent['id']}", 404)
    await call(http, "DELETE", f"/v1/organizations/{ws['id']}", 200)
    await call(http, "GET", f"/v1/organizations/{ws['id']}", 404)


async def test_automation_config(http: aiohttp.ClientSession) -> None:
    # today's fields (docs/dialect.md §4: webhook_url, callback_url, polling_enabled);
    # delivery to a real receiver: tests/sim/test_webhooks.py
    url = f"/v1/agents/{AGENT}/automation_config"
    assert (await call(http, "GET", url, 200))["polling_enabled"] is False
    await call(http, "POST", f"{url}/test_webhook", 422)
    cfg = await call(
        http,
        "PATCH",
        url,
        200,
        json={
            "automation_config": {"polling_enabled": True, "webhook_url": "http://127.0.0.1:9/h"}
        },
    )
    assert cfg["webhook_url"] == "http://127.0.0.1:9/h" and cfg["polling_enabled"] is True
    tested = await call(http, "POST", f"{url}/test_webhook", 200)  # nobody listens on port 9
    assert tested["success"] is False and tested["error"]
    await call(http, "PATCH", url, 422, json={"webhook_url": "https://example.com/h"})  # off-box
    await call(http, "PATCH", url, 422, json={"webhook_url": "ftp://x"})
    await call(http, "PATCH", url, 422, json={"colour": "red"})
