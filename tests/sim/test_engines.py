"""Engine structure: rows, columns, cells (PATCH and mass_update), engine clone,
custom engines, template detail, global variables."""

from __future__ import annotations

import io
import zipfile

import aiohttp
from simhelp import AGENT, call, cell_id, cell_url, clone, eng_url


async def test_rows(http: aiohttp.ClientSession) -> None:
    eng = await clone(http, "tiktok-split-screen")
    row = await call(
        http,
        "POST",
        eng_url(eng, "/rows"),
        201,
        json={"spreadsheet_row": {"values": {"hook": "A"}}},
    )
    assert {c["column_name"]: c["value"] for c in row["cells"]}["hook"] == "A"
    final = next(c for c in row["cells"] if c["column_name"] == "final_video")
    assert [x["name"] for x in final["layers"]] == [
        "Left",
        "Right",
        "Hook text",
    ]  # the row got the stack
    dup = await call(http, "POST", eng_url(eng, f"/rows/{row['id']}/duplicate"), 201)
    assert {c["column_name"]: c["value"] for c in dup["cells"]}["hook"] == "A"
    rows = await call(http, "GET", eng_url(eng, "/rows"), 200)
    ids = [r["id"] for r in rows]
    assert len(ids) == 3
    moved = await call(
        http, "PUT", eng_url(eng, "/rows/update_positions"), 200, json={"row_ids": ids[::-1]}
    )
    assert [r["id"] for r in moved] == ids[::-1] and [r["position"] for r in moved] == [0, 1, 2]
    mass = {"spreadsheet_rows": [{"id": ids[0], "values": {"hook": "H0", "script": "S0"}}]}
    updated = await call(http, "PUT", eng_url(eng, "/rows/mass_update"), 200, json=mass)
    assert {c["column_name"]: c["value"] for c in updated[0]["cells"]}["script"] == "S0"
    err = await call(
        http,
        "PUT",
        eng_url(eng, "/rows/mass_update"),
        422,
        json={"spreadsheet_rows": [{"id": ids[0], "values": {"final_video": "x"}}]},
    )
    assert "read-only" in err["error"]
    one = await call(http, "GET", eng_url(eng, f"/rows/{ids[1]}"), 200)
    assert one["id"] == ids[1] and one["cells"]


async def test_columns(http: aiohttp.ClientSession) -> None:
    eng = await clone(http, "tiktok-text-driven")
    card = {"generation_type": "text", "data": {"prompt": "A CTA for {{hook}}"}}
    col = await call(
        http,
        "POST",
        eng_url(eng, "/columns"),
        201,
        json={"spreadsheet_column": {"name": "cta", "column_type": "text", "creation_card": card}},
    )
    assert col["role"] == "ingredient" and col["default_creation_card"] == card
    for bad in (
        {"name": "x", "column_type": "smell"},
        {"name": "y", "column_type": "text", "role": "final_video"},
        {"name": "cta", "column_type": "text"},
    ):
        await call(http, "POST", eng_url(eng, "/columns"), 422, json={"spreadsheet_column": bad})
    dup = await call(http, "POST", eng_url(eng, f"/columns/{col['id']}/duplicate"), 201)
    assert dup["name"] == "cta_copy"
    cols = await call(http, "GET", eng_url(eng, "/columns"), 200)
    ids = [c["id"] for c in cols]
    moved = await call(
        http,
        "PATCH",
        eng_url(eng, "/columns/update_positions"),
        200,
        json={"column_ids": ids[::-1]},
    )
    assert [c["id"] for c in moved] == ids[::-1]
    mass = {"spreadsheet_columns": [{"id": col["id"], "name": "call_to_action"}]}
    assert (await call(http, "PUT", eng_url(eng, "/columns/mass_update"), 200, json=mass))[0][
        "name"
    ] == "call_to_action"
    final = next(c for c in cols if c["role"] == "final_video")
    await call(
        http,
        "PUT",
        eng_url(eng, "/columns/mass_update"),
        422,
        json={"spreadsheet_columns": [{"id": final["id"], "name": "z"}]},
    )
    engine = await call(http, "GET", eng_url(eng), 200)
    assert len(engine["spreadsheet_cells"]) == len(engine["spreadsheet_columns"]) * len(
        engine["spreadsheet_rows"]
    )


async def test_cells_and_mass_update(http: aiohttp.ClientSession) -> None:
    eng = await clone(http, "tiktok-vo-broll")
    card = {
        "generation_type": "text",
        "data": {"prompt": "Make {{hook}} longer", "model": "gpt_4o"},
    }
    cell = await call(
        http,
        "PATCH",
        cell_url(eng, "script"),
        200,
        json={"spreadsheet_cell": {"creation_card": card}},
    )
    assert cell["creation_card"] == card
    bad = {"spreadsheet_cell": {"creation_card": {"generation_type": "nope", "data": {}}}}
    await call(http, "PATCH", cell_url(eng, "script"), 422, json=bad)
    await call(
        http, "PATCH", cell_url(eng, "final_video"), 422, json={"spreadsheet_cell": {"value": "x"}}
    )
    await call(
        http,
        "PATCH",
        cell_url(eng, "hook"),
        422,
        json={"spreadsheet_cell": {"value": "x", "colour": 1}},
    )
    mass = {
        "spreadsheet_cells": [
            {"id": cell_id(eng, "hook"), "value": "H"},
            {"id": cell_id(eng, "script"), "value": "S"},
        ]
    }
    out = await call(http, "PUT", eng_url(eng, "/cells/mass_update"), 200, json=mass)
    assert [c["value"] for c in out] == ["H", "S"]
    partial = {
        "spreadsheet_cells": [
            {"id": cell_id(eng, "hook"), "value": "changed"},
            {"id": 5, "value": "?"},
        ]
    }
    await call(http, "PUT", eng_url(eng, "/cells/mass_update"), 404, json=partial)
    assert (await call(http, "GET", cell_url(eng, "hook"), 200))["value"] == "H"  # all-or-nothing
    job = {"user_job": {"user_job_type": "publish_content", "data": "{}"}}
    set_job = await call(
        http, "PATCH", cell_url(eng, "final_video", "set_default_user_job"), 200, json=job
    )
    assert set_job["default_user_job"]["user_job_type"] == "publish_content"


async def test_engine_clone_custom_engine_and_variables(http: aiohttp.ClientSession) -> None:
    eng = await clone(http, "ig-reel-story")
    await call(
        http, "PATCH", cell_url(eng, "hook"), 200, json={"spreadsheet_cell": {"value": "Hook!"}}
    )
    copy = await call(http, "POST", eng_url(eng, "/clone"), 201, json={})
    assert copy["id"] != eng["id"] and copy["template_slug"] == "ig-reel-story"
    assert cell_id(copy, "hook") != cell_id(eng, "hook")
    hook = next(c for c in copy["spreadsheet_cells"] if c["column_name"] == "hook")
    assert hook["value"] == "Hook!" and hook["generation_id"] is None
    assert len(copy["layers"]) == len(eng["layers"]) == 4
    custom = await call(
        http,
        "POST",
        f"/v1/autocontentengine?agent_id={AGENT}",
        201,
        json={"spreadsheet": {"title": "C"}},
    )
    assert [c["role"] for c in custom["spreadsheet_columns"]] == ["final_video"]
    assert await call(http, "GET", eng_url(eng, "/global_variables"), 200) == []
    async with http.get("/v1/autocontentengine/global_variables_template") as r:
        assert r.status == 200
        book = zipfile.ZipFile(io.BytesIO(await r.read()))
        assert "xl/workbook.xml" in book.namelist()
    detail = await call(http, "GET", "/v1/templates/projects/ig-reel-story", 200)
    assert [c["name"] for c in detail["spreadsheet_columns"]][-1] == "final_video"
    assert detail["recent_generated_contents"][0]["url"].endswith(".mp4")
    async with aiohttp.ClientSession() as anon, anon.get(detail["cover"]) as r:
        assert r.status == 200 and r.headers["Content-Type"] == "image/jpeg"
