"""The two dialects the simulator speaks (genbatch/sim/dialect.py, docs/dialect.md).

Today's API (default): template clone answers the whole sheet, generation objects
carry ``user_job_type`` and no timestamps, organizations ``credit`` and
``available_credit``, the vendor's internal generation-type names are accepted,
``agent_id`` may travel in the body of every write route, and engine clone takes
``target_agent_id``.  ``legacy_paths=True``: the teaching document's shapes, as
the simulator always answered them (the old assertions of tests/sim/test_engines.py
run here against it).  Which prefix each serves: tests/sim/test_endpoints.py.
"""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import aiohttp
import pytest
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
    ledger,
    poll,
)

from genbatch.sim.dialect import LEGACY_PREFIX, TODAY_PREFIX
from genbatch.sim.templates import DEFAULT_VOICE_ID

GENERATION_KEYS = {
    "id",
    "status",
    "user_job_type",
    "result",
    "failed_reason",
    "output_resources",
    "execution_cost",
}
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
TEXT = {"generation_type": "text", "data": {"prompt": "Write a hook"}}


# ------------------------------------------------------------------ today's shapes
async def test_template_clone_answers_the_whole_sheet(http: aiohttp.ClientSession) -> None:
    url = "/v1/templates/spreadsheets/tiktok-talking-avatar/clone"
    eng = await call(http, "POST", url, 201, json={"agent_id": AGENT})
    assert {"id", "slug", "title", "project_type", "uuid", "status"} <= set(eng)
    assert eng["title"] == "TikTok Talking Avatar" and eng["slug"].startswith("tiktok-talking")
    assert isinstance(eng["created_at_ts"], int) and isinstance(eng["created_at"], int)
    assert "spreadsheet_cells" not in eng and "layers" not in eng  # nested in rows now
    columns = eng["spreadsheet_columns"]
    assert [c["title"] for c in columns] == [
        "hook",
        "script",
        "voiceover",
        "avatar",
        "lipsync",
        "captions",
        "final_video",
    ]
    for pos, col in enumerate(columns):
        assert {"id", "title", "type", "column_role", "position"} <= set(col)
        assert col["position"] == pos
    assert columns[-1]["column_role"] == "final_video" and columns[-1]["type"] == "video"
    (row,) = eng["spreadsheet_rows"]
    assert [c["column_id"] for c in row["spreadsheet_cells"]] == [c["id"] for c in columns]
    for cell in row["spreadsheet_cells"]:
        assert set(cell) >= CELL_KEYS and cell["spreadsheet_row_id"] == row["id"]
        assert cell["user_jobs"] == [] and cell["default_user_job"] is None
    final = cell_of(eng, "final_video")
    assert [x["name"] for x in final["video_layers"]] == ["Avatar", "Voiceover", "Hook text"]
    assert [x["type"] for x in final["video_layers"]] == ["clip", "sound", "text"]
    assert (await ledger(http))["credits"]["charged"] == 0  # cloning is free
    read = await call(http, "GET", eng_url(eng), 200)
    assert read["spreadsheet_columns"] == columns and read["uuid"] == eng["uuid"]
    missing = await call(
        http, "POST", "/v1/templates/spreadsheets/nope/clone", 404, json={"agent_id": AGENT}
    )
    assert missing["error_code"] == "template_not_found"


async def test_generation_object_and_organization(http: aiohttp.ClientSession) -> None:
    eng = await clone(http)
    accepted = await call(http, "POST", cell_url(eng, "hook", "generate"), 201, json=TEXT)
    assert set(accepted) == {"generation_id", "status"} and accepted["status"] == "pending"
    gen = await poll(http, f"/v1/generations/{accepted['generation_id']}")
    gen.pop("_seen")
    assert set(gen) == GENERATION_KEYS  # no timestamps, no engine/cell ids
    assert gen["user_job_type"] == "text_generation" and isinstance(gen["result"], str)
    assert gen["failed_reason"] is None and gen["execution_cost"] > 0
    video = {"generation_type": "video_from_text", "data": {"prompt": "p", "duration": 5}}
    v = await call(http, "POST", cell_url(eng, "shot_1", "generate"), 201, json=video)
    done = await poll(http, f"/v1/generations/{v['generation_id']}")
    assert done["user_job_type"] == "gemini_video_generation"  # veo_3, the default model
    (out,) = done["output_resources"]
    assert set(out) == {"id", "url", "thumbnail_url", "object_type", "type"}
    stop_me = await call(http, "POST", cell_url(eng, "shot_2", "generate"), 201, json=video)
    stopped = await call(http, "POST", f"/v1/generations/{stop_me['generation_id']}/stop", 200)
    assert set(stopped) == GENERATION_KEYS and stopped["status"] == "stopped"
    org = await call(http, "GET", "/v1/organizations/100", 200)
    assert "credit_balance" not in org
    assert (
        org["credit"]
        == org["available_credit"]["generic"]
        == (await ledger(http))["credits"]["balance"]
    )
    assert org["available_credit"]["aura"] == 0 and org["user_role"] == "owner"
    listed = await call(http, "GET", "/v1/organizations", 200)
    assert listed[0]["available_credit"] == org["available_credit"]


INTERNAL_CARDS: list[tuple[str, dict[str, Any], str]] = [
    ("text_generation", {"prompt": "a hook"}, "text"),
    ("eleven_labs", {"script": "Hello there", "voice_id": DEFAULT_VOICE_ID}, "speech_from_text"),
    ("midjourney", {"prompt": "tacos", "model": "midjourney"}, "image_from_text"),
    ("gemini_image_generation", {"prompt": "tacos", "model": "gemini_image"}, "image_from_text"),
    ("grok_image_generation", {"prompt": "tacos"}, "image_from_text"),
    ("gemini_video_generation", {"prompt": "p", "model": "veo_3"}, "video_from_text"),
    ("sora2_video_generation", {"prompt": "p", "model": "sora_2"}, "video_from_text"),
    ("kling", {"prompt": "p", "model": "kling_1_6"}, "video_from_text"),
    ("kling_image_video", {"image_resource_id": 4821, "model": "kling_2_6"}, "video_from_image"),
    ("seedance_video_generation", {"prompt": "p", "model": "seedance_pro"}, "video_from_text"),
    ("seedance_2_0_video_generation", {"prompt": "p"}, "video_from_text"),
    ("grok_video_generation", {"prompt": "p"}, "video_from_text"),
    ("grok_video_generation", {"image_resource_id": 4822}, "video_from_image"),
    ("gemini_video_generation", {"image_resource_id": 4823, "model": "veo_3"}, "video_from_image"),
]


@pytest.mark.parametrize(("name", "data", "canonical"), INTERNAL_CARDS)
async def test_internal_generation_type_names_are_accepted(
    http: aiohttp.ClientSession, name: str, data: dict[str, Any], canonical: str
) -> None:
    """The names the vendor's SDK and MCP server send (docs/dialect.md §3)."""
    eng = await clone(http)
    body = {"generation_type": name, "data": data}
    accepted = await call(http, "POST", cell_url(eng, "shot_1", "generate"), 201, json=body)
    gen = await poll(http, f"/v1/generations/{accepted['generation_id']}")
    assert gen["status"] == "completed" and gen["user_job_type"] == name
    (entry,) = [g for g in (await ledger(http))["generations"] if g["id"] == gen["id"]]
    assert entry["type"] == canonical  # run (and priced) as the canonical type


async def test_canonical_names_report_internal_types_and_cards_take_both(
    http: aiohttp.ClientSession,
) -> None:
    eng = await clone(http)
    kling = {"generation_type": "video_from_text", "data": {"prompt": "p", "model": "kling_1_6"}}
    g = await call(http, "POST", cell_url(eng, "shot_1", "generate"), 201, json=kling)
    assert (await poll(http, f"/v1/generations/{g['generation_id']}"))["user_job_type"] == "kling"
    card = {"generation_type": "midjourney", "data": {"prompt": "tacos", "model": "midjourney"}}
    await call(
        http,
        "PATCH",
        cell_url(eng, "shot_2"),
        200,
        json={"spreadsheet_cell": {"creation_card": card}},
    )
    stored = await call(http, "POST", cell_url(eng, "shot_2", "generate"), 201)  # the stored card
    done = await poll(http, f"/v1/generations/{stored['generation_id']}")
    assert done["user_job_type"] == "midjourney" and done["output_resources"][0]["object_type"] == (
        "image"
    )
    bad = {"generation_type": "text_to_hologram", "data": {"prompt": "p"}}
    err = await call(http, "POST", cell_url(eng, "shot_3", "generate"), 422, json=bad)
    assert err["error_code"] == "validation_error" and "generation_type" in err["error"]


async def test_agent_id_in_the_body_of_write_routes(http: aiohttp.ClientSession) -> None:
    """Today's API takes agent_id in the query or the body of every write route; the
    vendor's SDK sends render's in the body, MCP every one (docs/dialect.md §2)."""
    eng = await clone(http)
    base = f"{TODAY_PREFIX}/{eng['id']}"
    a = {"agent_id": AGENT}
    hook, final = cell_id(eng, "hook"), cell_id(eng, "final_video")
    cell = await call(
        http, "PATCH", f"{base}/cells/{hook}", 200, json={**a, "spreadsheet_cell": {"value": "H"}}
    )
    assert cell["value"] == "H"
    mass = {**a, "spreadsheet_cells": [{"id": hook, "value": "H2"}]}
    assert (await call(http, "PUT", f"{base}/cells/mass_update", 200, json=mass))[0][
        "value"
    ] == "H2"
    row = await call(http, "POST", f"{base}/rows", 201, json={**a, "spreadsheet_row": {}})
    assert row["spreadsheet_cells"]
    col = await call(
        http,
        "POST",
        f"{base}/columns",
        201,
        json={**a, "spreadsheet_column": {"title": "cta", "type": "text"}},
    )
    assert col["title"] == "cta"
    layer = await call(
        http,
        "POST",
        f"{base}/cells/{final}/layers",
        201,
        json={**a, "video_layer": {"name": "Logo", "type": "image"}},
    )
    await call(
        http,
        "PATCH",
        f"{base}/cells/{final}/layers/{layer['id']}",
        200,
        json={**a, "video_layer": {"name": "Logo 2"}},
    )
    gen = await call(http, "POST", f"{base}/cells/{hook}/generate", 201, json={**a, **TEXT})
    layer_gen = await call(  # MCP's layer generate: {agent_id}, the stored card runs
        http, "POST", f"{base}/cells/{final}/layers/{layer['id']}/generate", 422, json=a
    )
    assert "no creation card" in layer_gen["error"]
    done = await poll(http, f"/v1/generations/{gen['generation_id']}")
    assert done["status"] == "completed"
    await call(http, "DELETE", f"{base}/cells/{final}/layers/{layer['id']}", 200, json=a)
    await fill(http, eng)
    render = await call(http, "POST", f"{base}/cells/{final}/render", 201, json=a)
    assert (await poll(http, f"/v1/generations/{render['generation_id']}"))["status"] == "completed"
    # reads take agent_id in the query only
    err = await call(http, "GET", base, 422, json=a)
    assert err["error_code"] == "agent_not_found"
    err = await call(http, "POST", f"{base}/cells/{hook}/generate", 422, json=TEXT)
    assert err["error_code"] == "agent_not_found"  # neither in the query nor in the body


async def test_user_jobs_and_uploads_take_agent_id_in_the_body(http: aiohttp.ClientSession) -> None:
    """The SDK's monitoring calls: form-urlencoded, agent_id in the form; update with flat keys."""
    data = '{"platform":"tiktok","type":"hashtag","value":"tacos","days":7,"max_results":5}'
    form = {"user_job[user_job_type]": "train_social", "user_job[data]": data, "agent_id": AGENT}
    job = await call(http, "POST", "/v1/user_jobs", 201, data={k: str(v) for k, v in form.items()})
    flat = {"agent_id": str(AGENT), "value": "birria", "max_results": "9", "monitoring": "false"}
    updated = await call(http, "PUT", f"/v1/user_jobs/{job['user_job_id']}", 200, data=flat)
    assert json.loads(updated["data"]) == {
        "platform": "tiktok",
        "type": "hashtag",
        "value": "birria",
        "days": 7,
        "max_results": 9,
        "monitoring": False,
    }
    publish = {"agent_id": AGENT, "user_job_type": "publish_content", "data": "{}"}
    err = await call(http, "POST", "/v1/user_jobs", 422, json=publish)
    assert err["error_code"] == "validation_error"  # the agent resolved; the data is what is wrong
    upload = {"agent_id": AGENT, "content_resource": {"file": "not-a-signed-id"}}
    err = await call(http, "POST", "/v1/content_resources", 422, json=upload)
    assert err["error_code"] == "validation_error" and "signed_id" in err["error"]
    err = await call(http, "POST", "/v1/content_resources", 422, json=upload["content_resource"])
    assert err["error_code"] == "agent_not_found"


async def fill(http: aiohttp.ClientSession, eng: dict[str, Any]) -> None:
    """Give the montage's rendered layers content (render refuses empty layers)."""
    for column in ("shot_1", "shot_2", "shot_3", "music", "hook"):
        cell = await call(http, "GET", cell_url(eng, column), 200)
        if cell["value"] in (None, ""):
            body = {"spreadsheet_cell": {"value": f"{column} filled"}}
            await call(http, "PATCH", cell_url(eng, column), 200, json=body)


async def test_engine_clone_target_agent_id(http: aiohttp.ClientSession) -> None:
    other = await call(
        http, "POST", "/v1/agents", 201, json={"agent": {"name": "Second", "workspace_id": 100}}
    )
    eng = await clone(http)
    base = f"{TODAY_PREFIX}/{eng['id']}/clone"
    body = {"agent_id": AGENT, "target_agent_id": other["id"]}  # owner and destination
    copy = await call(http, "POST", base, 201, json=body)
    await call(http, "GET", f"{TODAY_PREFIX}/{copy['id']}?agent_id={other['id']}", 200)
    await call(http, "GET", f"{TODAY_PREFIX}/{copy['id']}?agent_id={AGENT}", 404)
    in_query = await call(
        http, "POST", f"{base}?agent_id={AGENT}&target_agent_id={other['id']}", 201
    )
    await call(http, "GET", f"{TODAY_PREFIX}/{in_query['id']}?agent_id={other['id']}", 200)
    same = await call(http, "POST", base, 201, json={"agent_id": AGENT})  # no target: the owner
    await call(http, "GET", eng_url(same), 200)


# ------------------------------------------------------------------ the teaching document's shapes
async def test_legacy_shapes_of_engine_generation_and_organization(
    legacy_http: aiohttp.ClientSession,
) -> None:
    http = legacy_http
    eng = await clone(http)
    assert {"spreadsheet_cells", "layers", "template_slug", "agent_id"} <= set(eng)
    hook = next(c for c in eng["spreadsheet_cells"] if c["column_name"] == "hook")
    assert {"generation_id", "generation_status", "creation_card", "output_resources"} <= set(hook)
    accepted = await call(http, "POST", cell_url(eng, "hook", "generate"), 201, json=TEXT)
    gen = await poll(http, f"/v1/generations/{accepted['generation_id']}")
    assert gen["generation_type"] == "text" and gen["error"] is None and gen["created_at"]
    assert gen["cell_id"] == hook["id"] and "user_job_type" not in gen
    cell = await call(http, "GET", cell_url(eng, "hook"), 200)
    assert cell["generation_id"] == gen["id"] and cell["generation_status"] == "completed"
    org = await call(http, "GET", "/v1/organizations/100", 200)
    assert isinstance(org["credit_balance"], float) and org["role"] == "owner"
    internal = {"generation_type": "text_generation", "data": {"prompt": "p"}}
    again = await call(http, "POST", cell_url(eng, "hook", "generate"), 201, json=internal)
    assert (await poll(http, f"/v1/generations/{again['generation_id']}"))["generation_type"] == (
        "text"
    )  # the vendor's internal names are accepted in both dialects


async def test_legacy_rows(legacy_http: aiohttp.ClientSession) -> None:
    http = legacy_http
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


async def test_legacy_columns(legacy_http: aiohttp.ClientSession) -> None:
    http = legacy_http
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


async def test_legacy_cells_and_mass_update(legacy_http: aiohttp.ClientSession) -> None:
    http = legacy_http
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


async def test_legacy_engine_clone_custom_engine_and_variables(
    legacy_http: aiohttp.ClientSession,
) -> None:
    http = legacy_http
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
        f"{LEGACY_PREFIX}?agent_id={AGENT}",
        201,
        json={"spreadsheet": {"title": "C"}},
    )
    assert [c["role"] for c in custom["spreadsheet_columns"]] == ["final_video"]
    assert await call(http, "GET", eng_url(eng, "/global_variables"), 200) == []
    async with http.get(f"{LEGACY_PREFIX}/global_variables_template") as r:
        assert r.status == 200
        book = zipfile.ZipFile(io.BytesIO(await r.read()))
        assert "xl/workbook.xml" in book.namelist()
    assert column_of(copy, hook) == "hook" and len(cells_of(copy)) == len(cells_of(eng))
