"""Step 3 — Convert Idea to Vidsheet, and Step 4's structure: templates, engines,
rows, columns, cells, layers, global variables.

Every engine route is declared once, under today's ``/v1/vidsheet`` prefix;
``dialect.served`` moves the table under ``/v1/autocontentengine`` when the
simulator speaks the teaching document.  Bodies accept both dialects' field
names (today's WIRE names, docs/dialect.md §2, and the teaching document era's);
answers take the shape of the dialect served (``routes_common`` views).
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from typing import Any, Final

from aiohttp import web

from genbatch.sim import templates
from genbatch.sim.dialect import TODAY_PREFIX, canonical_type
from genbatch.sim.entities import (
    Agent,
    ApiError,
    Cell,
    Column,
    Engine,
    Json,
    Row,
    as_int,
    invalid,
    need_str,
    not_found,
    reject_unknown,
)
from genbatch.sim.routes_common import (
    SIM_LAYER_TYPE,
    SIM_PAGE_SIZE,
    agent_q,
    agent_w,
    cell_view,
    column_view,
    ebody,
    engine_view,
    jbody,
    jresp,
    layer_view,
    now,
    page_of,
    row_view,
    user_of,
    world_of,
    wrapped,
)
from genbatch.sim.world import World

routes = web.RouteTableDef()

# ASSUMPTION: layers and their types (docs/sim-assumptions.md, "layers").
LAYER_TYPES = ("video", "image", "audio", "text", "captions")
#: Column types a column may be created with: the teaching document's four, and
#: today's ``media`` (``stats`` columns are system columns).
CREATABLE_COLUMN_TYPES: Final = (*templates.COLUMN_TYPES, "media")
ENGINE = TODAY_PREFIX + r"/{id:\d+}"


# ------------------------------------------------------------------ templates
def _template_summary(w: World, t: templates.TemplateSpec) -> Json:
    return {
        "slug": t.slug,
        "title": t.title,
        "description": t.description,
        "tags": list(t.tags),
        "aspect_ratio": t.aspect_ratio,
        "cover": w.shared.url(f"thumbnails/template_{t.slug}.jpg"),
        "recent_generated_contents": [
            {
                "url": w.shared.url(f"outputs/template_{t.slug}_sample.mp4"),
                "thumbnail_url": w.shared.url(f"thumbnails/template_{t.slug}.jpg"),
                "object_type": "video",
            }
        ],
    }


@routes.get("/v1/templates/projects")
async def list_templates(request: web.Request) -> web.Response:
    w = world_of(request)
    items = [_template_summary(w, t) for t in templates.TEMPLATES]
    return jresp(page_of(request, items, SIM_PAGE_SIZE))


@routes.get("/v1/templates/projects/{slug}")
async def read_template(request: web.Request) -> web.Response:
    w = world_of(request)
    t = templates.TEMPLATES_BY_SLUG.get(request.match_info["slug"])
    if t is None:
        raise ApiError(404, "not_found", f"template {request.match_info['slug']} not found")
    out = _template_summary(w, t)
    out["spreadsheet_columns"] = [
        {
            "name": c.name,
            "column_type": c.column_type,
            "role": c.role,
            "position": i,
            "default_creation_card": c.card,
        }
        for i, c in enumerate(t.columns)
    ]
    out["layers"] = [
        {
            "name": lay.name,
            "layer_type": lay.layer_type,
            "source_column": lay.source_column,
            "position": i,
            "settings": lay.settings,
        }
        for i, lay in enumerate(t.layers)
    ]
    out["row_count"] = 1
    return jresp(out)


@routes.post("/v1/templates/spreadsheets/{slug}/clone")
async def clone_template(request: web.Request) -> web.Response:
    w, user = world_of(request), user_of(request)
    body = await jbody(request)
    agent = w.agent_store.agent_param(user, body.get("agent_id", request.query.get("agent_id")))
    slug = request.match_info["slug"]
    if not w.legacy_paths and slug not in templates.TEMPLATES_BY_SLUG:
        raise ApiError(404, "template_not_found", f"no template matches {slug}")
    t = now()
    eng = w.sheets.clone_template(agent, slug, t)
    return jresp(engine_view(w, eng, t), 201)


# ------------------------------------------------------------------ engines
def engine_of(request: web.Request) -> Engine:
    """The engine of a read route (``?agent_id=`` names its agent)."""
    w = world_of(request)
    return w.sheets.engine(user_of(request), agent_q(request), request.match_info["id"])


async def engine_w(request: web.Request) -> Engine:
    """The engine of a write route (its agent from the query or the body)."""
    w = world_of(request)
    return w.sheets.engine(user_of(request), await agent_w(request), request.match_info["id"])


@routes.post(TODAY_PREFIX)
async def create_engine(request: web.Request) -> web.Response:
    w, agent = world_of(request), await agent_w(request)
    body = wrapped(await ebody(request, required=True), "spreadsheet")
    title = need_str(body, "title", "spreadsheet.title")
    t = now()
    return jresp(engine_view(w, w.sheets.blank_engine(agent, title, t), t), 201)


@routes.get(ENGINE)
async def read_engine(request: web.Request) -> web.Response:
    return jresp(engine_view(world_of(request), engine_of(request), now()))


@routes.post(ENGINE + "/clone")
async def clone_engine(request: web.Request) -> web.Response:
    w, user = world_of(request), user_of(request)
    target: Agent
    if w.legacy_paths:  # the owner in the query; the body's agent_id names the destination
        src = engine_of(request)
        raw = (await jbody(request)).get("agent_id")
    else:  # the owner in the query or body; target_agent_id (query or body) the destination
        src = await engine_w(request)
        raw = request.query.get("target_agent_id", (await ebody(request)).get("target_agent_id"))
    target = (
        w.agent_store.agents[src.agent_id] if raw is None else w.agent_store.agent_param(user, raw)
    )
    t = now()
    return jresp(engine_view(w, w.sheets.clone_engine(src, target, t), t), 201)


# ------------------------------------------------------------------ shared body checks
def _int_field(item: Json, key: str) -> int | None:
    v = item.get(key)
    if v is None:
        return None
    if not isinstance(v, int) or isinstance(v, bool) or v < 0:
        raise invalid(f"{key} must be a non-negative integer")
    return v


def _attributes(item: Json) -> Json | None:
    attrs = item.get("additional_attributes")
    if attrs is not None and not isinstance(attrs, dict):
        raise invalid("additional_attributes must be an object")
    return attrs


def _move(ids: list[int], ident: int, position: int | None) -> list[int]:
    """``ids`` with ``ident`` moved to ``position`` (clamped; None: unchanged)."""
    if position is None:
        return ids
    rest = [i for i in ids if i != ident]
    rest.insert(min(position, len(rest)), ident)
    return rest


# ASSUMPTION: every reorder body GEN's sources show is taken (docs/sim-assumptions.md, "bodies").
def _reorder(ids: list[int], body: Json, key: str) -> list[int]:
    """A new order of ``ids`` from a reorder body, in any of the forms GEN's sources show.

    Today's WIRE ``{"id_to_position": {"<id>": position}}``; the OpenAPI file's
    ``{"rows"|"columns"|"layers": [{id, position}]}``; the simulator's original
    ``{"<kind>_ids": [ids in order]}`` and ``{"positions": [{id, position}]}``.
    Ids not named keep their relative order after the ones moved.
    """
    if isinstance(body.get(key), list):
        order = body[key]
        if sorted(order) != sorted(ids):
            raise invalid(f"{key} must list every id exactly once")
        return [int(i) for i in order]
    mapping = body.get("id_to_position")
    if isinstance(mapping, dict):
        wanted_raw = list(mapping.items())
    else:
        listed = body.get("positions", body.get(key.removesuffix("_ids") + "s"))
        if not isinstance(listed, list) or not all(isinstance(p, dict) for p in listed):
            raise invalid(
                "send id_to_position {id: position}, or "
                f"{key.removesuffix('_ids')}s / positions [{{id, position}}]"
            )
        wanted_raw = [(p.get("id"), p.get("position")) for p in listed]
    wanted: dict[int, int] = {}
    for raw_id, pos in wanted_raw:
        ident = as_int(raw_id)
        if ident not in ids or not isinstance(pos, int) or isinstance(pos, bool):
            raise invalid(f"id_to_position: {raw_id} is not one of these ids or has no position")
        wanted[ident] = pos
    return sorted(ids, key=lambda i: (wanted.get(i, len(ids) + ids.index(i)), ids.index(i)))


def _items(body: Json, key: str, what: str) -> list[Json]:
    """``body[key]`` as a list of objects (a single object is accepted too)."""
    items = body.get(key)
    if isinstance(items, dict):
        items = [items]
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise invalid(f"{key} must be a list of {what}")
    return items


# ------------------------------------------------------------------ rows
def _set_values(w: World, eng: Engine, row: Row, values: Any) -> None:
    """The teaching document era's ``values: {column name: value}``, checked first."""
    _check_values(w, eng, values)
    if values is None:
        return
    by_name = {col.name: col for col in (w.sheets.columns[c] for c in eng.column_ids)}
    for name, value in values.items():
        w.sheets.cells[row.cell_ids[by_name[name].id]].value = value


def _set_cell_attributes(w: World, eng: Engine, row: Row, items: Any) -> None:
    """Today's ``spreadsheet_cells_attributes``: ``[{spreadsheet_column_id, value, ...}]``."""
    if items is None:
        return
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise invalid("spreadsheet_cells_attributes must be a list of objects")
    for item in items:
        reject_unknown(
            item,
            {"spreadsheet_column_id", "value", "additional_attributes"},
            "spreadsheet_cells_attributes",
        )
        col = w.sheets.column(eng, item.get("spreadsheet_column_id"))
        cell = w.sheets.cells[row.cell_ids[col.id]]
        if "value" in item:
            _writable_value(col, item["value"])
            cell.value = item["value"]
        attrs = _attributes(item)
        if attrs is not None:
            cell.attributes = dict(attrs)


def _row_fields(w: World, eng: Engine, row: Row, item: Json, t: float) -> None:
    """Apply a row body (either dialect's fields); position last."""
    _set_values(w, eng, row, item.get("values"))
    _set_cell_attributes(w, eng, row, item.get("spreadsheet_cells_attributes"))
    attrs = _attributes(item)
    if attrs is not None:
        row.attributes = dict(attrs)
    row.updated_at = t
    eng.row_ids = _move(eng.row_ids, row.id, _int_field(item, "position"))
    for pos, rid in enumerate(eng.row_ids):
        w.sheets.rows[rid].position = pos


ROW_FIELDS: Final = {"values", "position", "additional_attributes", "spreadsheet_cells_attributes"}


@routes.get(ENGINE + "/rows")
async def list_rows(request: web.Request) -> web.Response:
    w, eng, t = world_of(request), engine_of(request), now()
    rows = sorted((w.sheets.rows[r] for r in eng.row_ids), key=lambda r: r.position)
    return jresp([row_view(w, r, t, with_cells=True) for r in rows])


@routes.post(ENGINE + "/rows")
async def create_row(request: web.Request) -> web.Response:
    w, eng, t = world_of(request), await engine_w(request), now()
    body = wrapped(await ebody(request), "spreadsheet_row")
    reject_unknown(body, ROW_FIELDS, "spreadsheet_row")
    spec = templates.TEMPLATES_BY_SLUG.get(eng.template_slug or "")
    row = w.sheets.add_row(eng, spec.layers if spec else ())
    try:
        _row_fields(w, eng, row, body, t)
    except ApiError:
        _drop_row(w, eng, row)  # a refused body creates nothing
        raise
    eng.updated_at = t
    return jresp(row_view(w, row, t, with_cells=True), 201)


def _drop_row(w: World, eng: Engine, row: Row) -> None:
    for cid in row.cell_ids.values():
        for lid in w.sheets.cells[cid].layer_ids:
            del w.sheets.layers[lid]
        del w.sheets.cells[cid]
    eng.row_ids.remove(row.id)
    del w.sheets.rows[row.id]
    for pos, rid in enumerate(eng.row_ids):
        w.sheets.rows[rid].position = pos


@routes.get(ENGINE + r"/rows/{row_id:\d+}")
async def read_row(request: web.Request) -> web.Response:
    w, eng = world_of(request), engine_of(request)
    return jresp(
        row_view(w, w.sheets.row(eng, request.match_info["row_id"]), now(), with_cells=True)
    )


@routes.post(ENGINE + r"/rows/{row_id:\d+}/duplicate")
async def duplicate_row(request: web.Request) -> web.Response:
    w, eng, t = world_of(request), await engine_w(request), now()
    row = w.sheets.duplicate_row(eng, w.sheets.row(eng, request.match_info["row_id"]))
    return jresp(row_view(w, row, t, with_cells=True), 201)


@routes.put(ENGINE + "/rows/update_positions")
async def row_positions(request: web.Request) -> web.Response:
    w, eng, t = world_of(request), await engine_w(request), now()
    eng.row_ids = _reorder(eng.row_ids, await ebody(request, required=True), "row_ids")
    for pos, rid in enumerate(eng.row_ids):
        w.sheets.rows[rid].position = pos
    return jresp([row_view(w, w.sheets.rows[r], t) for r in eng.row_ids])


@routes.put(ENGINE + "/rows/mass_update")
async def rows_mass_update(request: web.Request) -> web.Response:
    w, eng, t = world_of(request), await engine_w(request), now()
    items = _items(await ebody(request, required=True), "spreadsheet_rows", "{id, ...}")
    rows = [(w.sheets.row(eng, i.get("id")), i) for i in items]
    for _, item in rows:  # all-or-nothing: every body is checked before any row changes
        reject_unknown(item, ROW_FIELDS | {"id"}, "spreadsheet_rows")
        _check_values(w, eng, item.get("values"))
        _int_field(item, "position")
        _attributes(item)
    for row, item in rows:
        _row_fields(w, eng, row, item, t)
    return jresp([row_view(w, r, t, with_cells=True) for r, _ in rows])


def _check_values(w: World, eng: Engine, values: Any) -> None:
    """Check a ``values`` object before any row changes (mass updates are all-or-nothing)."""
    if values is None:
        return
    if not isinstance(values, dict):
        raise invalid("values must be an object of column name -> value")
    by_name = {col.name: col for col in (w.sheets.columns[c] for c in eng.column_ids)}
    for name, value in values.items():
        col = by_name.get(name)
        if col is None:
            raise invalid(f'unknown column "{name}"')
        _writable_value(col, value)


# ------------------------------------------------------------------ columns
def _check_card(card: Any) -> Json | None:
    """Shape of a stored card (placeholders allowed; full check happens on generate).

    The generation type may be canonical or one of the internal names the
    vendor's SDK and MCP server send; it is stored canonical.
    """
    if card is None:
        return None
    if not isinstance(card, dict):
        raise invalid("creation_card must be an object {generation_type, data}")
    data = card.get("data", {})
    gtype = canonical_type(card.get("generation_type"), data)
    if gtype not in templates.GENERATION_TYPES:
        raise invalid(
            f"creation_card needs generation_type in {', '.join(templates.GENERATION_TYPES)}"
        )
    if not isinstance(data, dict):
        raise invalid("creation_card.data must be an object")
    return {"generation_type": gtype, "data": dict(data)}


def _ingredient(col: Column) -> Column:
    if col.role != "ingredient":
        raise invalid(
            f'column "{col.name}" has system role {col.role}; only ingredient columns change'
        )
    return col


def _column_name(item: Json) -> str | None:
    """``title`` (today) or ``name`` (teaching document era); None when neither is sent."""
    for key in ("title", "name"):
        if key in item:
            v = item[key]
            if not isinstance(v, str) or not v.strip():
                raise invalid(f"{key} must be a non-empty string")
            return v
    return None


COLUMN_FIELDS: Final = {
    "name",
    "title",
    "column_type",
    "type",
    "role",
    "column_role",
    "creation_card",
    "position",
    "description",
    "additional_attributes",
}


def _columns(w: World, eng: Engine) -> list[Json]:
    cols = sorted((w.sheets.columns[c] for c in eng.column_ids), key=lambda c: c.position)
    return [column_view(w, c) for c in cols]


def _renumber_columns(w: World, eng: Engine) -> None:
    for pos, cid in enumerate(eng.column_ids):
        w.sheets.columns[cid].position = pos


@routes.get(ENGINE + "/columns")
async def list_columns(request: web.Request) -> web.Response:
    w, eng = world_of(request), engine_of(request)
    return jresp(_columns(w, eng))


@routes.post(ENGINE + "/columns")
async def create_column(request: web.Request) -> web.Response:
    w, eng = world_of(request), await engine_w(request)
    body = wrapped(await ebody(request, required=True), "spreadsheet_column")
    reject_unknown(body, COLUMN_FIELDS, "spreadsheet_column")
    name = _column_name(body)
    if name is None:
        raise invalid("spreadsheet_column.title is required (a non-empty string)")
    ctype = body.get("type", body.get("column_type"))
    role = body.get("column_role", body.get("role", "ingredient"))
    if any(w.sheets.columns[c].name == name for c in eng.column_ids):
        raise invalid(f'a column titled "{name}" already exists')
    if ctype not in CREATABLE_COLUMN_TYPES:
        raise invalid(f"column type must be one of {', '.join(CREATABLE_COLUMN_TYPES)}")
    if role != "ingredient":
        raise invalid("only ingredient columns can be created; system roles are read-only")
    position = _int_field(body, "position")
    _attributes(body)
    col = w.sheets.add_column(
        eng, name, str(ctype), "ingredient", _check_card(body.get("creation_card"))
    )
    eng.column_ids = _move(eng.column_ids, col.id, position)
    _renumber_columns(w, eng)
    eng.updated_at = now()
    return jresp(column_view(w, col), 201)


@routes.post(ENGINE + r"/columns/{col_id:\d+}/duplicate")
async def duplicate_column(request: web.Request) -> web.Response:
    w, eng = world_of(request), await engine_w(request)
    src = _ingredient(w.sheets.column(eng, request.match_info["col_id"]))
    names = {w.sheets.columns[c].name for c in eng.column_ids}
    name = f"{src.name}_copy"
    while name in names:
        name += "_copy"
    col = w.sheets.add_column(eng, name, src.column_type, "ingredient", src.default_card)
    for rid in eng.row_ids:
        row = w.sheets.rows[rid]
        w.sheets.cells[row.cell_ids[col.id]].value = w.sheets.cells[row.cell_ids[src.id]].value
    return jresp(column_view(w, col), 201)


@routes.patch(ENGINE + "/columns/update_positions")
async def column_positions(request: web.Request) -> web.Response:
    w, eng = world_of(request), await engine_w(request)
    eng.column_ids = _reorder(eng.column_ids, await ebody(request, required=True), "column_ids")
    _renumber_columns(w, eng)
    return jresp([column_view(w, w.sheets.columns[c]) for c in eng.column_ids])


@routes.put(ENGINE + "/columns/mass_update")
async def columns_mass_update(request: web.Request) -> web.Response:
    w, eng, t = world_of(request), await engine_w(request), now()
    items = _items(await ebody(request, required=True), "spreadsheet_columns", "{id, title?, ...}")
    staged = []
    for item in items:
        col = _ingredient(w.sheets.column(eng, item.get("id")))
        if set(item) - {"id", "name", "title", "creation_card", "description"}:
            raise invalid("columns accept only title (name), description and creation_card")
        card = _check_card(item["creation_card"]) if "creation_card" in item else col.default_card
        staged.append((col, _column_name(item), card))
    for col, name, card in staged:
        col.name = name or col.name
        col.default_card = card
        col.updated_at = t
    return jresp([column_view(w, c) for c, _, _ in staged])


# ------------------------------------------------------------------ cells
def cell_of(request: web.Request) -> tuple[Engine, Cell]:
    """Engine and cell of a read route."""
    eng = engine_of(request)
    return eng, world_of(request).sheets.cell(eng, request.match_info["cell_id"])


async def cell_w(request: web.Request) -> tuple[Engine, Cell]:
    """Engine and cell of a write route (agent from the query or the body)."""
    eng = await engine_w(request)
    return eng, world_of(request).sheets.cell(eng, request.match_info["cell_id"])


def _writable_value(col: Column, v: Any) -> None:
    if col.role != "ingredient":
        raise invalid(f'cell of column "{col.name}" ({col.role}) is read-only')
    if v is not None and not isinstance(v, str | int | float):
        raise invalid("value must be a string, a number or null")


CELL_FIELDS: Final = {
    "id",
    "value",
    "creation_card",
    "additional_attributes",
    "default_user_job_id",
    "default_user_job_attributes",
}


def _stage_cell(w: World, cell: Cell, body: Json) -> Callable[[], None]:
    """Check a cell body (either dialect's fields) and return what applies it.

    ``creation_card`` (the teaching document era's) or today's
    ``default_user_job_attributes: {data}`` set the card the cell generates with.
    """
    # ASSUMPTION: which fields save a card (docs/sim-assumptions.md, "card-on-cell").
    reject_unknown(body, CELL_FIELDS, "spreadsheet_cell")
    col = w.sheets.columns[cell.column_id]
    if "value" in body:
        _writable_value(col, body["value"])
    attrs = _attributes(body)
    card_set = "creation_card" in body or "default_user_job_attributes" in body
    card: Json | None = cell.card
    if card_set and col.role != "ingredient":
        raise invalid(f'cell of column "{col.name}" ({col.role}) has a fixed card')
    if "creation_card" in body:
        card = _check_card(body["creation_card"])
    if "default_user_job_attributes" in body:
        card = _card_from_attributes(body["default_user_job_attributes"], card, col)
    default = None
    if body.get("default_user_job_id") is not None:
        default = _history_pick(w, cell, body["default_user_job_id"])

    def apply() -> None:
        if "value" in body:
            cell.value = body["value"]
        if attrs is not None:
            cell.attributes = dict(attrs)
        if card_set:
            cell.card = card
        if default is not None:
            _make_default(w, cell, default)

    return apply


def _card_from_attributes(raw: Any, current: Json | None, col: Column) -> Json | None:
    """Today's ``default_user_job_attributes: {data, generation_type?}`` as a card."""
    if not isinstance(raw, dict) or not isinstance(raw.get("data", {}), dict):
        raise invalid("default_user_job_attributes must be an object {data: {...}}")
    base = current or col.default_card or {}
    gtype = raw.get("generation_type", raw.get("user_job_type", base.get("generation_type")))
    if gtype is None:
        raise invalid(
            "default_user_job_attributes needs a generation_type: the cell has no card yet"
        )
    return _check_card({"generation_type": gtype, "data": raw.get("data", {})})


def _history_pick(w: World, cell: Cell, raw_id: Any) -> int:
    """A generation of ``cell``'s history by id: 404 unknown, 422 another cell's."""
    gid = as_int(raw_id)
    if gid is None or gid not in w.gens.generations:
        raise not_found("user job", raw_id)
    if gid not in cell.generation_ids:
        raise invalid(f"user job {gid} does not belong to this cell")
    return gid


def _make_default(w: World, cell: Cell, gid: int) -> None:
    """Make generation ``gid`` the cell's displayed output (its value, when it is done)."""
    gen = w.gens.generations[gid]
    cell.default_generation_id = cell.latest_generation_id = gid
    if gen.final == "completed":
        cell.output_ids = list(gen.output_ids)
        if gen.result is not None:
            cell.value = gen.result
        elif gen.output_ids:
            cell.value = w.shared.url(w.assets.resources[gen.output_ids[0]].cdn_key)


@routes.get(ENGINE + r"/cells/{cell_id:\d+}")
async def read_cell(request: web.Request) -> web.Response:
    w, (_, cell) = world_of(request), cell_of(request)
    return jresp(cell_view(w, cell, now()))


@routes.patch(ENGINE + r"/cells/{cell_id:\d+}")
@routes.put(ENGINE + r"/cells/{cell_id:\d+}")
async def update_cell(request: web.Request) -> web.Response:
    w, (eng, cell) = world_of(request), await cell_w(request)
    body = await ebody(request, required=True)
    inner = body.get("spreadsheet_cell")
    if not isinstance(inner, dict):
        raise invalid('body must be {"spreadsheet_cell": {"value": ...}}')
    _stage_cell(w, cell, inner)()
    cell.updated_at = eng.updated_at = now()
    return jresp(cell_view(w, cell, eng.updated_at))


@routes.put(ENGINE + "/cells/mass_update")
async def cells_mass_update(request: web.Request) -> web.Response:
    w, eng, t = world_of(request), await engine_w(request), now()
    items = _items(await ebody(request, required=True), "spreadsheet_cells", "{id, value?, ...}")
    # all-or-nothing: every id and body is checked before any cell changes
    cells = [w.sheets.cell(eng, i.get("id")) for i in items]
    staged = [_stage_cell(w, cell, item) for cell, item in zip(cells, items, strict=True)]
    for cell, apply in zip(cells, staged, strict=True):
        apply()
        cell.updated_at = t
    eng.updated_at = t
    return jresp([cell_view(w, c, t) for c in cells])


@routes.patch(ENGINE + r"/cells/{cell_id:\d+}/set_default_user_job")
async def set_default_user_job(request: web.Request) -> web.Response:
    w, (_, cell) = world_of(request), await cell_w(request)
    body = await ebody(request, required=True)
    if w.legacy_paths:
        # ASSUMPTION: the teaching document era's reading (docs/sim-assumptions.md, "set-default").
        job = body.get("user_job", body.get("default_user_job", body))
        if not isinstance(job, dict) or job.get("user_job_type") not in (
            "publish_content",
            "train_social",
        ):
            raise invalid("user_job.user_job_type must be publish_content or train_social")
        cell.default_user_job = dict(job)
        return jresp(cell_view(w, cell, now()))
    # ASSUMPTION: a pick from the cell's history (docs/sim-assumptions.md, "set-default").
    choice = body.get("default_user_job", body)
    if not isinstance(choice, dict) or choice.get("user_job_id") is None:
        raise invalid("send {default_user_job: {user_job_id, is_user_job}}")
    _make_default(w, cell, _history_pick(w, cell, choice["user_job_id"]))
    cell.updated_at = now()
    return jresp(cell_view(w, cell, cell.updated_at))


# ------------------------------------------------------------------ layers
LAYER_FIELDS: Final = {
    "name",
    "layer_type",
    "type",
    "source_column",
    "settings",
    "additional_attributes",
    "creation_card",
    "position",
}


def _layer_fields(w: World, eng: Engine, body: Json, *, creating: bool) -> Json:
    """A layer body in either dialect, as the simulator's fields.

    Today's ``type`` (clip, sound, text, image, caption) and
    ``additional_attributes`` stand for ``layer_type`` and ``settings``; a
    ``source_column`` inside the attributes names the column it composites.
    """
    reject_unknown(body, LAYER_FIELDS, "video_layer")
    out: Json = {}
    if "name" in body or creating:
        if not isinstance(body.get("name"), str) or not body["name"].strip():
            raise invalid("a layer needs a name (a non-empty string)")
        out["name"] = body["name"]
    kind = body.get("type", body.get("layer_type"))
    if "type" in body or "layer_type" in body or creating:
        kind = SIM_LAYER_TYPE.get(kind, kind) if isinstance(kind, str) else kind
        if kind not in LAYER_TYPES:
            raise invalid(
                "a layer's type must be one of clip, sound, text, image, caption "
                f"(or {', '.join(LAYER_TYPES)})"
            )
        out["layer_type"] = kind
    settings = body.get("settings", body.get("additional_attributes"))
    if settings is not None:
        if not isinstance(settings, dict):
            raise invalid("additional_attributes (settings) must be an object")
        settings = dict(settings)
        if "source_column" in settings:
            out["source_column"] = settings.pop("source_column")
        out["settings"] = settings
    if "source_column" in body:
        out["source_column"] = body["source_column"]
    src = out.get("source_column")
    if src is not None and src not in {w.sheets.columns[c].name for c in eng.column_ids}:
        raise invalid(f'source_column "{src}" is not a column of this engine')
    if "creation_card" in body:
        out["creation_card"] = _check_card(body["creation_card"])
    out["position"] = _int_field(body, "position")
    return out


def _renumber_layers(w: World, cell: Cell) -> None:
    for pos, lid in enumerate(cell.layer_ids):
        w.sheets.layers[lid].position = pos


def _layer_body(body: Json) -> Json:
    """``video_layer`` (today) or ``layer`` (the simulator's original), or the fields flat."""
    return wrapped(body, "video_layer" if "video_layer" in body else "layer")


@routes.post(ENGINE + r"/cells/{cell_id:\d+}/layers")
async def create_layer(request: web.Request) -> web.Response:
    w, (eng, cell) = world_of(request), await cell_w(request)
    if w.sheets.columns[cell.column_id].column_type != "video":
        raise invalid("layers belong to video cells only")
    f = _layer_fields(w, eng, _layer_body(await ebody(request, required=True)), creating=True)
    lay = w.sheets.add_layer(
        cell,
        f["name"],
        f["layer_type"],
        f.get("source_column"),
        f.get("settings", {}),
        f.get("creation_card"),
    )
    cell.layer_ids = _move(cell.layer_ids, lay.id, f["position"])
    _renumber_layers(w, cell)
    return jresp(layer_view(w, lay, now()), 201)


@routes.get(ENGINE + r"/cells/{cell_id:\d+}/layers/{layer_id:\d+}")
async def read_layer(request: web.Request) -> web.Response:
    w, (_, cell) = world_of(request), cell_of(request)
    return jresp(layer_view(w, w.sheets.layer(cell, request.match_info["layer_id"]), now()))


@routes.patch(ENGINE + r"/cells/{cell_id:\d+}/layers/{layer_id:\d+}")
async def update_layer(request: web.Request) -> web.Response:
    w, (eng, cell) = world_of(request), await cell_w(request)
    lay = w.sheets.layer(cell, request.match_info["layer_id"])
    f = _layer_fields(w, eng, _layer_body(await ebody(request, required=True)), creating=False)
    lay.name = f.get("name", lay.name)
    lay.layer_type = f.get("layer_type", lay.layer_type)
    lay.source_column = f.get("source_column", lay.source_column)
    if "settings" in f:
        lay.settings.update(f["settings"])
    if "creation_card" in f:
        lay.card = f["creation_card"]
    cell.layer_ids = _move(cell.layer_ids, lay.id, f["position"])
    _renumber_layers(w, cell)
    lay.updated_at = now()
    return jresp(layer_view(w, lay, lay.updated_at))


@routes.delete(ENGINE + r"/cells/{cell_id:\d+}/layers/{layer_id:\d+}")
async def delete_layer(request: web.Request) -> web.Response:
    w, (_, cell) = world_of(request), await cell_w(request)
    lay = w.sheets.layer(cell, request.match_info["layer_id"])
    w.sheets.delete_layer(cell, lay)
    return jresp({"id": lay.id, "deleted": True})


@routes.post(ENGINE + r"/cells/{cell_id:\d+}/layers/{layer_id:\d+}/duplicate")
async def duplicate_layer(request: web.Request) -> web.Response:
    w, (_, cell) = world_of(request), await cell_w(request)
    src = w.sheets.layer(cell, request.match_info["layer_id"])
    lay = w.sheets.add_layer(
        cell, f"{src.name} copy", src.layer_type, src.source_column, src.settings, src.card
    )
    return jresp(layer_view(w, lay, now()), 201)


@routes.put(ENGINE + r"/cells/{cell_id:\d+}/layers/update_positions")
async def layer_positions(request: web.Request) -> web.Response:
    w, (_, cell), t = world_of(request), await cell_w(request), now()
    cell.layer_ids = _reorder(cell.layer_ids, await ebody(request, required=True), "layer_ids")
    _renumber_layers(w, cell)
    return jresp([layer_view(w, w.sheets.layers[lid], t) for lid in cell.layer_ids])


# ------------------------------------------------------------------ global variables
# ASSUMPTION: variables come from name/value columns (docs/sim-assumptions.md, "variables").
@routes.get(ENGINE + "/global_variables")
async def global_variables(request: web.Request) -> web.Response:
    sheets, eng = world_of(request).sheets, engine_of(request)
    cols = [sheets.columns[c] for c in eng.column_ids]
    names = [c for c in cols if c.role == "global_variable_name"]
    values = [c for c in cols if c.role == "global_variable_value"]
    out = []
    if names and values and eng.row_ids:
        for rid in eng.row_ids:
            cell_ids = sheets.rows[rid].cell_ids
            name = sheets.cells[cell_ids[names[0].id]].value
            if name:
                out.append({"name": name, "value": sheets.cells[cell_ids[values[0].id]].value})
    return jresp(out)


@routes.post(ENGINE + "/import_global_variables")
async def import_global_variables(request: web.Request) -> web.Response:
    await engine_w(request)
    raise ApiError(
        501,
        "not_implemented",
        "XLSX import of global variables is not implemented by the simulator",
    )


@routes.get(TODAY_PREFIX + "/global_variables_template")
async def global_variables_template(request: web.Request) -> web.Response:
    return web.Response(
        body=_xlsx_template(),
        content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers={"Content-Disposition": 'attachment; filename="global_variables_template.xlsx"'},
    )


def _xlsx_template() -> bytes:
    """A minimal valid workbook with the two header cells ``name`` and ``value``."""
    ns = "http://schemas.openxmlformats.org/"
    rel = f"{ns}officeDocument/2006/relationships"
    ct = "application/vnd.openxmlformats-"
    head = '<?xml version="1.0" encoding="UTF-8"?>'

    def rels(kind: str, target: str) -> str:
        return (
            f'{head}<Relationships xmlns="{ns}package/2006/relationships">'
            f'<Relationship Id="rId1" Type="{rel}/{kind}" Target="{target}"/></Relationships>'
        )

    files = {
        "[Content_Types].xml": (
            f'{head}<Types xmlns="{ns}package/2006/content-types">'
            f'<Default Extension="rels" ContentType="{ct}package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            '<Override PartName="/xl/workbook.xml" '
            f'ContentType="{ct}officedocument.spreadsheetml.sheet.main+xml"/>'
            '<Override PartName="/xl/worksheets/sheet1.xml" '
            f'ContentType="{ct}officedocument.spreadsheetml.worksheet+xml"/>'
            "</Types>"
        ),
        "_rels/.rels": rels("officeDocument", "xl/workbook.xml"),
        "xl/workbook.xml": (
            f'{head}<workbook xmlns="{ns}spreadsheetml/2006/main" xmlns:r="{rel}">'
            '<sheets><sheet name="variables" sheetId="1" r:id="rId1"/></sheets></workbook>'
        ),
        "xl/_rels/workbook.xml.rels": rels("worksheet", "worksheets/sheet1.xml"),
        "xl/worksheets/sheet1.xml": (
            f'{head}<worksheet xmlns="{ns}spreadsheetml/2006/main"><sheetData><row r="1">'
            '<c r="A1" t="inlineStr"><is><t>name</t></is></c>'
            '<c r="B1" t="inlineStr"><is><t>value</t></is></c>'
            "</row></sheetData></worksheet>"
        ),
    }
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, text in files.items():
            zf.writestr(name, text)
    return buf.getvalue()
