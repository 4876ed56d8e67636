"""Step 1 — Set Up Your Agent: me, workspaces/organizations, agents, agent core,
voices, persisted tokens, and the agent's automation config."""

from __future__ import annotations

import re

from aiohttp import web

from genbatch.sim.agentstore import blank_core
from genbatch.sim.clock import iso, pending_until, phase
from genbatch.sim.entities import (
    Agent,
    ApiError,
    CdnObject,
    Preview,
    Token,
    Voice,
    Workspace,
    forbidden,
    invalid,
    need_str,
    not_found,
    reject_unknown,
)
from genbatch.sim.routes_common import (
    SIM_PAGE_SIZE,
    agent_view,
    jbody,
    jresp,
    now,
    page_of,
    user_of,
    user_view,
    voice_view,
    workspace_view,
    world_of,
    wrapped,
)
from genbatch.sim.webhooks import SIM_WEBHOOK_TEST_EVENT, check_hook_url, post_json

routes = web.RouteTableDef()


# ------------------------------------------------------------------ me / workspaces
@routes.get("/v1/me")
async def me(request: web.Request) -> web.Response:
    return jresp(user_view(user_of(request)))


def _my_workspaces(request: web.Request) -> list[Workspace]:
    w, user = world_of(request), user_of(request)
    return [w.accounts.workspaces[i] for i in user.workspace_ids if i in w.accounts.workspaces]


@routes.get("/v1/workspaces")
@routes.get("/v1/organizations")
async def list_workspaces(request: web.Request) -> web.Response:
    w, user = world_of(request), user_of(request)
    return jresp([workspace_view(w, ws, user) for ws in _my_workspaces(request)])


@routes.post("/v1/organizations")
async def create_workspace(request: web.Request) -> web.Response:
    w, user = world_of(request), user_of(request)
    body = wrapped(await jbody(request, required=True), "organization")
    name = need_str(body, "name", "organization.name")
    # ASSUMPTION: a new workspace starts with 0 credits (docs/sim-assumptions.md, "workspaces").
    ws = Workspace(w.shared.next_id("workspace"), name, user.id, 0.0, now())
    w.accounts.workspaces[ws.id] = ws
    user.workspace_ids.append(ws.id)
    return jresp(workspace_view(w, ws, user), 201)


@routes.get(r"/v1/organizations/{id:\d+}")
async def read_workspace(request: web.Request) -> web.Response:
    w, user = world_of(request), user_of(request)
    return jresp(workspace_view(w, w.accounts.workspace(user, request.match_info["id"]), user))


@routes.patch(r"/v1/organizations/{id:\d+}")
async def update_workspace(request: web.Request) -> web.Response:
    w, user = world_of(request), user_of(request)
    ws = w.accounts.workspace(user, request.match_info["id"])
    body = wrapped(await jbody(request, required=True), "organization")
    reject_unknown(body, {"name"})
    if "name" in body:
        if not isinstance(body["name"], str) or not body["name"].strip():
            raise invalid("name must be a non-empty string")
        ws.name = body["name"]
    return jresp(workspace_view(w, ws, user))


@routes.delete(r"/v1/organizations/{id:\d+}")
async def delete_workspace(request: web.Request) -> web.Response:
    w, user = world_of(request), user_of(request)
    ws = w.accounts.workspace(user, request.match_info["id"])
    if ws.owner_id != user.id:
        raise ApiError(403, "forbidden", "only the owner can delete a workspace")
    del w.accounts.workspaces[ws.id]
    for u in w.accounts.users.values():
        if ws.id in u.workspace_ids:
            u.workspace_ids.remove(ws.id)
    return jresp({"id": ws.id, "deleted": True})


# ------------------------------------------------------------------ agents
@routes.get("/v1/agents")
async def list_agents(request: web.Request) -> web.Response:
    w, user = world_of(request), user_of(request)
    raw = request.query.get("workspace_id")
    ids = [w.accounts.workspace(user, raw).id] if raw else list(user.workspace_ids)
    return jresp([agent_view(a) for a in w.agent_store.agents.values() if a.workspace_id in ids])


@routes.post("/v1/agents")
async def create_agent(request: web.Request) -> web.Response:
    w, user = world_of(request), user_of(request)
    body = wrapped(await jbody(request, required=True), "agent")
    name = need_str(body, "name", "agent.name")
    ws_raw = body.get("workspace_id", user.workspace_ids[0] if user.workspace_ids else None)
    ws = w.accounts.workspace(user, ws_raw)
    agent = Agent(w.shared.next_id("agent"), ws.id, name, now(), core=blank_core(name))
    w.agent_store.agents[agent.id] = agent
    return jresp(agent_view(agent), 201)


@routes.get(r"/v1/agents/{id:\d+}")
async def read_agent(request: web.Request) -> web.Response:
    w = world_of(request)
    return jresp(agent_view(w.agent_store.agent_path(user_of(request), request.match_info["id"])))


@routes.patch(r"/v1/agents/{id:\d+}")
async def update_agent(request: web.Request) -> web.Response:
    w = world_of(request)
    agent = w.agent_store.agent_path(user_of(request), request.match_info["id"])
    body = wrapped(await jbody(request, required=True), "agent")
    reject_unknown(body, {"name"})
    if "name" in body:
        if not isinstance(body["name"], str) or not body["name"].strip():
            raise invalid("name must be a non-empty string")
        agent.name = body["name"]
    return jresp(agent_view(agent))


@routes.delete(r"/v1/agents/{id:\d+}")
async def delete_agent(request: web.Request) -> web.Response:
    w = world_of(request)
    agent = w.agent_store.agent_path(user_of(request), request.match_info["id"])
    del w.agent_store.agents[agent.id]
    return jresp({"id": agent.id, "deleted": True})


def _agent(request: web.Request) -> Agent:
    """``/v1/agents/:agent_id/...``: resolved like any agent_id (422 agent_not_found)."""
    return world_of(request).agent_store.agent_param(
        user_of(request), request.match_info["agent_id"]
    )


@routes.get(r"/v1/agents/{agent_id}/core")
async def read_core(request: web.Request) -> web.Response:
    return jresp(dict(_agent(request).core))


@routes.patch(r"/v1/agents/{agent_id}/core")
async def patch_core(request: web.Request) -> web.Response:
    w, agent = world_of(request), _agent(request)
    errors = w.agent_store.patch_core(agent, await jbody(request, required=True))
    out = dict(agent.core)
    if not errors:
        return jresp(out)
    out["errors"] = {k: {"error": v, "error_code": "validation_error"} for k, v in errors.items()}
    return jresp(out, 207)


# ------------------------------------------------------------------ voices
@routes.get(r"/v1/agents/{agent_id}/voice/library")
async def voice_library(request: web.Request) -> web.Response:
    w, agent = world_of(request), _agent(request)
    source = request.query.get("source")
    voices = [
        v
        for v in w.agent_store.voices.values()
        if (v.agent_id is None or v.agent_id == agent.id) and (not source or v.source == source)
    ]
    return jresp([voice_view(v) for v in voices])


@routes.post(r"/v1/agents/{agent_id}/voice/integrations/elevenlabs")
async def connect_elevenlabs(request: web.Request) -> web.Response:
    agent = _agent(request)
    key = need_str(await jbody(request, required=True), "api_key")
    agent.elevenlabs_key_last4 = key[-4:]
    return jresp({"connected": True, "api_key_last4": agent.elevenlabs_key_last4})


@routes.post(r"/v1/agents/{agent_id}/voice/integrations/elevenlabs/test")
async def test_elevenlabs(request: web.Request) -> web.Response:
    _agent(request)
    key = need_str(await jbody(request, required=True), "api_key")
    # ASSUMPTION: a key is valid when it looks like an ElevenLabs key (docs/sim-assumptions.md).
    valid = bool(re.fullmatch(r"(sk_)?[A-Za-z0-9]{20,}", key))
    return jresp({"valid": valid})


@routes.delete(r"/v1/agents/{agent_id}/voice/integrations/elevenlabs")
async def disconnect_elevenlabs(request: web.Request) -> web.Response:
    agent = _agent(request)
    agent.elevenlabs_key_last4 = None
    return jresp({"connected": False})


# ASSUMPTION: the voice design bodies below (docs/sim-assumptions.md, "voices").
@routes.post(r"/v1/agents/{agent_id}/voice/design/generate-script")
async def design_script(request: web.Request) -> web.Response:
    _agent(request)
    prompt = need_str(await jbody(request, required=True), "prompt")
    script = (
        f"Hi, I'm the voice you described: {prompt[:120]}. "
        "Listen to how I sound when I tell a story, ask a question, and land a punchline."
    )
    return jresp({"script": script})


@routes.post(r"/v1/agents/{agent_id}/voice/design/generate-description")
async def design_description(request: web.Request) -> web.Response:
    _agent(request)
    body = await jbody(request, required=True)
    prompt = body.get("prompt") or body.get("script")
    if not isinstance(prompt, str) or not prompt.strip():
        raise invalid("prompt (or script) is required")
    return jresp({"description": f"Warm, confident, mid-pace voice; {prompt[:160]}"})


@routes.post(r"/v1/agents/{agent_id}/voice/design/generate-samples")
async def design_samples(request: web.Request) -> web.Response:
    w, agent = world_of(request), _agent(request)
    body = await jbody(request, required=True)
    description = need_str(body, "description")
    samples = []
    for i in range(3):
        gid = f"gv_{w.shared.token_hex(12)}"
        w.agent_store.voice_drafts[gid] = {"agent_id": agent.id, "description": description, "n": i}
        key = f"assets/voice_sample_{gid}.m4a"
        w.shared.cdn[key] = CdnObject(
            "sample", "audio/mp4", media_kind="audio", manifest={"voice": gid}
        )
        samples.append({"generated_voice_id": gid, "audio_url": w.shared.url(key)})
    return jresp({"samples": samples})


@routes.post(r"/v1/agents/{agent_id}/voice/design")
async def design_finalize(request: web.Request) -> web.Response:
    w, agent = world_of(request), _agent(request)
    body = await jbody(request, required=True)
    gid = need_str(body, "generated_voice_id")
    draft = w.agent_store.voice_drafts.get(gid)
    if draft is None or draft["agent_id"] != agent.id:
        raise invalid(f"generated_voice_id {gid} is not a sample of this agent")
    name = body.get("name") if isinstance(body.get("name"), str) else f"Designed voice {gid[-4:]}"
    voice = Voice(
        f"v_{w.shared.token_hex(16)}",
        str(name),
        "user",
        agent.id,
        str(body.get("gender", "unknown")),
        str(body.get("accent", "neutral")),
        str(draft["description"]),
        "designed",
    )
    w.agent_store.voices[voice.voice_id] = voice
    return jresp(voice_view(voice), 201)


@routes.post(r"/v1/agents/{agent_id}/voice/clone")
async def clone_voice(request: web.Request) -> web.Response:
    w, agent, user = world_of(request), _agent(request), user_of(request)
    body = await jbody(request, required=True)
    name = need_str(body, "name")
    res = w.assets.resource(user, body.get("audio_resource_id"))
    if res.object_type != "audio":
        raise invalid("audio_resource_id must be an audio resource")
    voice = Voice(
        f"v_{w.shared.token_hex(16)}",
        name,
        "user",
        agent.id,
        "unknown",
        "neutral",
        f"Cloned from {res.filename}",
        "cloned",
    )
    w.agent_store.voices[voice.voice_id] = voice
    return jresp(voice_view(voice), 201)


@routes.delete(r"/v1/agents/{agent_id}/voice/{voice_id}")
async def delete_voice(request: web.Request) -> web.Response:
    w, agent = world_of(request), _agent(request)
    voice = w.agent_store.voices.get(request.match_info["voice_id"])
    if voice is None:
        raise not_found("voice", request.match_info["voice_id"])
    if voice.agent_id != agent.id:
        raise forbidden("voice (only user-owned voices can be deleted)")
    del w.agent_store.voices[voice.voice_id]
    return jresp({"voice_id": voice.voice_id, "deleted": True})


@routes.post(r"/v1/agents/{agent_id}/voice/{voice_id}/preview")
async def preview_voice(request: web.Request) -> web.Response:
    w, agent = world_of(request), _agent(request)
    voice = w.agent_store.voices.get(request.match_info["voice_id"])
    if voice is None or (voice.agent_id is not None and voice.agent_id != agent.id):
        raise not_found("voice", request.match_info["voice_id"])
    body = await jbody(request)
    text = body.get("text") if isinstance(body.get("text"), str) else f"Hi, I'm {voice.name}."
    t = now()
    pid = w.shared.next_id("preview")
    key = f"assets/voice_preview_{pid}.m4a"
    w.shared.cdn[key] = CdnObject(
        "sample", "audio/mp4", media_kind="audio", manifest={"preview": pid}
    )
    w.agent_store.previews[pid] = Preview(
        pid, agent.id, voice.voice_id, str(text), t + w.clock.latency("voice_preview"), t, key
    )
    return jresp({"job_id": pid, "status": "pending"}, 202)


@routes.get(r"/v1/agents/{agent_id}/voice/preview/{job_id:\d+}")
async def poll_preview(request: web.Request) -> web.Response:
    w, agent = world_of(request), _agent(request)
    p = w.agent_store.previews.get(int(request.match_info["job_id"]))
    if p is None or p.agent_id != agent.id:
        raise not_found("preview job", request.match_info["job_id"])
    state = phase(pending_until(p.created_at, p.due_at - p.created_at), p.due_at, now())
    status = "completed" if state == "due" else state
    return jresp(
        {
            "job_id": p.id,
            "voice_id": p.voice_id,
            "status": status,
            "audio_url": w.shared.url(p.cdn_key) if status == "completed" else None,
        }
    )


# ------------------------------------------------------------------ persisted tokens
def _token_view(tok: Token, *, reveal: bool = False) -> dict[str, object]:
    out: dict[str, object] = {
        "id": tok.id,
        "name": tok.name,
        "last_four": tok.token[-4:],
        "revoked": tok.revoked,
        "created_at": iso(tok.created_at),
    }
    if reveal:
        out["token"] = tok.token
    return out


@routes.post("/v1/persisted_tokens")
async def create_token(request: web.Request) -> web.Response:
    w, user = world_of(request), user_of(request)
    body = wrapped(await jbody(request), "persisted_token")
    name = body.get("name", "API key")
    if not isinstance(name, str) or not name.strip():
        raise invalid("name must be a non-empty string")
    tok = Token(
        w.shared.next_id("token"), user.id, name, f"gen_pat_{w.shared.token_hex(32)}", now()
    )
    w.accounts.tokens[tok.id] = tok
    w.accounts.keys[tok.token] = user.id
    return jresp(_token_view(tok, reveal=True), 201)


@routes.get("/v1/persisted_tokens")
async def list_tokens(request: web.Request) -> web.Response:
    w, user = world_of(request), user_of(request)
    toks = [t for t in w.accounts.tokens.values() if t.user_id == user.id]
    return jresp([_token_view(t) for t in page_of(request, toks, SIM_PAGE_SIZE)])


def _token(request: web.Request) -> Token:
    w, user = world_of(request), user_of(request)
    tok = w.accounts.tokens.get(int(request.match_info["id"]))
    if tok is None or tok.user_id != user.id:
        raise not_found("token", request.match_info["id"])  # not yours looks like missing
    return tok


@routes.patch(r"/v1/persisted_tokens/{id:\d+}")
async def rename_token(request: web.Request) -> web.Response:
    tok = _token(request)
    body = wrapped(await jbody(request, required=True), "persisted_token")
    name = need_str(body, "name")
    tok.name = name
    return jresp(_token_view(tok))


@routes.delete(r"/v1/persisted_tokens/{id:\d+}/revoke")
async def revoke_token(request: web.Request) -> web.Response:
    w, tok = world_of(request), _token(request)
    tok.revoked = True
    w.accounts.keys.pop(tok.token, None)
    return jresp(_token_view(tok))


@routes.delete("/v1/persisted_tokens/revoke_all")
async def revoke_all(request: web.Request) -> web.Response:
    w, user = world_of(request), user_of(request)
    n = 0
    for tok in w.accounts.tokens.values():
        if tok.user_id == user.id and not tok.revoked:
            tok.revoked = True
            w.accounts.keys.pop(tok.token, None)
            n += 1
    return jresp({"revoked": n})


# ------------------------------------------------------------------ automation config
# ASSUMPTION: automation config fields and webhook delivery (docs/sim-assumptions.md,
# "automation", "webhooks"); URLs must be loopback: the simulator never calls out.
AUTOMATION_FIELDS = ("webhook_url", "callback_url", "polling_enabled")


@routes.get(r"/v1/agents/{agent_id}/automation_config")
async def read_automation(request: web.Request) -> web.Response:
    return jresp(_automation(_agent(request)))


def _automation(agent: Agent) -> dict[str, object]:
    base: dict[str, object] = {"webhook_url": None, "callback_url": None, "polling_enabled": False}
    base.update(agent.automation)
    return base


@routes.patch(r"/v1/agents/{agent_id}/automation_config")
async def patch_automation(request: web.Request) -> web.Response:
    agent = _agent(request)
    body = wrapped(await jbody(request, required=True), "automation_config")
    reject_unknown(body, AUTOMATION_FIELDS)
    for key in ("webhook_url", "callback_url"):
        if key in body:
            check_hook_url(key, body[key])
    if "polling_enabled" in body and not isinstance(body["polling_enabled"], bool):
        raise invalid("polling_enabled must be true or false")
    agent.automation.update(body)
    return jresp(_automation(agent))


@routes.post(r"/v1/agents/{agent_id}/automation_config/test_webhook")
@routes.post(r"/v1/agents/{agent_id}/automation_config/test_callback")
async def test_automation(request: web.Request) -> web.Response:
    agent = _agent(request)
    which = "webhook_url" if request.path.endswith("test_webhook") else "callback_url"
    url = _automation(agent)[which]
    if not isinstance(url, str) or not url:
        raise invalid(f"{which} is not configured")
    # A real POST of the test payload; the answer reports what really happened.
    error = await post_json(url, {"event": SIM_WEBHOOK_TEST_EVENT, "generation": None})
    return jresp({"success": True} if error is None else {"success": False, "error": error})
