"""Models read today's shapes and the teaching document's; bodies follow the dialect.

The JSON literals are the facts of docs/dialect.md §2 (and the shared contract):
today's cell, generation, organization, template-clone sheet, direct upload and
publish reply, next to their teaching-document-era forms.
"""

from __future__ import annotations

from typing import Any

import pytest

from genbatch.client import models as M
from genbatch.client.dialect import ByDialect, DialectState, resolve_body
from genbatch.errors import RequestValidationError


def _gen(gid: int, status: str = "completed", **extra: Any) -> dict[str, Any]:
    """Today's generation object: no timestamps (docs/dialect.md §2 "generation object")."""
    return {
        "id": gid,
        "status": status,
        "user_job_type": "text_generation",
        "result": None,
        "failed_reason": None,
        "output_resources": [],
        "execution_cost": None,
        **extra,
    }


TODAY_CELL: dict[str, Any] = {
    "id": 501,
    "value": "The $2 taco at 2am",
    "additional_attributes": {"model": "veo_3", "ratio": "9:16"},
    "cell_role": "ingredient",
    "column_id": 11,
    "spreadsheet_row_id": 21,
    "created_at_ts": 1_767_225_600_000,
    "updated_at_ts": 1_767_225_660_000,
    "default_user_job": _gen(790, "pending"),
    "user_jobs": [_gen(789), _gen(790, "pending")],
    "video_layers": [],
}

LEGACY_CELL: dict[str, Any] = {
    "id": 501,
    "spreadsheet_row_id": 21,
    "spreadsheet_column_id": 11,
    "column_name": "hook",
    "value": "x",
    "creation_card": {"generation_type": "text", "data": {"prompt": "p"}},
    "generation_id": 790,
    "generation_status": "processing",
    "layers": [{"id": 7, "name": "Hook text", "layer_type": "text", "settings": {}}],
}


def test_todays_cell_latest_generation_comes_from_its_history() -> None:
    cell = M.Cell.model_validate(TODAY_CELL)
    # a pending generation is already listed; the newest = the greatest id
    assert cell.latest_generation == ("790", "pending")
    assert cell.generation_id == "790" and cell.generation_status == "pending"  # same value
    assert [g.id for g in cell.user_jobs] == ["789", "790"]
    assert cell.default_generation is not None and cell.default_generation.id == "790"
    assert cell.column_id == cell.spreadsheet_column_id == "11"
    assert cell.updated_at_ts == 1_767_225_660_000 and cell.cell_role == "ingredient"
    assert cell.creation_card is None  # model settings alone are not a card
    # the history may list out of order, and the default may be an older one
    shuffled = {**TODAY_CELL, "user_jobs": [_gen(1000), _gen(999)], "default_user_job": _gen(999)}
    assert M.Cell.model_validate(shuffled).latest_generation == ("1000", "completed")
    # ids that are not numbers: the one listed last
    opaque = {**TODAY_CELL, "user_jobs": [_gen(1), {**_gen(2), "id": "gen_b"}]}
    opaque["default_user_job"] = None
    assert M.Cell.model_validate(opaque).latest_generation == ("gen_b", "completed")


def test_legacy_cell_latest_generation_from_its_fields() -> None:
    cell = M.Cell.model_validate(LEGACY_CELL)
    assert cell.latest_generation == ("790", "processing")
    assert cell.column_id == "11" and cell.column_name == "hook"
    assert cell.creation_card is not None and cell.creation_card.generation_type == "text"
    assert [lay.layer_type for lay in cell.layers] == ["text"]
    # the old simulator kept a publish job's settings in default_user_job: not a generation
    odd = M.Cell.model_validate({**LEGACY_CELL, "default_user_job": {"user_job_type": "x"}})
    assert odd.default_generation is None and odd.latest_generation == ("790", "processing")


def test_cell_without_any_generation() -> None:
    empty = M.Cell.model_validate({**TODAY_CELL, "default_user_job": None, "user_jobs": []})
    assert empty.latest_generation is None and empty.generation_id is None
    assert M.Cell.model_validate({"id": 1}).latest_generation is None


def test_todays_layer() -> None:
    layer = M.Layer.model_validate(
        {
            "id": 7,
            "name": "Voice",
            "position": 0,
            "type": "sound",
            "additional_attributes": {"volume": 0.8},
            "default_user_job": None,
            "user_jobs": [_gen(41, "failed"), _gen(42, "processing")],
        }
    )
    assert layer.layer_type == "sound" and layer.settings == {"volume": 0.8}
    assert layer.latest_generation == ("42", "processing")
    old = M.Layer.model_validate({"id": 7, "layer_type": "audio", "generation_id": 5})
    assert old.latest_generation == ("5", None)


TEMPLATE_CLONE: dict[str, Any] = {
    # docs/dialect.md §2 "template clone": 201, the whole sheet
    "id": 4242,
    "slug": "tiktok-vo-broll-4242",
    "title": "TikTok Voiceover + B-roll",
    "project_type": "spreadsheet_v2",
    "uuid": "2b7e0f3c-7c1e-4c55-9f0e-5e0b0c1d2e3f",
    "status": "active",
    "spreadsheet_columns": [
        {"id": 11, "title": "hook", "type": "text", "column_role": "ingredient", "position": 0},
        {"id": 12, "title": "broll", "type": "video", "column_role": "ingredient", "position": 1},
        # the clone example calls the role "role"
        {"id": 13, "title": "final_video", "type": "video", "role": "final_video", "position": 2},
    ],
    "spreadsheet_rows": [
        {
            "id": 21,
            "position": 0,
            "spreadsheet_cells": [
                {**TODAY_CELL, "id": 501, "column_id": 11},
                {"id": 502, "column_id": 12, "user_jobs": [], "default_user_job": None},
                {
                    "id": 503,
                    "column_id": 13,
                    "video_layers": [{"id": 7, "type": "clip", "position": 0}],
                },
            ],
        }
    ],
}


def test_todays_template_clone_sheet() -> None:
    eng = M.Engine.model_validate(TEMPLATE_CLONE)
    assert eng.id == "4242" and eng.uuid and eng.status == "active"
    assert [(c.name, c.column_type, c.role) for c in eng.spreadsheet_columns] == [
        ("hook", "text", "ingredient"),
        ("broll", "video", "ingredient"),
        ("final_video", "video", "final_video"),
    ]
    # the README's idiom works on today's nested sheet
    cells = {c.column_name: c for c in eng.spreadsheet_cells}
    assert {k: v.id for k, v in cells.items()} == {
        "hook": "501",
        "broll": "502",
        "final_video": "503",
    }
    assert all(c.spreadsheet_row_id == "21" for c in eng.spreadsheet_cells)
    assert eng.spreadsheet_rows[0].spreadsheet_cells[0] is eng.spreadsheet_cells[0]
    final = eng.final_video_cell()
    assert final is not None and final.id == "503" and final.video_layers[0].layer_type == "clip"
    assert [lay.id for lay in eng.layers] == ["7"]
    hook = eng.cell("hook")
    assert hook is not None and hook.latest_generation == ("790", "pending")


def test_sdk_names_and_mcp_engine_id() -> None:
    # The SDK types the sheet as columns / rows / cells; MCP's example says engine_id.
    sdk = M.Engine.model_validate(
        {
            "engine_id": 9,
            "columns": [{"id": 1, "title": "hook", "column_role": "ingredient"}],
            "rows": [{"id": 2, "cells": [{"id": 3, "column_id": 1}]}],
        }
    )
    assert sdk.id == "9" and sdk.cell("hook") is not None
    assert {c.column_name for c in sdk.spreadsheet_cells} == {"hook"}


def test_generation_today_and_before() -> None:
    today = M.Generation.model_validate(
        _gen(
            789,
            "failed",
            user_job_type="gemini_video_generation",
            result={"text": "x"},
            failed_reason="model refused the prompt",
            execution_cost="250.0",  # a string in OA
            output_resources=[
                {
                    "id": 1,
                    "url": "https://cdn/x.mp4",
                    "thumbnail_url": None,
                    "object_type": "Video",
                    "type": "video",
                }
            ],
        )
    )
    assert today.kind == "gemini_video_generation" and today.cost == 250.0
    assert today.failure == "model refused the prompt" and today.failed and today.done
    assert today.result == {"text": "x"} and today.created_at is None
    assert today.output_resources[0].type == "video" and today.video_url == "https://cdn/x.mp4"
    text = M.Generation.model_validate(_gen(790, result="A hook.", execution_cost=3))
    assert text.result == "A hook." and text.cost == 3.0
    odd = M.Generation.model_validate(_gen(791, execution_cost="n/a"))
    assert odd.cost is None  # an unreadable cost is unknown, not an error
    old = M.Generation.model_validate(
        {"id": 5, "status": "stopped", "generation_type": "render", "credits": 5, "error": "x"}
    )
    assert old.kind == "render" and old.cost == 5.0 and old.failure == "x"


def test_organization_balance() -> None:
    today = M.Organization.model_validate(
        {"id": 100, "credit": 1200, "available_credit": {"generic": 1000, "aura": 200}}
    )
    assert today.balance == 1000.0  # generic pays for API work; aura does not
    assert M.Organization.model_validate({"id": 1, "credit": "75.5"}).balance == 75.5
    assert M.Organization.model_validate({"id": 1, "credit_balance": 9}).balance == 9.0
    assert M.Organization.model_validate({"id": 1}).balance is None


def test_direct_upload_nested_or_flat_and_publish_reply() -> None:
    nested = M.DirectUpload.model_validate(
        {
            "signed_id": "sid",
            "direct_upload": {"url": "https://s3/k", "headers": {"Content-MD5": "m"}},
        }
    )
    flat = M.DirectUpload.model_validate(
        {"signed_id": "sid", "url": "https://s3/k", "headers": {"Content-MD5": "m"}}
    )
    assert nested.direct_upload == flat.direct_upload
    assert M.UserJobCreated.model_validate({"user_job_id": 7}).user_job_id == "7"
    sdk = M.UserJobCreated.model_validate({"id": 8, "user_job_type": "x", "status": "pending"})
    assert sdk.user_job_id == "8" and sdk.status == "pending"
    assert M.GenerationStarted.model_validate({"generation_id": "789"}).generation_id == "789"
    # content resource create today: 201 {content_resource: {…, file_name}, generator}
    created = M.ContentResource.model_validate(
        {
            "content_resource": {
                "id": 6001,
                "url": "https://cdn/a.mp4",
                "thumbnail_url": None,
                "file_name": "a.mp4",
                "content_type": "video/mp4",
            },
            "generator": None,
        }
    )
    assert created.id == "6001" and created.filename == "a.mp4"
    assert M.ContentResource.model_validate({"id": 1, "filename": "b.jpg"}).filename == "b.jpg"
    job = M.UserJob.model_validate(
        {"id": 1, "status": "failed", "result": None, "failed_reason": "token expired"}
    )
    assert job.failure == "token expired" and job.post_id is None


def test_bodies_follow_the_dialect() -> None:
    # docs/dialect.md §2: the WIRE's bodies today
    clone = M.engine_clone_body("2001")
    assert clone.today == {"target_agent_id": 2001} and clone.legacy == {"agent_id": 2001}
    assert M.engine_clone_body(None) == ByDialect(None, None)
    order = M.positions_body(["30", "10", "20"])
    assert order.today == {"id_to_position": {"30": 0, "10": 1, "20": 2}}
    assert order.legacy == {
        "positions": [
            {"id": 30, "position": 0},
            {"id": 10, "position": 1},
            {"id": 20, "position": 2},
        ]
    }
    assert M.positions_body({"10": 3}).today == {"id_to_position": {"10": 3}}
    with pytest.raises(RequestValidationError):
        M.positions_body({"10": -1})
    with pytest.raises(RequestValidationError):
        M.positions_body("10,20")  # type: ignore[arg-type]
    assert M.set_default_user_job_body("790", is_user_job=True) == {
        "default_user_job": {"user_job_id": 790, "is_user_job": True}
    }
    assert M.cells_mass_update_body([{"id": "501", "value": "v"}]) == {
        "spreadsheet_cells": [{"id": 501, "value": "v"}]
    }
    with pytest.raises(RequestValidationError):
        M.cells_mass_update_body([{"value": "no id"}])
    card = {"generation_type": "text", "data": {"prompt": "p"}}
    by = M.cell_card_body(card)
    assert resolve_body(by, "today") == {"spreadsheet_cell": {"default_user_job_attributes": card}}
    assert resolve_body(by, "legacy") == {"spreadsheet_cell": {"creation_card": card}}
    assert resolve_body({"plain": 1}, "legacy") == {"plain": 1}


def test_dialect_state() -> None:
    auto = DialectState()
    assert auto.confirmed is None and auto.current == "today"
    assert auto.engine_prefix == "/v1/vidsheet"
    auto.confirm("legacy")
    auto.confirm("today")  # the first proof wins for the session
    assert auto.confirmed == "legacy" and auto.engine_prefix == "/v1/autocontentengine"
    assert DialectState("legacy").confirmed == "legacy"
    with pytest.raises(ValueError):
        DialectState("modern")  # type: ignore[arg-type]
