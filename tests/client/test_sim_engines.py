"""Steps 3–4 structure against the simulator: templates, engines, rows, columns, cells,
layers, global variables."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from clienthelp import AGENT

from genbatch.client import GenClient
from genbatch.client.models import Engine, VideoFromTextCard, VideoFromTextData
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


async def test_clone_read_and_engine_helpers(gen: GenClient) -> None:
    eng = await _clone(gen)
    assert eng.template_slug == "tiktok-vo-broll" and eng.aspect_ratio == "9:16"
    assert [c.name for c in eng.spreadsheet_columns][-1] == "final_video"
    final = eng.final_video_cell()
    assert final is not None and final.layers  # the layer stack lives on final_video
    again = await gen.engines.get(eng.id, AGENT)
    assert again.id == eng.id and len(again.spreadsheet_cells) == len(eng.spreadsheet_cells)
    copy = await gen.engines.clone(eng.id, AGENT)
    assert copy.id != eng.id and copy.template_slug == eng.template_slug
    blank = await gen.engines.create(AGENT, "Custom campaign")
    assert blank.title == "Custom campaign" and blank.template_slug is None


async def test_rows(gen: GenClient) -> None:
    eng = await _clone(gen)
    rows = await gen.rows.list(eng.id, AGENT)
    assert len(rows) == 1 and rows[0].cells
    new = await gen.rows.create(eng.id, AGENT, {"values": {"hook": "Second row"}})
    assert any(c.value == "Second row" for c in new.cells)
    assert (await gen.rows.get(eng.id, new.id, AGENT)).id == new.id
    dup = await gen.rows.duplicate(eng.id, new.id, AGENT)
    assert any(c.value == "Second row" for c in dup.cells)
    order = [dup.id, new.id, rows[0].id]
    moved = await gen.rows.update_positions(eng.id, AGENT, {"row_ids": [int(i) for i in order]})
    assert [str(r["id"]) for r in moved] == order
    updated = await gen.rows.mass_update(
        eng.id, AGENT, {"spreadsheet_rows": [{"id": int(new.id), "values": {"hook": "edited"}}]}
    )
    assert any(c["value"] == "edited" for c in updated[0]["cells"])


async def test_columns(gen: GenClient) -> None:
    eng = await _clone(gen)
    col = await gen.columns.create(eng.id, AGENT, {"name": "cta", "column_type": "text"})
    assert col.name == "cta" and col.role == "ingredient"
    dup = await gen.columns.duplicate(eng.id, col.id, AGENT)
    assert dup.name == "cta_copy"
    cols = await gen.columns.list(eng.id, AGENT)
    assert {"cta", "cta_copy"} <= {c.name for c in cols}
    ids = [int(c.id) for c in reversed(cols)]
    moved = await gen.columns.update_positions(eng.id, AGENT, {"column_ids": ids})
    assert [c["id"] for c in moved] == ids
    renamed = await gen.columns.mass_update(
        eng.id, AGENT, {"spreadsheet_columns": [{"id": int(dup.id), "name": "cta_2"}]}
    )
    assert renamed[0]["name"] == "cta_2"
    final = next(c for c in cols if c.role == "final_video")
    with pytest.raises(ValidationError):  # system roles are read-only (server-side 422)
        await gen.columns.duplicate(eng.id, final.id, AGENT)


async def test_cells(gen: GenClient) -> None:
    eng = await _clone(gen)
    hook = eng.cell("hook")
    broll = eng.cell("broll")
    assert hook is not None and broll is not None
    cell = await gen.cells.update(eng.id, hook.id, AGENT, "The $2 taco at 2am saved my life.")
    assert cell.value == "The $2 taco at 2am saved my life."
    assert (await gen.cells.get(eng.id, hook.id, AGENT)).value == cell.value
    card = VideoFromTextCard(
        data=VideoFromTextData(prompt="taco truck at golden hour", model="veo_3", duration=10)
    )
    with_card = await gen.cells.set_card(eng.id, broll.id, AGENT, card)
    assert with_card.creation_card is not None
    assert with_card.creation_card.data["model"] == "veo_3"
    with pytest.raises(RequestValidationError):
        await gen.cells.set_card(
            eng.id,
            broll.id,
            AGENT,
            {"generation_type": "video_from_text", "data": {"prompt": "x", "model": "veo_9"}},
        )
    many = await gen.cells.mass_update(
        eng.id, AGENT, {"spreadsheet_cells": [{"id": int(hook.id), "value": "mass"}]}
    )
    assert many[0]["value"] == "mass"
    job = await gen.cells.set_default_user_job(
        eng.id, hook.id, AGENT, {"user_job": {"user_job_type": "publish_content"}}
    )
    assert job["default_user_job"]["user_job_type"] == "publish_content"


async def test_layers(gen: GenClient) -> None:
    eng = await _clone(gen)
    final = eng.final_video_cell()
    assert final is not None
    layer = await gen.layers.create(
        eng.id,
        final.id,
        AGENT,
        {"name": "logo", "layer_type": "image", "settings": {"opacity": 0.8}},
    )
    assert layer.name == "logo" and layer.layer_type == "image"
    assert (await gen.layers.get(eng.id, final.id, layer.id, AGENT)).id == layer.id
    upd = await gen.layers.update(eng.id, final.id, layer.id, AGENT, {"settings": {"x": 1}})
    assert upd.settings == {"opacity": 0.8, "x": 1}
    dup = await gen.layers.duplicate(eng.id, final.id, layer.id, AGENT)
    assert dup.name == "logo copy"
    cell = await gen.cells.get(eng.id, final.id, AGENT)
    ids = [int(lay.id) for lay in reversed(cell.layers)]
    moved = await gen.layers.update_positions(eng.id, final.id, AGENT, {"layer_ids": ids})
    assert [m["id"] for m in moved] == ids
    await gen.layers.delete(eng.id, final.id, dup.id, AGENT)
    with pytest.raises(NotFoundError):
        await gen.layers.get(eng.id, final.id, dup.id, AGENT)


async def test_global_variables(gen: GenClient, sim: object, tmp_path: Path) -> None:
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
