"""Engine structure in today's API: rows, columns, cells (PATCH and mass_update), engine
clone, custom engines, template detail, global variables (docs/dialect.md §1–2).

The teaching document's shapes of the same calls: tests/sim/test_dialects.py.
"""

from __future__ import annotations

import io
import zipfile
from typing import Any

import aiohttp
from simhelp import (
    AGENT,
    call,
    cell_id,
    cell_of,
    cell_url,
    cells_of,
    clone,
    column_of,
    eng_url,
    poll,
)

from genbatch.sim.dialect import TODAY_PREFIX

CELL_KEYS = {
    "id",
    "value",
    "additional_attributes",
    "cell_role",
    "column_id",
    "spreadsheet_row_id",
    "created_at_ts",
    "updated_at_ts",
    "default_user_job",
    "user_jobs",
    "video_layers",
}
COLUMN_KEYS = {"id", "title", "type", "column_role", "position"}


def values(engine: dict[str, Any], row: dict[str, Any]) -> dict[str, Any]:
    """A row's cells as {column title: value}."""
    return {column_of(engine, c): c["value"] for c in row["spreadsheet_cells"]}


async def test_rows(http: aiohttp.ClientSession) -> None:
    eng = await clone(http, "tiktok-split-screen")
    hook_col = next(c["id"] for c in eng["spreadsheet_columns"] if c["title"] == "hook")
    body = {
        "spreadsheet_row": {
            "additional_attributes": {"note": "first"},
            "spreadsheet_cells_attributes": [{"spreadsheet_column_id": hook_col, "value": "A"}],
        }
    }
    row = await call(http, "POST", eng_url(eng, "/rows"), 201, json=body)
    assert values(eng, row)["hook"] == "A" and row["additional_attributes"] == {"note": "first"}
    assert set(row) >= {"id", "position", "created_at_ts", "updated_at_ts", "spreadsheet_cells"}
    final = next(c for c in row["spreadsheet_cells"] if column_of(eng, c) == "final_video")
    assert [x["name"] for x in final["video_layers"]] == [
        "Left",
        "Right",
        "Hook text",
    ]  # the row got the stack
    legacy_body = {"spreadsheet_row": {"values": {"hook": "B"}}}  # the old body still works
    row_b = await call(http, "POST", eng_url(eng, "/rows"), 201, json=legacy_body)
    assert values(eng, row_b)["hook"] == "B"
    dup = await call(http, "POST", eng_url(eng, f"/rows/{row['id']}/duplicate"), 201)
    assert values(eng, dup)["hook"] == "A" and dup["additional_attributes"] == {"note": "first"}
    rows = await call(http, "GET", eng_url(eng, "/rows"), 200)
    ids = [r["id"] for r in rows]
    assert len(ids) == 4 and all("spreadsheet_cells" in r for r in rows)
    order = {str(i): pos for pos, i in enumerate(ids[::-1])}
    moved = await call(
        http, "PUT", eng_url(eng, "/rows/update_positions"), 200, json={"id_to_position": order}
    )
    assert [r["id"] for r in moved] == ids[::-1] and [r["position"] for r in moved] == [0, 1, 2, 3]
    mass = {"spreadsheet_rows": [{"id": ids[0], "position": 0, "values": {"script": "S0"}}]}
    updated = await call(http, "PUT", eng_url(eng, "/rows/mass_update"), 200, json=mass)
    assert values(eng, updated[0])["script"] == "S0" and updated[0]["position"] == 0
    err = await call(
        http,
        "PUT",
        eng_url(eng, "/rows/mass_update"),
        422,
        json={"spreadsheet_rows": [{"id": ids[0], "values": {"final_video": "x"}}]},
    )
    assert "read-only" in err["error"]
    one = await call(http, "GET", eng_url(eng, f"/rows/{ids[1]}"), 200)
    assert one["id"] == ids[1] and one["spreadsheet_cells"]


async def test_columns(http: aiohttp.ClientSession) -> None:
    eng = await clone(http, "tiktok-text-driven")
    card = {"generation_type": "text", "data": {"prompt": "A CTA for {{hook}}"}}
    body = {"spreadsheet_column": {"title": "cta", "type": "text", "creation_card": card}}
    col = await call(http, "POST", eng_url(eng, "/columns"), 201, json=body)
    assert set(col) >= COLUMN_KEYS and col["column_role"] == "ingredient" and col["type"] == "text"
    media = {"spreadsheet_column": {"title": "logo", "type": "media", "position": 0}}
    first = await call(http, "POST", eng_url(eng, "/columns"), 201, json=media)
    assert first["position"] == 0  # today's column type `media`, inserted where asked
    for bad in (
        {"title": "x", "type": "smell"},
        {"title": "y", "type": "text", "column_role": "final_video"},
        {"title": "cta", "type": "text"},
    ):
        await call(http, "POST", eng_url(eng, "/columns"), 422, json={"spreadsheet_column": bad})
    dup = await call(http, "POST", eng_url(eng, f"/columns/{col['id']}/duplicate"), 201)
    assert dup["title"] == "cta_copy"
    cols = await call(http, "GET", eng_url(eng, "/columns"), 200)
    ids = [c["id"] for c in cols]
    moved = await call(
        http,
        "PATCH",
        eng_url(eng, "/columns/update_positions"),
        200,
        json={"id_to_position": {str(i): pos for pos, i in enumerate(ids[::-1])}},
    )
    assert [c["id"] for c in moved] == ids[::-1]
    mass = {"spreadsheet_columns": [{"id": col["id"], "title": "call_to_action"}]}
    assert (await call(http, "PUT", eng_url(eng, "/columns/mass_update"), 200, json=mass))[0][
        "title"
    ] == "call_to_action"
    final = next(c for c in cols if c["column_role"] == "final_video")
    await call(
        http,
        "PUT",
        eng_url(eng, "/columns/mass_update"),
        422,
        json={"spreadsheet_columns": [{"id": final["id"], "title": "z"}]},
    )
    engine = await call(http, "GET", eng_url(eng), 200)
    assert "spreadsheet_cells" not in engine  # today: the rows hold their cells
    assert all(
        len(r["spreadsheet_cells"]) == len(engine["spreadsheet_columns"])
        for r in engine["spreadsheet_rows"]
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
    assert set(cell) >= CELL_KEYS and cell["user_jobs"] == [] and cell["default_user_job"] is None
    assert cell["column_id"] == cell_of(eng, "script")["column_id"]
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
            {"id": cell_id(eng, "hook"), "value": "H", "additional_attributes": {"k": 1}},
            {"id": cell_id(eng, "script"), "value": "S"},
        ]
    }
    out = await call(http, "PUT", eng_url(eng, "/cells/mass_update"), 200, json=mass)
    assert [c["value"] for c in out] == ["H", "S"] and out[0]["additional_attributes"] == {"k": 1}
    single = {"spreadsheet_cells": {"id": cell_id(eng, "hook"), "value": "H1"}}  # one object
    assert (await call(http, "PUT", eng_url(eng, "/cells/mass_update"), 200, json=single))[0][
        "value"
    ] == "H1"
    partial = {
        "spreadsheet_cells": [
            {"id": cell_id(eng, "hook"), "value": "changed"},
            {"id": 5, "value": "?"},
        ]
    }
    await call(http, "PUT", eng_url(eng, "/cells/mass_update"), 404, json=partial)
    assert (await call(http, "GET", cell_url(eng, "hook"), 200))["value"] == "H1"  # all-or-nothing
    put = {"spreadsheet_cell": {"value": "via PUT"}}  # today's API takes PUT on a cell too
    assert (await call(http, "PUT", cell_url(eng, "hook"), 200, json=put))["value"] == "via PUT"


async def test_card_data_set_default_and_history(http: aiohttp.ClientSession) -> None:
    """WIRE ``default_user_job_attributes.data`` saves the card; ``set_default_user_job``
    picks a generation of the cell's history as its output (docs/dialect.md §2)."""
    eng = await clone(http, "tiktok-vo-broll")
    data = {"prompt": "Say it shorter", "model": "gpt_4o_mini"}
    cell = await call(
        http,
        "PATCH",
        cell_url(eng, "script"),
        200,
        json={"spreadsheet_cell": {"default_user_job_attributes": {"data": data}}},
    )
    assert cell["user_jobs"] == []
    first = await call(http, "POST", cell_url(eng, "script", "generate"), 201, json={})
    second = await call(http, "POST", cell_url(eng, "script", "generate"), 201)
    read = await call(http, "GET", cell_url(eng, "script"), 200)
    # ASSUMPTION under test: a generation is in user_jobs from the moment it is created and
    # the newest is the default (shared contract 2).
    assert [j["id"] for j in read["user_jobs"]] == [first["generation_id"], second["generation_id"]]
    assert read["default_user_job"]["id"] == second["generation_id"]
    assert all(j["user_job_type"] == "text_generation" for j in read["user_jobs"])
    for g in (first, second):
        await poll(http, f"/v1/generations/{g['generation_id']}")
    done = await call(http, "GET", cell_url(eng, "script"), 200)
    second_text = done["default_user_job"]["result"]
    assert done["value"] == second_text and done["default_user_job"]["status"] == "completed"

    choose = {"default_user_job": {"user_job_id": first["generation_id"], "is_user_job": True}}
    chosen = await call(
        http, "PATCH", cell_url(eng, "script", "set_default_user_job"), 200, json=choose
    )
    first_text = chosen["default_user_job"]["result"]
    assert chosen["default_user_job"]["id"] == first["generation_id"]
    assert chosen["value"] == first_text and len(chosen["user_jobs"]) == 2
    via_id = {"spreadsheet_cell": {"default_user_job_id": second["generation_id"]}}
    back = await call(http, "PATCH", cell_url(eng, "script"), 200, json=via_id)
    assert (
        back["default_user_job"]["id"] == second["generation_id"] and back["value"] == second_text
    )

    other = await call(http, "POST", cell_url(eng, "hook", "generate"), 201)
    wrong = {"default_user_job": {"user_job_id": other["generation_id"]}}
    err = await call(
        http, "PATCH", cell_url(eng, "script", "set_default_user_job"), 422, json=wrong
    )
    assert err["error_code"] == "validation_error" and "does not belong" in err["error"]
    missing = {"default_user_job": {"user_job_id": 999_999}}
    err = await call(
        http, "PATCH", cell_url(eng, "script", "set_default_user_job"), 404, json=missing
    )
    assert err["error_code"] == "not_found"


async def test_engine_clone_custom_engine_and_variables(http: aiohttp.ClientSession) -> None:
    eng = await clone(http, "ig-reel-story")
    await call(
        http, "PATCH", cell_url(eng, "hook"), 200, json={"spreadsheet_cell": {"value": "Hook!"}}
    )
    copy = await call(http, "POST", eng_url(eng, "/clone"), 201, json={})
    assert copy["id"] != eng["id"] and copy["slug"].startswith("ig-reel-story")
    assert cell_id(copy, "hook") != cell_id(eng, "hook")
    hook = cell_of(copy, "hook")
    assert hook["value"] == "Hook!" and hook["default_user_job"] is None
    layers = [lay for c in cells_of(copy) for lay in c["video_layers"]]
    assert len(layers) == len([x for c in cells_of(eng) for x in c["video_layers"]]) == 4
    custom = await call(
        http,
        "POST",
        f"{TODAY_PREFIX}?agent_id={AGENT}",
        201,
        json={"spreadsheet": {"title": "C"}},
    )
    assert [c["column_role"] for c in custom["spreadsheet_columns"]] == ["final_video"]
    flat = await call(http, "POST", TODAY_PREFIX, 201, json={"title": "Flat", "agent_id": AGENT})
    assert flat["title"] == "Flat"  # the flat body MCP sends, agent_id in the body
    assert await call(http, "GET", eng_url(eng, "/global_variables"), 200) == []
    async with http.get(f"{TODAY_PREFIX}/global_variables_template") as r:
        assert r.status == 200
        book = zipfile.ZipFile(io.BytesIO(await r.read()))
        assert "xl/workbook.xml" in book.namelist()
    detail = await call(http, "GET", "/v1/templates/projects/ig-reel-story", 200)
    assert [c["name"] for c in detail["spreadsheet_columns"]][-1] == "final_video"
    assert detail["recent_generated_contents"][0]["url"].endswith(".mp4")
    async with aiohttp.ClientSession() as anon, anon.get(detail["cover"]) as r:
        assert r.status == 200 and r.headers["Content-Type"] == "image/jpeg"
