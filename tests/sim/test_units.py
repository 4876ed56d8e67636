"""Pure pieces of the simulator: token bucket, job phases, due queue, card catalog."""

from __future__ import annotations

import pytest

from genbatch.sim import templates
from genbatch.sim.clock import DueQueue, iso, parse_iso, pending_until, phase
from genbatch.sim.limits import TokenBucket
from genbatch.sim.prices import price


def test_token_bucket_refills_from_elapsed_time() -> None:
    bucket = TokenBucket(rate=2.0, burst=3)
    verdicts = [bucket.take("k", now=100.0) for _ in range(4)]
    assert [v.allowed for v in verdicts] == [True, True, True, False]
    assert verdicts[0].remaining == 2 and verdicts[3].retry_after == 1
    assert bucket.take("other", now=100.0).allowed  # per key
    assert bucket.take("k", now=100.5).allowed  # one token back after 0.5 s at 2/s
    assert not bucket.take("k", now=100.5).allowed
    slow = TokenBucket(rate=0.25, burst=1)
    slow.take("k", now=0.0)
    assert slow.take("k", now=0.0).retry_after == 4  # ceil((1 - 0) / 0.25)


def test_phase_and_due_queue() -> None:
    start, latency = 10.0, 100.0
    until = pending_until(start, latency)
    assert until == 20.0
    assert [phase(until, start + latency, t) for t in (10, 19.9, 20, 109.9, 110)] == [
        "pending",
        "pending",
        "processing",
        "processing",
        "due",
    ]
    q = DueQueue()
    q.push(5.0, ("gen", 2))
    q.push(1.0, ("gen", 1))
    q.push(9.0, ("run", 3))
    assert q.next_due == 1.0
    assert [k for _, k in q.pop_due(6.0)] == [("gen", 1), ("gen", 2)]
    assert len(q) == 1
    assert parse_iso(iso(1_800_000_000.25)) == 1_800_000_000.25
    with pytest.raises(ValueError):
        parse_iso("2026-04-20T15:00:00")  # no timezone


def test_card_catalog_matches_the_reference() -> None:
    assert price("render") == 50 and price("media") == 0
    assert price("video_from_text", {"model": "veo_3", "duration": 8}) == 480
    assert price("image_from_text", {"model": "midjourney"}) == 15
    assert price("speech_from_text", {"script": " ".join(["word"] * 300)}) == 60  # two minutes
    gt, data = templates.validate_card("text", {"prompt": "hi"})
    assert gt == "text" and data["model"] == "gemini_2_0_flash"
    for gtype, data in (
        ("image_from_text", {"prompt": "x", "aspect_ratio": "4:3"}),
        ("video_from_image", {"image_resource_id": 1, "model": "kling_2_6", "duration": 5}),
        ("video_from_ingredients", {"prompt": "x", "model": "pika", "asset_resource_ids": [1, 2]}),
        (
            "speech_from_text",
            {"script": "x", "voice_method": "clone_voice", "audio_resource_id": 3},
        ),
        ("lipsync", {"model": "gen", "video_resource_id": 1, "audio_resource_id": 2}),
        ("captions", {"source_resource_id": 1}),
        ("media", {"content_resource_id": 7000}),
    ):
        templates.validate_card(gtype, data)
    for gtype, data in (
        ("video_from_text", {"prompt": "x", "aspect_ratio": "4:3"}),
        ("video_from_image", {"image_resource_id": "abc"}),
        ("video_from_ingredients", {"prompt": "x", "asset_resource_ids": []}),
        ("speech_from_text", {"script": "x", "voice_method": "whisper"}),
        ("speech_from_text", {"script": "x", "voice_id": "v", "speed": 9}),
        ("lipsync", {"model": "sync_so", "video_resource_id": 1}),
        ("render", {}),
    ):
        with pytest.raises(ValueError):
            templates.validate_card(gtype, data)


def test_templates_match_the_contract_table() -> None:
    slugs = [t.slug for t in templates.TEMPLATES]
    assert slugs == [
        "tiktok-talking-avatar",
        "tiktok-montage",
        "tiktok-vo-broll",
        "tiktok-text-driven",
        "tiktok-split-screen",
        "ig-reel-story",
        "yt-short-explainer",
    ]
    for t in templates.TEMPLATES:
        finals = [c for c in t.columns if c.role == "final_video"]
        assert len(finals) == 1 and t.columns[-1] is finals[0] and t.aspect_ratio == "9:16"
        names = {c.name for c in t.columns}
        assert all(layer.source_column in names for layer in t.layers)
        for c in t.columns:
            if c.role == "ingredient" and c.column_type != "text":
                assert c.card is not None
            if c.card:
                assert c.card["generation_type"] in templates.GENERATION_TYPES
    vo = templates.TEMPLATES_BY_SLUG["tiktok-vo-broll"]
    assert [(c.name, c.column_type) for c in vo.columns] == [
        ("hook", "text"),
        ("script", "text"),
        ("voiceover", "audio"),
        ("broll", "video"),
        ("final_video", "video"),
    ]


def test_price_overrides_come_before_the_published_figures() -> None:
    veo = {"model": "veo_3", "duration": 8}
    assert price("video_from_text", veo, {"veo_3": 400}) == 400  # per call, by model
    assert price("video_from_text", veo, {"video_from_text": 90}) == 90  # by type
    assert price("video_from_text", veo, {"veo_3": 7, "video_from_text": 90}) == 7
    assert price("render", None, {"veo_3": 7}) == 50  # untouched kinds keep theirs
