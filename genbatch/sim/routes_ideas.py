"""Step 2 — Generate Content Ideas (the agent host): runs, approvals, conversations,
messages, ideas and their status flow, standalone research."""

from __future__ import annotations

from aiohttp import web

from genbatch.sim.chat import SIM_RESEARCH_LATENCY
from genbatch.sim.clock import iso
from genbatch.sim.entities import Conversation, Run, invalid, need_str, reject_unknown
from genbatch.sim.routes_common import (
    agent_q,
    conversation_view,
    firebase_path,
    jbody,
    jresp,
    message_view,
    now,
    run_view,
    user_of,
    world_of,
)

routes = web.RouteTableDef()

IDEA_FLOW = ("generated", "approve_to_create", "ready_for_review", "approved_to_post", "posted")
IDEA_EDIT = ("change_idea", "change_video", "rejected")
# ASSUMPTION: where "cycle to next status" leads from an edit status
# (docs/sim-assumptions.md, "idea-cycle").
IDEA_EDIT_NEXT = {"change_idea": "generated", "change_video": "approve_to_create"}


def _started(run: Run) -> web.Response:
    return jresp(
        {
            "run_id": run.id,
            "conversation_id": run.conversation_id,
            "status": "running",
            "firebase_path": firebase_path(run),
        },
        201,
    )


@routes.post("/v1/agent/run")
async def start_run(request: web.Request) -> web.Response:
    w, user = world_of(request), user_of(request)
    body = await jbody(request, required=True)
    agent = w.agent_store.agent_param(user, body.get("agent_id"))
    message = need_str(body, "message")
    conv: Conversation | None = None
    if body.get("conversation_id") is not None:
        conv = w.chat.conversation(user, body["conversation_id"])
        if conv.agent_id != agent.id:
            raise invalid(f"conversation {conv.id} belongs to another agent")
    return _started(w.chat.start_run(agent, message, conv, now(), {}))


@routes.post("/v1/research")
async def start_research(request: web.Request) -> web.Response:
    w, user = world_of(request), user_of(request)
    body = await jbody(request, required=True)
    agent = w.agent_store.agent_param(user, body.get("agent_id"))
    topic = need_str(body, "topic")
    depth = body.get("depth", "default")
    if depth not in SIM_RESEARCH_LATENCY:
        raise invalid(f"depth must be one of {', '.join(SIM_RESEARCH_LATENCY)}")
    params = {"kind": "research", "topic": topic, "depth": depth}
    return _started(w.chat.start_run(agent, f"Research: {topic}", None, now(), params))


@routes.get(r"/v1/agent/runs/{run_id:\d+}")
async def read_run(request: web.Request) -> web.Response:
    w = world_of(request)
    return jresp(run_view(w, w.chat.run(user_of(request), request.match_info["run_id"]), now()))


@routes.post(r"/v1/agent/runs/{run_id:\d+}/approve")
async def approve_run(request: web.Request) -> web.Response:
    w = world_of(request)
    run = w.chat.run(user_of(request), request.match_info["run_id"])
    body = await jbody(request, required=True)
    approved = body.get("approved")
    if not isinstance(approved, bool):
        raise invalid("approved must be true or false")
    t = now()
    w.chat.run_status(run, t)
    w.chat.approve_run(run, approved, t)
    return jresp(run_view(w, run, t))


# ------------------------------------------------------------------ conversations
@routes.get("/v1/agent/conversations")
async def list_conversations(request: web.Request) -> web.Response:
    w, agent = world_of(request), agent_q(request)
    convs = [c for c in w.chat.conversations.values() if c.agent_id == agent.id]
    convs.sort(key=lambda c: (not c.pinned, -c.updated_at))
    return jresp([conversation_view(c) for c in convs])


@routes.get(r"/v1/agent/conversations/{id:\d+}")
async def read_conversation(request: web.Request) -> web.Response:
    w = world_of(request)
    return jresp(conversation_view(w.chat.conversation(user_of(request), request.match_info["id"])))


@routes.patch(r"/v1/agent/conversations/{id:\d+}")
async def update_conversation(request: web.Request) -> web.Response:
    w = world_of(request)
    conv = w.chat.conversation(user_of(request), request.match_info["id"])
    body = await jbody(request, required=True)
    reject_unknown(body, {"title", "pinned"})
    if "title" in body:
        if not isinstance(body["title"], str) or not body["title"].strip():
            raise invalid("title must be a non-empty string")
        conv.title = body["title"]
    if "pinned" in body:
        if not isinstance(body["pinned"], bool):
            raise invalid("pinned must be true or false")
        conv.pinned = body["pinned"]
    conv.updated_at = now()
    return jresp(conversation_view(conv))


@routes.delete(r"/v1/agent/conversations/{id:\d+}")
async def delete_conversation(request: web.Request) -> web.Response:
    w = world_of(request)
    conv = w.chat.conversation(user_of(request), request.match_info["id"])
    for mid in conv.message_ids:
        w.chat.messages.pop(mid, None)
    del w.chat.conversations[conv.id]
    return jresp({"id": conv.id, "deleted": True})


@routes.get(r"/v1/agent/conversations/{id:\d+}/messages")
async def list_messages(request: web.Request) -> web.Response:
    w = world_of(request)
    conv = w.chat.conversation(user_of(request), request.match_info["id"])
    return jresp([message_view(w, w.chat.messages[m]) for m in conv.message_ids])


@routes.get(r"/v1/agent/conversations/{id:\d+}/runs")
async def list_runs(request: web.Request) -> web.Response:
    w = world_of(request)
    conv = w.chat.conversation(user_of(request), request.match_info["id"])
    t = now()
    return jresp([run_view(w, w.chat.runs[r], t) for r in conv.run_ids])


# ------------------------------------------------------------------ ideas
@routes.get("/v1/agent/ideas")
async def list_ideas(request: web.Request) -> web.Response:
    w, agent = world_of(request), agent_q(request)
    status = request.query.get("status")
    if status and status not in IDEA_FLOW + IDEA_EDIT:
        raise invalid(f"status must be one of {', '.join(IDEA_FLOW + IDEA_EDIT)}")
    ideas = [
        i
        for i in w.chat.ideas.values()
        if i["agent_id"] == agent.id and (not status or i["status"] == status)
    ]
    return jresp(ideas)


@routes.get(r"/v1/agent/ideas/{id:\d+}")
async def read_idea(request: web.Request) -> web.Response:
    return jresp(world_of(request).chat.idea(user_of(request), request.match_info["id"]))


@routes.post(r"/v1/agent/ideas/{id:\d+}/status")
async def cycle_idea(request: web.Request) -> web.Response:
    idea = world_of(request).chat.idea(user_of(request), request.match_info["id"])
    current = idea["status"]
    if current in IDEA_FLOW:
        pos = IDEA_FLOW.index(current)
        if pos == len(IDEA_FLOW) - 1:
            raise invalid("idea is already posted; there is no next status")
        nxt = IDEA_FLOW[pos + 1]
    elif current in IDEA_EDIT_NEXT:
        nxt = IDEA_EDIT_NEXT[current]
    else:
        raise invalid(f"idea is {current}; set an explicit status instead")
    idea["status"] = nxt
    idea["updated_at"] = iso(now())
    return jresp(idea)


@routes.put(r"/v1/agent/ideas/{id:\d+}/status/{status}")
async def set_idea_status(request: web.Request) -> web.Response:
    idea = world_of(request).chat.idea(user_of(request), request.match_info["id"])
    status = request.match_info["status"]
    if status not in IDEA_FLOW + IDEA_EDIT:
        raise invalid(f"status must be one of {', '.join(IDEA_FLOW + IDEA_EDIT)}")
    idea["status"] = status
    idea["updated_at"] = iso(now())
    return jresp(idea)
