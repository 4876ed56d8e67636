"""What every route module shares: app keys, JSON in/out, and the JSON views of entities.

Views live here (not in the stores) because they are the wire format: field
names exactly as the reference and the contract spell them.
"""

from __future__ import annotations

import time
from typing import Any, Final

import orjson
from aiohttp import web

from genbatch.sim.clock import iso
from genbatch.sim.entities import (
    Agent,
    Cell,
    Column,
    Conversation,
    Engine,
    Generation,
    Json,
    Layer,
    Message,
    Resource,
    Row,
    Run,
    User,
    UserJob,
    Voice,
    Workspace,
    invalid,
)
from genbatch.sim.storage import BlobStore, Presigner
from genbatch.sim.world import World

#: Page size of paginated list endpoints (templates, content resources).
SIM_PAGE_SIZE: Final = 50

WORLD = web.AppKey("world", World)
STORE = web.AppKey("store", BlobStore)
PRESIGNER = web.AppKey("presigner", Presigner)
ADMIN_KEY = web.AppKey("admin_key", str)
#: Per-request storage the middleware fills for handlers.
REQ_USER = web.RequestKey("user", User)
REQ_API_KEY = web.RequestKey("api_key", str)
REQ_DROPPED = web.RequestKey("dropped", bool)


def now() -> float:
    return time.time()


def world_of(request: web.Request) -> World:
    return request.app[WORLD]


def user_of(request: web.Request) -> User:
    return request[REQ_USER]


def api_key_of(request: web.Request) -> str:
    return request[REQ_API_KEY]


def agent_q(request: web.Request) -> Agent:
    """The ``?agent_id=`` of a request, resolved (422 agent_not_found / 403)."""
    return world_of(request).profiles.agent_param(user_of(request), request.query.get("agent_id"))


def jresp(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


def error_response(status: int, code: str, message: str) -> web.Response:
    return jresp({"error": message, "error_code": code}, status)


async def jbody(request: web.Request, *, required: bool = False) -> Json:
    """The JSON object body; 422 validation_error when it is not one."""
    raw = await request.read()
    if not raw.strip():
        if required:
            raise invalid("request body must be a JSON object")
        return {}
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise invalid(f"request body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise invalid("request body must be a JSON object")
    return data


def wrapped(body: Json, key: str) -> Json:
    """Rails-style ``{"<key>": {...}}`` or the same fields flat; 422 if not an object."""
    inner = body.get(key, body)
    if not isinstance(inner, dict):
        raise invalid(f"{key} must be an object")
    return inner


# ASSUMPTION: lists are bare arrays, ?page=&per_page= (docs/sim-assumptions.md, "lists").
def page_of(request: web.Request, items: list[Any], per_page: int) -> list[Any]:
    try:
        page = max(1, int(request.query.get("page", "1")))
        size = max(1, min(200, int(request.query.get("per_page", str(per_page)))))
    except ValueError:
        raise invalid("page and per_page must be integers") from None
    return items[(page - 1) * size : page * size]


# --------------------------------------------------------------------------
# Views
# --------------------------------------------------------------------------
def user_view(u: User) -> Json:
    return {
        "id": u.id,
        "name": u.name,
        "email": u.email,
        "workspace_ids": list(u.workspace_ids),
        "current_workspace_id": u.workspace_ids[0] if u.workspace_ids else None,
    }


def workspace_view(w: World, ws: Workspace, user: User) -> Json:
    return {
        "id": ws.id,
        "name": ws.name,
        "owner_id": ws.owner_id,
        "role": "owner" if ws.owner_id == user.id else "member",
        "credit_balance": ws.credit_balance,
        "agent_ids": [a.id for a in w.profiles.agents.values() if a.workspace_id == ws.id],
        "created_at": iso(ws.created_at),
    }


def agent_view(a: Agent) -> Json:
    return {
        "id": a.id,
        "name": a.name,
        "workspace_id": a.workspace_id,
        "brand_name": a.core.get("brand_name"),
        "description": a.core.get("description"),
        "preferences": list(a.preferences),
        "created_at": iso(a.created_at),
    }


def voice_view(v: Voice) -> Json:
    return {
        "voice_id": v.voice_id,
        "name": v.name,
        "source": v.source,
        "method": v.method,
        "gender": v.gender,
        "accent": v.accent,
        "description": v.description,
        "agent_id": v.agent_id,
    }


def resource_view(w: World, r: Resource) -> Json:
    return {
        "id": r.id,
        "url": w.shared.url(r.cdn_key),
        "thumbnail_url": w.shared.url(r.thumb_key) if r.thumb_key else None,
        "content_type": r.content_type,
        "byte_size": r.byte_size,
        "filename": r.filename,
        "name": r.name or r.filename,
        "object_type": r.object_type,
        "source": r.source,
        "asset_folder_id": r.folder_id,
        "created_at": iso(r.created_at),
    }


def output_view(w: World, rid: int) -> Json:
    r = w.assets.resources[rid]
    return {
        "id": r.id,
        "url": w.shared.url(r.cdn_key),
        "thumbnail_url": w.shared.url(r.thumb_key) if r.thumb_key else None,
        "object_type": r.object_type,
    }


def generation_view(w: World, g: Generation, t: float) -> Json:
    status = w.gens.status_of(g, t)
    return {
        "id": g.id,
        "status": status,
        "generation_type": g.generation_type,
        "model": g.model,
        "engine_id": g.engine_id,
        "cell_id": g.cell_id,
        "layer_id": g.layer_id,
        "row_id": g.row_id,
        "credits": g.credits,
        "result": g.result,
        "output_resources": [output_view(w, rid) for rid in g.output_ids],
        "error": g.error,
        "idempotency_key": g.idempotency_key,
        "created_at": iso(g.created_at),
        "updated_at": iso(g.updated_at),
    }


def _card_of(w: World, cell: Cell) -> Json:
    if cell.card is not None:
        return cell.card
    col = w.sheets.columns[cell.column_id]
    if col.role == "final_video":
        return {"generation_type": "render", "data": {}}
    return {"generation_type": None, "data": {}}


def layer_view(w: World, lay: Layer, t: float) -> Json:
    gen = w.gens.generations.get(lay.latest_generation_id) if lay.latest_generation_id else None
    return {
        "id": lay.id,
        "cell_id": lay.cell_id,
        "name": lay.name,
        "layer_type": lay.layer_type,
        "source_column": lay.source_column,
        "position": lay.position,
        "settings": lay.settings,
        "creation_card": lay.card,
        "generation_id": gen.id if gen else None,
        "generation_status": w.gens.status_of(gen, t) if gen else None,
        "output_resources": [output_view(w, rid) for rid in lay.output_ids],
    }


def cell_view(w: World, cell: Cell, t: float) -> Json:
    col = w.sheets.columns[cell.column_id]
    gen = w.gens.generations.get(cell.latest_generation_id) if cell.latest_generation_id else None
    return {
        "id": cell.id,
        "spreadsheet_row_id": cell.row_id,
        "spreadsheet_column_id": cell.column_id,
        "column_name": col.name,
        "value": cell.value,
        "creation_card": _card_of(w, cell),
        "generation_id": gen.id if gen else None,
        "generation_status": w.gens.status_of(gen, t) if gen else None,
        "output_resources": [output_view(w, rid) for rid in cell.output_ids],
        "layers": [layer_view(w, w.sheets.layers[lid], t) for lid in cell.layer_ids],
        "default_user_job": cell.default_user_job,
    }


def column_view(col: Column) -> Json:
    return {
        "id": col.id,
        "name": col.name,
        "column_type": col.column_type,
        "role": col.role,
        "position": col.position,
        "default_creation_card": col.default_card,
    }


def row_view(w: World, row: Row, t: float, *, with_cells: bool = False) -> Json:
    out: Json = {"id": row.id, "position": row.position}
    if with_cells:
        out["cells"] = [cell_view(w, w.sheets.cells[cid], t) for cid in row.cell_ids.values()]
    return out


def engine_view(w: World, eng: Engine, t: float) -> Json:
    rows = sorted((w.sheets.rows[r] for r in eng.row_ids), key=lambda r: r.position)
    cols = sorted((w.sheets.columns[c] for c in eng.column_ids), key=lambda c: c.position)
    cells = [w.sheets.cells[row.cell_ids[col.id]] for row in rows for col in cols]
    return {
        "id": eng.id,
        "title": eng.title,
        "agent_id": eng.agent_id,
        "template_slug": eng.template_slug,
        "aspect_ratio": eng.aspect_ratio,
        "spreadsheet_columns": [column_view(c) for c in cols],
        "spreadsheet_rows": [row_view(w, r, t) for r in rows],
        "spreadsheet_cells": [cell_view(w, c, t) for c in cells],
        "layers": [layer_view(w, w.sheets.layers[lid], t) for c in cells for lid in c.layer_ids],
        "created_at": iso(eng.created_at),
        "updated_at": iso(eng.updated_at),
    }


def job_view(w: World, job: UserJob, t: float) -> Json:
    status = w.jobs.status(job, t)
    return {
        "id": job.id,
        "agent_id": job.agent_id,
        "user_job_type": job.user_job_type,
        "status": status,
        "data": job.data,
        "result": job.result if status == "completed" else None,
        "error": job.error,
        "scheduled_time": iso(job.scheduled_at) if job.scheduled_at is not None else None,
        "created_at": iso(job.created_at),
        "updated_at": iso(job.updated_at),
    }


def run_view(w: World, run: Run, t: float) -> Json:
    status = w.chat.run_status(run, t)
    return {
        "run_id": run.id,
        "id": run.id,
        "agent_id": run.agent_id,
        "conversation_id": run.conversation_id,
        "status": status,
        "kind": run.kind,
        "message": run.message,
        "pending_action": run.pending_action,
        "result": run.result,
        "firebase_path": firebase_path(run),
        "created_at": iso(run.created_at),
        "updated_at": iso(run.updated_at),
    }


def firebase_path(run: Run) -> str:
    return f"agents/{run.agent_id}/conversations/{run.conversation_id}/runs/{run.id}"


def conversation_view(conv: Conversation) -> Json:
    return {
        "id": conv.id,
        "agent_id": conv.agent_id,
        "title": conv.title,
        "pinned": conv.pinned,
        "message_count": len(conv.message_ids),
        "run_ids": list(conv.run_ids),
        "created_at": iso(conv.created_at),
        "updated_at": iso(conv.updated_at),
    }


def message_view(w: World, msg: Message) -> Json:
    return {
        "id": msg.id,
        "conversation_id": msg.conversation_id,
        "role": msg.role,
        "content": msg.content,
        "run_id": msg.run_id,
        "ideas": [w.chat.ideas[i] for i in msg.idea_ids if i in w.chat.ideas],
        "created_at": iso(msg.created_at),
    }
