"""Models: responses tolerate, requests reject — wrong values fail before any round trip."""

from __future__ import annotations

from datetime import UTC, datetime

import pydantic
import pytest

from genbatch.client import models as M
from genbatch.client.generations import card_body
from genbatch.errors import RequestValidationError


def test_ids_are_opaque_strings() -> None:
    g = M.Generation.model_validate({"id": 789, "status": "pending", "cell_id": "c_1"})
    assert g.id == "789" and g.cell_id == "c_1"


def test_responses_keep_unknown_fields() -> None:
    g = M.Generation.model_validate({"id": 1, "status": "completed", "brand_new": {"x": 1}})
    assert g.model_extra == {"brand_new": {"x": 1}}


def test_response_repr_hides_presigned_signature() -> None:
    du = M.DirectUpload.model_validate(
        {
            "signed_id": "sid",
            "direct_upload": {
                "url": "http://h/_storage/k?X-Amz-Signature=topsecret42",
                "headers": {"Content-MD5": "x"},
            },
        }
    )
    assert "topsecret42" not in repr(du) and "topsecret42" not in str(du)
    assert du.direct_upload.url.endswith("topsecret42")  # the value itself is intact


@pytest.mark.parametrize(
    "card",
    [
        {"generation_type": "video_from_text", "data": {"prompt": "p", "model": "veo_9"}},
        {"generation_type": "video_from_text", "data": {"prompt": "p", "aspect_ratio": "4:3"}},
        {"generation_type": "video_from_text", "data": {"prompt": "p", "duration": 7}},
        {"generation_type": "image_from_text", "data": {"prompt": "p", "model": "dalle"}},
        {"generation_type": "text", "data": {"prompt": "p", "model": "gpt_5"}},
        {"generation_type": "text", "data": {"prompt": "p", "temperature": 1}},
        {
            "generation_type": "lipsync",
            "data": {"model": "wav2lip", "video_resource_id": 1, "audio_resource_id": 2},
        },
        {
            "generation_type": "video_from_ingredients",
            "data": {"model": "pika", "asset_resource_ids": []},
        },
        {
            "generation_type": "speech_from_text",
            "data": {"script": "hi", "voice_method": "my_voices"},
        },
        {
            "generation_type": "speech_from_text",
            "data": {"script": "hi", "voice_method": "clone_voice"},
        },
        {"generation_type": "captions", "data": {"model": "whisper", "source_resource_id": 1}},
        {"generation_type": "render", "data": {}},
        {"generation_type": "media", "data": {}},
    ],
)
def test_bad_cards_are_local_errors(card: dict[str, object]) -> None:
    with pytest.raises(RequestValidationError):
        card_body(card)


def test_good_cards_round_trip_with_reference_values() -> None:
    body = card_body(
        {
            "generation_type": "video_from_text",
            "data": {
                "prompt": "taco truck",
                "model": "veo_3",
                "aspect_ratio": "9:16",
                "duration": 10,
                "negative_prompt": "no text overlays",
            },
        }
    )
    assert body == {
        "generation_type": "video_from_text",
        "data": {
            "prompt": "taco truck",
            "model": "veo_3",
            "aspect_ratio": "9:16",
            "duration": 10,
            "negative_prompt": "no text overlays",
        },
    }
    # ids as opaque strings go back out as the integers the reference shows;
    # placeholders stay strings.
    lip = card_body(
        M.LipsyncCard(
            data=M.LipsyncData(
                model="sync_so", video_resource_id="6001", audio_resource_id="{{vo}}"
            )
        )
    )
    assert lip == {
        "generation_type": "lipsync",
        "data": {"model": "sync_so", "video_resource_id": 6001, "audio_resource_id": "{{vo}}"},
    }
    assert card_body(None) is None


def test_every_generation_type_has_a_card() -> None:
    types = set(M.GenerationType.__args__)  # type: ignore[attr-defined]
    variants = {
        c.model_fields["generation_type"].default
        for c in (
            M.TextCard,
            M.ImageFromTextCard,
            M.VideoFromTextCard,
            M.VideoFromImageCard,
            M.VideoFromIngredientsCard,
            M.SpeechFromTextCard,
            M.LipsyncCard,
            M.CaptionsCard,
            M.MediaCard,
        )
    }
    assert types == variants and len(types) == 9


def test_agent_core_update_limits_and_patch_semantics() -> None:
    with pytest.raises(pydantic.ValidationError):
        M.AgentCoreUpdate(description="x" * 501)
    with pytest.raises(pydantic.ValidationError):
        M.AgentCoreUpdate.model_validate({"brand_nam": "typo"})
    with pytest.raises(pydantic.ValidationError):
        M.AgentCoreUpdate.model_validate({"monitored": [{"handle": "h", "item_type": "channel"}]})
    patch = M.AgentCoreUpdate.model_validate({"brand_name": "Santiago", "goal": None})
    assert patch.to_body() == {"brand_name": "Santiago", "goal": None}


def test_publish_data() -> None:
    with pytest.raises(pydantic.ValidationError):
        M.PublishData(media_url="u", schedule_type="scheduled")
    with pytest.raises(pydantic.ValidationError):
        M.PublishData(
            media_url="u", schedule_type="scheduled", scheduled_time=datetime(2026, 4, 20)
        )
    p = M.PublishData(
        media_url="https://cdn/x.mp4",
        schedule_type="scheduled",
        scheduled_time=datetime(2026, 4, 20, 15, tzinfo=UTC),
    )
    assert p.to_body()["scheduled_time"] == "2026-04-20T15:00:00Z"


def test_train_social_platform_types() -> None:
    M.TrainSocialData(platform="tiktok", type="keyword", value="tacos")
    with pytest.raises(pydantic.ValidationError):
        M.TrainSocialData(platform="instagram", type="keyword", value="tacos")


def test_engine_helpers() -> None:
    e = M.Engine.model_validate(
        {
            "id": 5,
            "spreadsheet_columns": [
                {"id": 1, "name": "hook", "role": "ingredient"},
                {"id": 2, "name": "final_video", "role": "final_video"},
            ],
            "spreadsheet_rows": [{"id": 10, "position": 0}],
            "spreadsheet_cells": [
                {"id": 100, "spreadsheet_row_id": 10, "spreadsheet_column_id": 1},
                {"id": 101, "spreadsheet_row_id": 10, "spreadsheet_column_id": 2},
            ],
        }
    )
    assert e.cell("hook") is not None and e.cell("hook").id == "100"  # type: ignore[union-attr]
    assert e.final_video_cell() is not None and e.final_video_cell().id == "101"  # type: ignore[union-attr]
    assert e.cell("nope") is None


def test_direct_upload_blob_limits() -> None:
    ok = {
        "filename": "a.mp4",
        "byte_size": 10,
        "checksum": "A" * 22 + "==",
        "content_type": "video/mp4",
    }
    M.DirectUploadBlob.model_validate(ok)
    with pytest.raises(pydantic.ValidationError):
        M.DirectUploadBlob.model_validate({**ok, "byte_size": (1 << 30) + 1})
    with pytest.raises(pydantic.ValidationError):
        M.DirectUploadBlob.model_validate({**ok, "checksum": "short"})
