"""Step 4 generate/poll/stop/continue and Step 5 render: the paid, async calls."""

from __future__ import annotations

from aiohttp import web

from genbatch.sim import templates
from genbatch.sim.dialect import canonical_type, internal_type
from genbatch.sim.entities import Cell, Engine, Generation, Json, Layer, invalid, reject_unknown
from genbatch.sim.routes_common import (
    api_key_of,
    ebody,
    generation_view,
    jresp,
    now,
    user_of,
    world_of,
)
from genbatch.sim.routes_engines import ENGINE, cell_w
from genbatch.sim.world import World

routes = web.RouteTableDef()


def _accepted(gen: Generation) -> web.Response:
    return jresp({"generation_id": gen.id, "status": "pending"}, 201)


async def _card(request: web.Request, stored: Json | None) -> tuple[Json, str | None]:
    """The card to run and the internal type name it was asked by, if any.

    The body's ``{generation_type, data}`` (``data`` may be left out, as the
    vendor's SDK does; the type may be canonical or internal), else the stored
    card: an empty body, or one carrying only ``agent_id``, runs the stored card.
    """
    body = await ebody(request)
    if body:
        reject_unknown(body, {"generation_type", "data"})
        data = body.get("data", {})
        sent = body.get("generation_type")
        gtype = canonical_type(sent, data)
        internal = sent if isinstance(sent, str) and sent != gtype else None
        return {"generation_type": gtype, "data": data}, internal
    if stored is None or not stored.get("generation_type"):
        raise invalid(
            "no creation card: send {generation_type, data} or PATCH the cell's card first"
        )
    return stored, None


def _start(
    request: web.Request,
    w: World,
    eng: Engine,
    cell: Cell,
    layer: Layer | None,
    card: Json,
    internal: str | None,
) -> Generation:
    data = card.get("data")
    if not isinstance(data, dict):
        raise invalid("data must be an object")
    resolved = w.gens.resolve_card(eng, w.sheets.rows[cell.row_id], data)
    try:
        gtype, checked = templates.validate_card(
            card.get("generation_type"), resolved, legacy=w.legacy_paths
        )
    except ValueError as exc:
        raise invalid(str(exc)) from None
    ws = w.accounts.workspaces.get(eng.workspace_id)
    if ws is None:
        raise invalid("the engine's workspace no longer exists")
    gen = w.gens.start(
        ws=ws,
        eng=eng,
        cell=cell,
        layer=layer,
        generation_type=gtype,
        data=checked,
        idempotency_key=request.headers.get("Idempotency-Key"),
        api_key=api_key_of(request),
        now=now(),
    )
    gen.user_job_type = internal or internal_type(gtype, gen.model)
    _record(layer or cell, gen)
    return gen


def _record(target: Cell | Layer, gen: Generation) -> None:
    """A new generation joins its cell's (layer's) history and becomes its default."""
    target.generation_ids.append(gen.id)
    target.updated_at = gen.created_at
    if isinstance(target, Cell):
        target.default_generation_id = None  # the newest generation is the default again


@routes.post(ENGINE + r"/cells/{cell_id:\d+}/generate")
async def generate_cell(request: web.Request) -> web.Response:
    w, (eng, cell) = world_of(request), await cell_w(request)
    if w.sheets.columns[cell.column_id].role == "final_video":
        raise invalid("the final_video cell is rendered, not generated: POST …/render")
    card, internal = await _card(request, cell.card)
    from_body = card is not cell.card
    gen = _start(request, w, eng, cell, None, card, internal)
    # ASSUMPTION: a card sent with generate becomes the cell's card (docs/sim-assumptions.md).
    if from_body:
        cell.card = {"generation_type": card["generation_type"], "data": dict(card["data"])}
    return _accepted(gen)


@routes.post(ENGINE + r"/cells/{cell_id:\d+}/layers/{layer_id:\d+}/generate")
async def generate_layer(request: web.Request) -> web.Response:
    w, (eng, cell) = world_of(request), await cell_w(request)
    layer = w.sheets.layer(cell, request.match_info["layer_id"])
    card, internal = await _card(request, layer.card)
    from_body = card is not layer.card
    gen = _start(request, w, eng, cell, layer, card, internal)
    if from_body:
        layer.card = {"generation_type": card["generation_type"], "data": dict(card["data"])}
    return _accepted(gen)


@routes.post(ENGINE + r"/cells/{cell_id:\d+}/render")
async def render(request: web.Request) -> web.Response:
    w, (eng, cell) = world_of(request), await cell_w(request)
    if w.sheets.columns[cell.column_id].role != "final_video":
        raise invalid("render works on the final_video cell only")
    ws = w.accounts.workspaces.get(eng.workspace_id)
    if ws is None:
        raise invalid("the engine's workspace no longer exists")
    gen = w.gens.start(
        ws=ws,
        eng=eng,
        cell=cell,
        layer=None,
        generation_type="render",
        data={"aspect_ratio": eng.aspect_ratio},
        idempotency_key=request.headers.get("Idempotency-Key"),
        api_key=api_key_of(request),
        now=now(),
        manifest=w.sheets.render_manifest(eng, cell),
    )
    # ASSUMPTION: a render reports user_job_type "render" (docs/sim-assumptions.md, "render").
    gen.user_job_type = "render"
    _record(cell, gen)
    return _accepted(gen)


@routes.get(r"/v1/generations/{id:\d+}")
async def read_generation(request: web.Request) -> web.Response:
    w = world_of(request)
    gen = w.gens.generation(user_of(request), request.match_info["id"])
    return jresp(generation_view(w, gen, now()))


@routes.post(r"/v1/generations/{id:\d+}/stop")
async def stop_generation(request: web.Request) -> web.Response:
    w, t = world_of(request), now()
    gen = w.gens.generation(user_of(request), request.match_info["id"])
    w.gens.stop(gen, t)
    return jresp(generation_view(w, gen, t))


@routes.post(r"/v1/generations/{id:\d+}/continue")
async def continue_generation(request: web.Request) -> web.Response:
    w, t = world_of(request), now()
    gen = w.gens.generation(user_of(request), request.match_info["id"])
    w.gens.resume(gen, t)
    return jresp(generation_view(w, gen, t))
