"""Step 3 — Convert Idea to Vidsheet, and Step 4's structure: templates, engines,
rows, columns, cells, layers, global variables."""

from __future__ import annotations

import io
import zipfile
from typing import Any

from aiohttp import web

from genbatch.sim import templates
from genbatch.sim.entities import (
    ApiError,
    Cell,
    Column,
    Engine,
    Json,
    Row,
    invalid,
    need_str,
    reject_unknown,
)
from genbatch.sim.routes_common import (
    SIM_PAGE_SIZE,
    agent_q,
    cell_view,
    column_view,
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
ENGINE = r"/v1/autocontentengine/{id:\d+}"


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
    agent = w.profiles.agent_param(user, body.get("agent_id", request.query.get("agent_id")))
    t = now()
    eng = w.sheets.clone_template(agent, request.match_info["slug"], t)
    return jresp(engine_view(w, eng, t), 201)


# ------------------------------------------------------------------ engines
def engine_of(request: web.Request) -> Engine:
    w = world_of(request)
    return w.sheets.engine(user_of(request), agent_q(request), request.match_info["id"])


@routes.post("/v1/autocontentengine")
async def create_engine(request: web.Request) -> web.Response:
    w, agent = world_of(request), agent_q(request)
    body = wrapped(await jbody(request, required=True), "spreadsheet")
    title = need_str(body, "title", "spreadsheet.title")
    t = now()
    return jresp(engine_view(w, w.sheets.blank_engine(agent, title, t), t), 201)


@routes.get(ENGINE)
async def read_engine(request: web.Request) -> web.Response:
    return jresp(engine_view(world_of(request), engine_of(request), now()))


@routes.post(ENGINE + "/clone")
async def clone_engine(request: web.Request) -> web.Response:
    w, user = world_of(request), user_of(request)
    src = engine_of(request)
    body = await jbody(request)
    target = (
        w.profiles.agent_param(user, body["agent_id"])
        if "agent_id" in body
        else w.profiles.agents[src.agent_id]
    )
    t = now()
    return jresp(engine_view(w, w.sheets.clone_engine(src, target, t), t), 201)


# ------------------------------------------------------------------ rows
def _set_values(w: World, eng: Engine, row: Row, values: Any) -> None:
    if values is None:
        return
    if not isinstance(values, dict):
        raise invalid("values must be an object of column name -> value")
    by_name = {col.name: col for col in (w.sheets.columns[c] for c in eng.column_ids)}
    for name, value in values.items():
        col = by_name.get(name)
        if col is None:
            raise invalid(f"unknown column {name!r}")
        if col.role != "ingredient":
            raise invalid(f"column {name!r} has system role {col.role}; it is read-only")
        w.sheets.cells[row.cell_ids[col.id]].value = value


@routes.get(ENGINE + "/rows")
async def list_rows(request: web.Request) -> web.Response:
    w, eng, t = world_of(request), engine_of(request), now()
    rows = sorted((w.sheets.rows[r] for r in eng.row_ids), key=lambda r: r.position)
    return jresp([row_view(w, r, t, with_cells=True) for r in rows])


@routes.post(ENGINE + "/rows")
async def create_row(request: web.Request) -> web.Response:
    w, eng, t = world_of(request), engine_of(request), now()
    body = wrapped(await jbody(request), "spreadsheet_row")
    reject_unknown(body, {"values", "position"})
    spec = templates.TEMPLATES_BY_SLUG.get(eng.template_slug or "")
    row = w.sheets.add_row(eng, spec.layers if spec else ())
    _set_values(w, eng, row, body.get("values"))
    eng.updated_at = t
    return jresp(row_view(w, row, t, with_cells=True), 201)


@routes.get(ENGINE + r"/rows/{row_id:\d+}")
async def read_row(request: web.Request) -> web.Response:
    w, eng = world_of(request), engine_of(request)
    return jresp(
        row_view(w, w.sheets.row(eng, request.match_info["row_id"]), now(), with_cells=True)
    )


@routes.post(ENGINE + r"/rows/{row_id:\d+}/duplicate")
async def duplicate_row(request: web.Request) -> web.Response:
    w, eng, t = world_of(request), engine_of(request), now()
    row = w.sheets.duplicate_row(eng, w.sheets.row(eng, request.match_info["row_id"]))
    return jresp(row_view(w, row, t, with_cells=True), 201)


def _reorder(ids: list[int], body: Json, key: str) -> list[int]:
    """Apply ``{"<key>": [ids in order]}`` or ``{"positions": [{"id", "position"}]}``."""
    if isinstance(body.get(key), list):
        order = body[key]
        if sorted(order) != sorted(ids):
            raise invalid(f"{key} must list every id exactly once")
        return [int(i) for i in order]
    positions = body.get("positions")
    if not isinstance(positions, list) or not all(
        isinstance(p, dict) and p.get("id") in ids and isinstance(p.get("position"), int)
        for p in positions
    ):
        raise invalid(f"send {key} (ordered ids) or positions [{{id, position}}] of known ids")
    wanted = {p["id"]: p["position"] for p in positions}
    return sorted(ids, key=lambda i: (wanted.get(i, ids.index(i)), ids.index(i)))


@routes.put(ENGINE + "/rows/update_positions")
async def row_positions(request: web.Request) -> web.Response:
    w, eng, t = world_of(request), engine_of(request), now()
    eng.row_ids = _reorder(eng.row_ids, await jbody(request, required=True), "row_ids")
    for pos, rid in enumerate(eng.row_ids):
        w.sheets.rows[rid].position = pos
    return jresp([row_view(w, w.sheets.rows[r], t) for r in eng.row_ids])


@routes.put(ENGINE + "/rows/mass_update")
async def rows_mass_update(request: web.Request) -> web.Response:
    w, eng, t = world_of(request), engine_of(request), now()
    body = await jbody(request, required=True)
    items = body.get("spreadsheet_rows")
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise invalid("spreadsheet_rows must be a list of {id, values}")
    rows = [(w.sheets.row(eng, i.get("id")), i) for i in items]
    for row, item in rows:
        _set_values(w, eng, row, item.get("values"))
    return jresp([row_view(w, r, t, with_cells=True) for r, _ in rows])


# ------------------------------------------------------------------ columns
def _check_card(card: Any) -> Json | None:
    """Shape of a stored card (placeholders allowed; full check happens on generate)."""
    if card is None:
        return None
    if not isinstance(card, dict) or card.get("generation_type") not in templates.GENERATION_TYPES:
        raise invalid(
            f"creation_card needs generation_type in {', '.join(templates.GENERATION_TYPES)}"
        )
    if not isinstance(card.get("data", {}), dict):
        raise invalid("creation_card.data must be an object")
    return {"generation_type": card["generation_type"], "data": dict(card.get("data", {}))}


def _ingredient(col: Column) -> Column:
    if col.role != "ingredient":
        raise invalid(
            f"column {col.name!r} has system role {col.role}; only ingredient columns change"
        )
    return col


@routes.get(ENGINE + "/columns")
async def list_columns(request: web.Request) -> web.Response:
    w, eng = world_of(request), engine_of(request)
    return jresp([column_view(w.sheets.columns[c]) for c in eng.column_ids])


@routes.post(ENGINE + "/columns")
async def create_column(request: web.Request) -> web.Response:
    w, eng = world_of(request), engine_of(request)
    body = wrapped(await jbody(request, required=True), "spreadsheet_column")
    reject_unknown(body, {"name", "column_type", "role", "creation_card"})
    name, ctype = need_str(body, "name"), body.get("column_type")
    if any(w.sheets.columns[c].name == name for c in eng.column_ids):
        raise invalid(f"a column named {name!r} already exists")
    if ctype not in templates.COLUMN_TYPES:
        raise invalid(f"column_type must be one of {', '.join(templates.COLUMN_TYPES)}")
    if body.get("role", "ingredient") != "ingredient":
        raise invalid("only ingredient columns can be created; system roles are read-only")
    col = w.sheets.add_column(
        eng, name, str(ctype), "ingredient", _check_card(body.get("creation_card"))
    )
    eng.updated_at = now()
    return jresp(column_view(col), 201)


@routes.post(ENGINE + r"/columns/{col_id:\d+}/duplicate")
async def duplicate_column(request: web.Request) -> web.Response:
    w, eng = world_of(request), engine_of(request)
    src = _ingredient(w.sheets.column(eng, request.match_info["col_id"]))
    names = {w.sheets.columns[c].name for c in eng.column_ids}
    name = f"{src.name}_copy"
    while name in names:
        name += "_copy"
    col = w.sheets.add_column(eng, name, src.column_type, "ingredient", src.default_card)
    for rid in eng.row_ids:
        row = w.sheets.rows[rid]
        w.sheets.cells[row.cell_ids[col.id]].value = w.sheets.cells[row.cell_ids[src.id]].value
    return jresp(column_view(col), 201)


@routes.patch(ENGINE + "/columns/update_positions")
async def column_positions(request: web.Request) -> web.Response:
    w, eng = world_of(request), engine_of(request)
    eng.column_ids = _reorder(eng.column_ids, await jbody(request, required=True), "column_ids")
    for pos, cid in enumerate(eng.column_ids):
        w.sheets.columns[cid].position = pos
    return jresp([column_view(w.sheets.columns[c]) for c in eng.column_ids])


@routes.put(ENGINE + "/columns/mass_update")
async def columns_mass_update(request: web.Request) -> web.Response:
    w, eng = world_of(request), engine_of(request)
    items = (await jbody(request, required=True)).get("spreadsheet_columns")
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise invalid("spreadsheet_columns must be a list of {id, name?, creation_card?}")
    staged = []
    for item in items:
        col = _ingredient(w.sheets.column(eng, item.get("id")))
        if set(item) - {"id", "name", "creation_card"}:
            raise invalid("columns accept only name and creation_card")
        if "name" in item and (not isinstance(item["name"], str) or not item["name"].strip()):
            raise invalid("name must be a non-empty string")
        staged.append((col, item, _check_card(item.get("creation_card", col.default_card))))
    for col, item, card in staged:
        col.name = item.get("name", col.name)
        col.default_card = card
    return jresp([column_view(c) for c, _, _ in staged])


# ------------------------------------------------------------------ cells
def cell_of(request: web.Request) -> tuple[Engine, Cell]:
    eng = engine_of(request)
    return eng, world_of(request).sheets.cell(eng, request.match_info["cell_id"])


def _patch_cell(w: World, cell: Cell, body: Json) -> None:
    reject_unknown(body, {"value", "creation_card", "id"}, "spreadsheet_cell")
    col = w.sheets.columns[cell.column_id]
    if "value" in body:
        if col.role != "ingredient":
            raise invalid(f"cell of column {col.name!r} ({col.role}) is read-only")
        v = body["value"]
        if v is not None and not isinstance(v, str | int | float):
            raise invalid("value must be a string, a number or null")
        cell.value = v
    if "creation_card" in body:
        if col.role != "ingredient":
            raise invalid(f"cell of column {col.name!r} ({col.role}) has a fixed card")
        cell.card = _check_card(body["creation_card"])


@routes.get(ENGINE + r"/cells/{cell_id:\d+}")
async def read_cell(request: web.Request) -> web.Response:
    w, (_, cell) = world_of(request), cell_of(request)
    return jresp(cell_view(w, cell, now()))


@routes.patch(ENGINE + r"/cells/{cell_id:\d+}")
async def update_cell(request: web.Request) -> web.Response:
    w, (eng, cell) = world_of(request), cell_of(request)
    body = await jbody(request, required=True)
    inner = body.get("spreadsheet_cell")
    if not isinstance(inner, dict):
        raise invalid('body must be {"spreadsheet_cell": {"value": ...}}')
    _patch_cell(w, cell, inner)
    eng.updated_at = now()
    return jresp(cell_view(w, cell, eng.updated_at))


@routes.put(ENGINE + "/cells/mass_update")
async def cells_mass_update(request: web.Request) -> web.Response:
    w, eng, t = world_of(request), engine_of(request), now()
    items = (await jbody(request, required=True)).get("spreadsheet_cells")
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise invalid("spreadsheet_cells must be a list of {id, value?, creation_card?}")
    cells = [w.sheets.cell(eng, i.get("id")) for i in items]  # all ids checked before any change
    for cell, item in zip(cells, items, strict=True):
        _patch_cell(w, cell, item)
    eng.updated_at = t
    return jresp([cell_view(w, c, t) for c in cells])


@routes.patch(ENGINE + r"/cells/{cell_id:\d+}/set_default_user_job")
async def set_default_user_job(request: web.Request) -> web.Response:
    w, (_, cell) = world_of(request), cell_of(request)
    body = await jbody(request, required=True)
    job = body.get("user_job", body.get("default_user_job", body))
    if not isinstance(job, dict) or job.get("user_job_type") not in (
        "publish_content",
        "train_social",
    ):
        raise invalid("user_job.user_job_type must be publish_content or train_social")
    cell.default_user_job = dict(job)
    return jresp(cell_view(w, cell, now()))


# ------------------------------------------------------------------ layers
def _layer_fields(w: World, eng: Engine, body: Json, *, creating: bool) -> Json:
    reject_unknown(
        body,
        {
            "name",
            "layer_type",
            "source_column",
            "settings",
            "creation_card",
            "position",
        },
        "layer",
    )
    if creating and not isinstance(body.get("name"), str):
        raise invalid("layer.name is required")
    if (creating or "layer_type" in body) and body.get("layer_type") not in LAYER_TYPES:
        raise invalid(f"layer_type must be one of {', '.join(LAYER_TYPES)}")
    src = body.get("source_column")
    if src is not None and src not in {w.sheets.columns[c].name for c in eng.column_ids}:
        raise invalid(f"source_column {src!r} is not a column of this engine")
    if "settings" in body and not isinstance(body["settings"], dict):
        raise invalid("settings must be an object")
    out = dict(body)
    if "creation_card" in body:
        out["creation_card"] = _check_card(body["creation_card"])
    return out


@routes.post(ENGINE + r"/cells/{cell_id:\d+}/layers")
async def create_layer(request: web.Request) -> web.Response:
    w, (eng, cell) = world_of(request), cell_of(request)
    if w.sheets.columns[cell.column_id].column_type != "video":
        raise invalid("layers belong to video cells only")
    f = _layer_fields(w, eng, wrapped(await jbody(request, required=True), "layer"), creating=True)
    lay = w.sheets.add_layer(
        cell,
        f["name"],
        f["layer_type"],
        f.get("source_column"),
        f.get("settings", {}),
        f.get("creation_card"),
    )
    return jresp(layer_view(w, lay, now()), 201)


@routes.get(ENGINE + r"/cells/{cell_id:\d+}/layers/{layer_id:\d+}")
async def read_layer(request: web.Request) -> web.Response:
    w, (_, cell) = world_of(request), cell_of(request)
    return jresp(layer_view(w, w.sheets.layer(cell, request.match_info["layer_id"]), now()))


@routes.patch(ENGINE + r"/cells/{cell_id:\d+}/layers/{layer_id:\d+}")
async def update_layer(request: web.Request) -> web.Response:
    w, (eng, cell) = world_of(request), cell_of(request)
    lay = w.sheets.layer(cell, request.match_info["layer_id"])
    f = _layer_fields(w, eng, wrapped(await jbody(request, required=True), "layer"), creating=False)
    lay.name = f.get("name", lay.name)
    lay.layer_type = f.get("layer_type", lay.layer_type)
    lay.source_column = f.get("source_column", lay.source_column)
    if "settings" in f:
        lay.settings.update(f["settings"])
    if "creation_card" in f:
        lay.card = f["creation_card"]
    return jresp(layer_view(w, lay, now()))


@routes.delete(ENGINE + r"/cells/{cell_id:\d+}/layers/{layer_id:\d+}")
async def delete_layer(request: web.Request) -> web.Response:
    w, (_, cell) = world_of(request), cell_of(request)
    lay = w.sheets.layer(cell, request.match_info["layer_id"])
    w.sheets.delete_layer(cell, lay)
    return jresp({"id": lay.id, "deleted": True})


@routes.post(ENGINE + r"/cells/{cell_id:\d+}/layers/{layer_id:\d+}/duplicate")
async def duplicate_layer(request: web.Request) -> web.Response:
    w, (_, cell) = world_of(request), cell_of(request)
    src = w.sheets.layer(cell, request.match_info["layer_id"])
    lay = w.sheets.add_layer(
        cell, f"{src.name} copy", src.layer_type, src.source_column, src.settings, src.card
    )
    return jresp(layer_view(w, lay, now()), 201)


@routes.put(ENGINE + r"/cells/{cell_id:\d+}/layers/update_positions")
async def layer_positions(request: web.Request) -> web.Response:
    w, (_, cell), t = world_of(request), cell_of(request), now()
    cell.layer_ids = _reorder(cell.layer_ids, await jbody(request, required=True), "layer_ids")
    for pos, lid in enumerate(cell.layer_ids):
        w.sheets.layers[lid].position = pos
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
    engine_of(request)
    raise ApiError(
        501,
        "not_implemented",
        "XLSX import of global variables is not implemented by the simulator",
    )


@routes.get("/v1/autocontentengine/global_variables_template")
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
