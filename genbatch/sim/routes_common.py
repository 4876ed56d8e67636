"""What every route module shares: app keys, JSON in/out, and the JSON views of entities.

Views live here (not in the stores) because they are the wire format: field
names exactly as the reference and the contract spell them.
"""

from __future__ import annotations

import time
import uuid
from typing import Any, Final

import orjson
from aiohttp import web

from genbatch.sim.clock import iso
from genbatch.sim.dialect import internal_type
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
    return world_of(request).agent_store.agent_param(
        user_of(request), request.query.get("agent_id")
    )


async def agent_w(request: web.Request) -> Agent:
    """The agent of a write route: ``?agent_id=``, else the ``agent_id`` of the body.

    Today's API accepts it in the query or the body on every write route (the
    vendor's SDK sends render's in the body; docs/dialect.md §2).  A JSON or
    form-urlencoded body is read for it; a multipart one (an upload, streamed by
    its route) is not.
    """
    raw: Any = request.query.get("agent_id")
    if raw is None:
        ctype = request.content_type
        if ctype == "application/x-www-form-urlencoded":
            raw = (await request.post()).get("agent_id")
        elif not ctype.startswith("multipart/"):
            raw = (await jbody(request)).get("agent_id")
    return world_of(request).agent_store.agent_param(user_of(request), raw)


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


async def ebody(request: web.Request, *, required: bool = False) -> Json:
    """The JSON body of a write route without the ``agent_id`` it may carry (see agent_w)."""
    body = await jbody(request, required=required)
    body.pop("agent_id", None)
    return body


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


def ms(t: float) -> int:
    """Epoch seconds → the integer milliseconds of today's ``*_ts`` fields."""
    return int(t * 1000)


def sim_uuid(w: World, kind: str, ident: int) -> str:
    """A stable UUID for an object that has one in today's API (engines, organizations)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{w.shared.secret.hex()}/{kind}/{ident}"))


def workspace_view(w: World, ws: Workspace, user: User) -> Json:
    """An organization (workspace): today's balance fields, or the teaching document's."""
    if not w.legacy_paths:
        # ASSUMPTION: the whole balance is generic credit (docs/sim-assumptions.md, "workspaces").
        return {
            "id": ws.id,
            "uuid": sim_uuid(w, "organization", ws.id),
            "organization_id": ws.id,
            "name": ws.name,
            "avatar": None,
            "user_role": "owner" if ws.owner_id == user.id else "member",
            "credit": ws.credit_balance,
            "available_credit": {"generic": ws.credit_balance, "aura": 0.0},
            "total_members": sum(1 for u in w.accounts.users.values() if ws.id in u.workspace_ids),
            "credit_plan": None,
        }
    return {
        "id": ws.id,
        "name": ws.name,
        "owner_id": ws.owner_id,
        "role": "owner" if ws.owner_id == user.id else "member",
        "credit_balance": ws.credit_balance,
        "agent_ids": [a.id for a in w.agent_store.agents.values() if a.workspace_id == ws.id],
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
    out: Json = {
        "id": r.id,
        "url": w.shared.url(r.cdn_key),
        "thumbnail_url": w.shared.url(r.thumb_key) if r.thumb_key else None,
        "object_type": r.object_type,
    }
    if not w.legacy_paths:
        # ASSUMPTION: `type` repeats the object type (docs/sim-assumptions.md, "outputs").
        out["type"] = r.object_type
    return out


def generation_view(w: World, g: Generation, t: float) -> Json:
    """A generation or render: today's object, or the teaching document era's.

    Today's has no timestamps, unless the world serves them (``SimConfig.timestamps``,
    profile ``timestamps``): then ``created_at`` and ``updated_at``, the time of its
    last status change (its completion once terminal).
    """
    status = w.gens.status_of(g, t)  # may settle it: read everything else after
    if not w.legacy_paths:
        out: Json = {
            "id": g.id,
            "status": status,
            "user_job_type": g.user_job_type or internal_type(g.generation_type, g.model),
            "result": g.result,
            "failed_reason": g.error,
            "output_resources": [output_view(w, rid) for rid in g.output_ids],
            "execution_cost": g.credits,
        }
        if w.timestamps:
            # ASSUMPTION: a server that adds timestamps writes them as the legacy
            # dialect does (docs/sim-assumptions.md, "gen-timestamps").
            changed = g.updated_at
            if status == "processing":
                changed = max(changed, g.pending_until)
            out["created_at"] = iso(g.created_at)
            out["updated_at"] = iso(changed)
        return out
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


#: Today's layer `type` for each of the simulator's layer kinds, and back.
TODAY_LAYER_TYPE: Final[dict[str, str]] = {
    "video": "clip",
    "audio": "sound",
    "text": "text",
    "image": "image",
    "captions": "caption",
}
SIM_LAYER_TYPE: Final[dict[str, str]] = {v: k for k, v in TODAY_LAYER_TYPE.items()}


def _history(w: World, ids: list[int], t: float) -> list[Json]:
    """Generation objects of a cell's or layer's history (reading may settle them)."""
    gens = w.gens.generations
    return [generation_view(w, gens[i], t) for i in ids if i in gens]


def _default_of(jobs: list[Json], chosen: int | None) -> Json | None:
    """The chosen generation, else the newest (greatest id); None without history."""
    # ASSUMPTION: the newest generation is the default (docs/sim-assumptions.md, "cell-read").
    if chosen is not None:
        return next((j for j in jobs if j["id"] == chosen), None)
    return max(jobs, key=lambda j: int(j["id"]), default=None)


def _updated_ts(w: World, updated_at: float, ids: list[int]) -> int:
    gens = w.gens.generations
    return ms(max([updated_at, *(gens[i].updated_at for i in ids if i in gens)]))


def layer_view(w: World, lay: Layer, t: float) -> Json:
    if not w.legacy_paths:
        jobs = _history(w, lay.generation_ids, t)
        attributes = dict(lay.settings)
        if lay.source_column is not None:
            attributes["source_column"] = lay.source_column
        return {
            "id": lay.id,
            "name": lay.name,
            "position": lay.position,
            "type": TODAY_LAYER_TYPE.get(lay.layer_type, lay.layer_type),
            "additional_attributes": attributes,
            "created_at_ts": ms(lay.created_at),
            "updated_at_ts": _updated_ts(w, lay.updated_at, lay.generation_ids),
            "default_user_job": _default_of(jobs, None),
            "user_jobs": jobs,
        }
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
    if not w.legacy_paths:
        jobs = _history(w, cell.generation_ids, t)  # before `value`: settling may write it
        return {
            "id": cell.id,
            "value": cell.value,
            "additional_attributes": cell.attributes,
            # ASSUMPTION: a cell's role is its column's (docs/sim-assumptions.md, "cell-read").
            "cell_role": col.role,
            "column_id": col.id,
            "spreadsheet_row_id": cell.row_id,
            "created_at_ts": ms(cell.created_at),
            "updated_at_ts": _updated_ts(w, cell.updated_at, cell.generation_ids),
            "default_user_job": _default_of(jobs, cell.default_generation_id),
            "user_jobs": jobs,
            "video_layers": [layer_view(w, w.sheets.layers[lid], t) for lid in cell.layer_ids],
        }
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


def column_view(w: World, col: Column) -> Json:
    if not w.legacy_paths:
        return {
            "id": col.id,
            "title": col.name,
            "temp_title": None,
            "type": col.column_type,
            "column_role": col.role,
            "description": None,
            "position": col.position,
            "additional_attributes": {},
            "created_at_ts": ms(col.created_at),
            "updated_at_ts": ms(col.updated_at),
        }
    return {
        "id": col.id,
        "name": col.name,
        "column_type": col.column_type,
        "role": col.role,
        "position": col.position,
        "default_creation_card": col.default_card,
    }


def _row_cells(w: World, row: Row, t: float) -> list[Json]:
    cols = sorted((w.sheets.columns[c] for c in row.cell_ids), key=lambda c: c.position)
    return [cell_view(w, w.sheets.cells[row.cell_ids[c.id]], t) for c in cols]


def row_view(w: World, row: Row, t: float, *, with_cells: bool = False) -> Json:
    out: Json = {"id": row.id, "position": row.position}
    if not w.legacy_paths:
        out["additional_attributes"] = row.attributes
        out["created_at_ts"] = ms(row.created_at)
        out["updated_at_ts"] = ms(row.updated_at)
        if with_cells:
            out["spreadsheet_cells"] = _row_cells(w, row, t)
        return out
    if with_cells:
        out["cells"] = [cell_view(w, w.sheets.cells[cid], t) for cid in row.cell_ids.values()]
    return out


def engine_view(w: World, eng: Engine, t: float) -> Json:
    """An engine with everything nested: today's sheet (rows hold their cells) or the old one."""
    rows = sorted((w.sheets.rows[r] for r in eng.row_ids), key=lambda r: r.position)
    cols = sorted((w.sheets.columns[c] for c in eng.column_ids), key=lambda c: c.position)
    if not w.legacy_paths:
        # ASSUMPTION: slug, project_type and status of a sheet (docs/sim-assumptions.md, "sheets").
        return {
            "id": eng.id,
            "slug": f"{eng.template_slug or 'vidsheet'}-{eng.id}",
            "title": eng.title,
            "project_type": "spreadsheet_v2",
            "is_default": False,
            "uuid": sim_uuid(w, "engine", eng.id),
            "status": "active",
            "created_at": int(eng.created_at),
            "created_at_ts": ms(eng.created_at),
            "updated_at_ts": ms(eng.updated_at),
            "spreadsheet_columns": [column_view(w, c) for c in cols],
            "spreadsheet_rows": [row_view(w, r, t, with_cells=True) for r in rows],
            "global_variables_sheet": None,
        }
    cells = [w.sheets.cells[row.cell_ids[col.id]] for row in rows for col in cols]
    return {
        "id": eng.id,
        "title": eng.title,
        "agent_id": eng.agent_id,
        "template_slug": eng.template_slug,
        "aspect_ratio": eng.aspect_ratio,
        "spreadsheet_columns": [column_view(w, c) for c in cols],
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
        "result": job.result if status != "pending" else None,  # monitoring: while processing
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
