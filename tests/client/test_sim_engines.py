"""Steps 3–4 structure against the simulator: templates, engines, rows, columns, cells,
layers, global variables.

Tests taking ``dgen`` run twice: against today's API (``/v1/vidsheet``, today's
shapes) and against the teaching document's (``/v1/autocontentengine``); the
client finds the prefix by itself and must read both shapes.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from clienthelp import AGENT, POLL, WORKSPACE

from genbatch.client import GenClient
from genbatch.client.models import (
    Column,
    Engine,
    Row,
    TextCard,
    TextData,
    VideoFromTextCard,
    VideoFromTextData,
)
from genbatch.errors import NotFoundError, RequestValidationError, ServerError, ValidationError


async def _clone(gen: GenClient, slug: str = "tiktok-vo-broll") -> Engine:
    return await gen.templates.clone(slug, AGENT)


async def test_templates(gen: GenClient) -> None:
    templates = await gen.templates.list()
    slugs = {t.slug for t in templates}
    assert {"tiktok-talking-avatar", "tiktok-vo-broll", "yt-short-explainer"} <= slugs
    one = await gen.templates.get("tiktok-montage")
    assert "montage" in one.tags
    with pytest.raises(NotFoundError):
        await gen.templates.get("no-such-template")


async def test_clone_read_and_engine_helpers(dgen: GenClient) -> None:
    gen = dgen
    eng = await _clone(gen)
    if gen.dialect == "legacy" or eng.template_slug is not None:
        assert eng.template_slug == "tiktok-vo-broll" and eng.aspect_ratio == "9:16"
    else:
        # Today's template clone: the whole sheet (docs/dialect.md §2 "template clone").
        assert eng.slug and eng.uuid and eng.status and eng.title
    assert [c.name for c in eng.spreadsheet_columns][-1] == "final_video"
    # Today's rows hold their cells; the engine still lists every cell, named by its column.
    by_name = {c.column_name: c for c in eng.spreadsheet_cells}
    assert {"hook", "script", "broll", "final_video"} <= set(by_name)
    assert all(c.spreadsheet_row_id == eng.spreadsheet_rows[0].id for c in eng.spreadsheet_cells)
    final = eng.final_video_cell()
    assert final is not None and final.layers  # the layer stack lives on final_video
    assert final.id == by_name["final_video"].id and final.video_layers == final.layers
    again = await gen.engines.get(eng.id, AGENT)
    assert again.id == eng.id and len(again.spreadsheet_cells) == len(eng.spreadsheet_cells)
    assert gen.dialect is not None  # the engine read settled the prefix
    copy = await gen.engines.clone(eng.id, AGENT)
    assert copy.id != eng.id
    assert [c.name for c in copy.spreadsheet_columns] == [c.name for c in eng.spreadsheet_columns]
    blank = await gen.engines.create(AGENT, "Custom campaign")
    assert blank.title == "Custom campaign" and blank.template_slug is None


async def test_clone_into_another_agent(dgen: GenClient) -> None:
    # Today the destination is the body's target_agent_id, the owner the query's agent_id.
    gen = dgen
    eng = await _clone(gen)
    other = await gen.agents.create({"name": "Second brand", "workspace_id": WORKSPACE})
    copy = await gen.engines.clone(eng.id, AGENT, target_agent_id=other.id)
    assert (await gen.engines.get(copy.id, other.id)).id == copy.id
    with pytest.raises(NotFoundError):  # it belongs to the other agent now
        await gen.engines.get(copy.id, AGENT)


async def test_rows(dgen: GenClient) -> None:
    gen = dgen
    eng = await _clone(gen)
    rows = await gen.rows.list(eng.id, AGENT)
    assert len(rows) == 1 and rows[0].cells
    hook = eng.column("hook")
    assert hook is not None
    # The WIRE's row create: spreadsheet_cells_attributes [{spreadsheet_column_id, value}].
    new = await gen.rows.create(
        eng.id,
        AGENT,
        {
            "spreadsheet_row": {
                "spreadsheet_cells_attributes": [
                    {"spreadsheet_column_id": int(hook.id), "value": "Second row"}
                ]
            }
        },
    )
    assert any(c.value == "Second row" for c in new.cells)
    assert (await gen.rows.get(eng.id, new.id, AGENT)).id == new.id
    dup = await gen.rows.duplicate(eng.id, new.id, AGENT)
    assert any(c.value == "Second row" for c in dup.cells)
    order = [dup.id, new.id, rows[0].id]
    moved = await gen.rows.update_positions(eng.id, AGENT, order)
    assert [str(r["id"]) for r in moved] == order
    by_position = await gen.rows.update_positions(eng.id, AGENT, {rows[0].id: 0})
    assert str(by_position[0]["id"]) == rows[0].id
    updated = await gen.rows.mass_update(
        eng.id, AGENT, {"spreadsheet_rows": [{"id": int(new.id), "position": 0}]}
    )
    assert Row.model_validate(updated[0]).id == new.id
    assert str((await gen.rows.list(eng.id, AGENT))[0].id) == new.id


async def test_columns(dgen: GenClient) -> None:
    gen = dgen
    eng = await _clone(gen)
    col = await gen.columns.create(
        eng.id, AGENT, {"spreadsheet_column": {"title": "cta", "type": "text"}}
    )
    assert col.name == "cta" and col.title == "cta" and col.role == "ingredient"
    assert col.column_type == "text"
    dup = await gen.columns.duplicate(eng.id, col.id, AGENT)
    assert dup.name == "cta_copy"
    cols = await gen.columns.list(eng.id, AGENT)
    assert {"cta", "cta_copy"} <= {c.name for c in cols}
    ids = [int(c.id) for c in reversed(cols)]
    moved = await gen.columns.update_positions(eng.id, AGENT, ids)
    assert [c["id"] for c in moved] == ids
    renamed = await gen.columns.mass_update(
        eng.id, AGENT, {"spreadsheet_columns": [{"id": int(dup.id), "title": "cta_2"}]}
    )
    assert Column.model_validate(renamed[0]).name == "cta_2"
    final = next(c for c in cols if c.role == "final_video")
    with pytest.raises(ValidationError):  # system roles are read-only (server-side 422)
        await gen.columns.duplicate(eng.id, final.id, AGENT)


async def test_cells(dgen: GenClient) -> None:
    gen = dgen
    eng = await _clone(gen)
    hook = eng.cell("hook")
    broll = eng.cell("broll")
    assert hook is not None and broll is not None
    cell = await gen.cells.update(eng.id, hook.id, AGENT, "The $2 taco at 2am saved my life.")
    assert cell.value == "The $2 taco at 2am saved my life."
    assert (await gen.cells.get(eng.id, hook.id, AGENT)).value == cell.value
    card = VideoFromTextCard(
        data=VideoFromTextData(prompt="taco truck at golden hour", model="veo_3", duration=5)
    )
    with_card = await gen.cells.set_card(eng.id, broll.id, AGENT, card)
    assert with_card.id == broll.id
    # A generate without a card runs the saved one (today's cell read does not show it).
    started = await gen.generations.generate(eng.id, broll.id, AGENT)
    ran = await gen.generations.get(started.generation_id)
    if gen.dialect == "legacy":
        assert with_card.creation_card is not None
        assert with_card.creation_card.data["model"] == "veo_3"
        assert ran.generation_type == "video_from_text" and ran.model == "veo_3"
    else:
        # Today the type is reported by its internal name: Veo runs as Gemini video.
        assert ran.user_job_type == "gemini_video_generation"
    with pytest.raises(RequestValidationError):
        await gen.cells.set_card(
            eng.id,
            broll.id,
            AGENT,
            {"generation_type": "video_from_text", "data": {"prompt": "x", "model": "veo_9"}},
        )
    many = await gen.cells.mass_update(eng.id, AGENT, [{"id": hook.id, "value": "mass"}])
    assert [c.value for c in many] == ["mass"]
    whole = await gen.cells.mass_update(
        eng.id, AGENT, {"spreadsheet_cells": [{"id": int(hook.id), "value": "body"}]}
    )
    assert whole[0].value == "body"


async def test_set_default_user_job(gen: GenClient) -> None:
    # Today: {default_user_job: {user_job_id, is_user_job}} picks which of the cell's
    # generations it displays (docs/dialect.md §2, "we follow the WIRE").
    eng = await _clone(gen, "tiktok-text-driven")
    hook = eng.cell("hook")
    assert hook is not None
    card = TextCard(data=TextData(prompt="a hook about tacos"))
    first = await gen.generations.generate(eng.id, hook.id, AGENT, card)
    second = await gen.generations.generate(eng.id, hook.id, AGENT, card)
    for started in (first, second):
        await gen.generations.wait(started.generation_id, **POLL)
    cell = await gen.cells.get(eng.id, hook.id, AGENT)
    assert {g.id for g in cell.user_jobs} == {first.generation_id, second.generation_id}
    assert cell.default_generation is not None
    assert cell.default_generation.id == second.generation_id  # the newest by default
    picked = await gen.cells.set_default_user_job(eng.id, hook.id, AGENT, first.generation_id)
    assert picked.default_generation is not None
    assert picked.default_generation.id == first.generation_id
    # The latest generation is still the newest one (what a restart reconciles against).
    assert picked.latest_generation == (second.generation_id, "completed")


async def test_layers(dgen: GenClient) -> None:
    gen = dgen
    eng = await _clone(gen)
    final = eng.final_video_cell()
    assert final is not None
    layer = await gen.layers.create(
        eng.id,
        final.id,
        AGENT,
        {"name": "logo", "type": "text", "position": 0, "settings": {"opacity": 0.8}},
    )
    assert layer.name == "logo" and layer.layer_type == "text"
    assert (await gen.layers.get(eng.id, final.id, layer.id, AGENT)).id == layer.id
    upd = await gen.layers.update(eng.id, final.id, layer.id, AGENT, {"settings": {"x": 1}})
    assert upd.settings == {"opacity": 0.8, "x": 1}
    dup = await gen.layers.duplicate(eng.id, final.id, layer.id, AGENT)
    assert dup.name == "logo copy"
    cell = await gen.cells.get(eng.id, final.id, AGENT)
    ids = [int(lay.id) for lay in reversed(cell.layers)]
    moved = await gen.layers.update_positions(eng.id, final.id, AGENT, ids)
    assert [m["id"] for m in moved] == ids
    await gen.layers.delete(eng.id, final.id, dup.id, AGENT)
    with pytest.raises(NotFoundError):
        await gen.layers.get(eng.id, final.id, dup.id, AGENT)


async def test_global_variables(dgen: GenClient, tmp_path: Path) -> None:
    gen = dgen
    eng = await _clone(gen)
    assert await gen.global_variables.list(eng.id, AGENT) == []
    xlsx = await gen.global_variables.template()
    with zipfile.ZipFile(io.BytesIO(xlsx)) as zf:
        assert "xl/workbook.xml" in zf.namelist()
    path = tmp_path / "vars.xlsx"
    path.write_bytes(xlsx)
    # The sim does not implement XLSX import (501): a 5xx on a POST is raised, not resent.
    with pytest.raises(ServerError) as info:
        await gen.global_variables.import_xlsx(eng.id, AGENT, path)
    assert info.value.status == 501 and info.value.error_code == "not_implemented"
    assert gen.stats.giveups_by_reason["unsafe_post:status_501"] == 1
