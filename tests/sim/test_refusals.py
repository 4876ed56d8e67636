"""The simulator refuses what GEN refuses: renders of empty layers, cards naming the wrong
kind of upload, stops of finished jobs, early scheduled posts — and says so in plain words.

Uploads are typed from their bytes (the declared Content-Type is a hint), so the
teaching document's ``-F "content_resource[file]=@local.mp4"`` (curl declares
application/octet-stream) is a video.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from layerhelp import fill_layers
from simhelp import (
    AGENT,
    KEY,
    SimFactory,
    call,
    cell_id,
    cell_url,
    clone,
    engine_prefix,
    ledger,
    poll,
)

from genbatch.sim import media
from genbatch.sim.accounts import SIM_OTHER_AGENT_ID
from genbatch.sim.serve import SimServer

RES = f"/v1/content_resources?agent_id={AGENT}"
JOBS = f"/v1/user_jobs?agent_id={AGENT}"
VIDEO = {
    "generation_type": "video_from_text",
    "data": {"prompt": "taco truck", "model": "veo_3", "aspect_ratio": "9:16", "duration": 5},
}
TEXT = {"generation_type": "text", "data": {"prompt": "Write a hook about tacos"}}
MUSIC = {"generation_type": "media", "data": {"content_resource_id": 7000}}
#: What an error message must never show: Python reprs, class names, tracebacks.
LEAK = re.compile(
    r"\bNone\b|\bTrue\b|\bFalse\b|NoneType|<class|Traceback|object at 0x|\w+(Error|Exception)\b"
    r"|[\[(]'|\{'|'\]|'\)"
)


def plain_error(body: dict[str, Any], code: str | None = None) -> str:
    """The one error shape, a message in plain words; returns the message."""
    assert set(body) == {"error", "error_code"}, body
    assert isinstance(body["error"], str) and body["error"].strip(), body
    assert not LEAK.search(body["error"]), body["error"]
    if code is not None:
        assert body["error_code"] == code, body
    return str(body["error"])


async def upload(
    http: aiohttp.ClientSession, data: bytes, filename: str, content_type: str
) -> dict[str, Any]:
    form = aiohttp.FormData()
    form.add_field("content_resource[file]", data, filename=filename, content_type=content_type)
    body: dict[str, Any] = await call(http, "POST", RES, 201, data=form)
    return body


# ------------------------------------------------------------------ 1. render needs content
async def test_render_refused_until_every_layer_has_content(
    http: aiohttp.ClientSession,
) -> None:
    eng = await clone(http, "tiktok-montage")
    render = cell_url(eng, "final_video", "render")
    await call(http, "PATCH", cell_url(eng, "hook"), 200, json={"spreadsheet_cell": {"value": "x"}})
    before = await ledger(http)
    message = plain_error(await call(http, "POST", render, 422), "validation_error")
    for column in ("shot_1", "shot_2", "shot_3"):
        assert f"cell {cell_id(eng, column)} " in message and f'"{column}"' in message
    assert f"cell {cell_id(eng, 'hook')} " not in message  # filled: not named
    assert f"cell {cell_id(eng, 'music')} " not in message  # the template's stock track
    after = await ledger(http)
    assert after["credits"] == before["credits"]  # nothing charged
    assert after["generations"] == before["generations"] == []  # nothing started

    # a generation still running is not content yet
    started = await call(http, "POST", cell_url(eng, "shot_1", "generate"), 201, json=VIDEO)
    message = plain_error(await call(http, "POST", render, 422), "validation_error")
    assert f"cell {cell_id(eng, 'shot_1')} " in message
    gens = [started]
    for column in ("shot_2", "shot_3"):
        gens.append(await call(http, "POST", cell_url(eng, column, "generate"), 201, json=VIDEO))
    gens.append(await call(http, "POST", cell_url(eng, "music", "generate"), 201, json=MUSIC))
    for g in gens:
        assert (await poll(http, f"/v1/generations/{g['generation_id']}"))["status"] == "completed"

    # fully generated: renders as before, one charge for the render
    charged = (await ledger(http))["credits"]["charged"]
    accepted = await call(http, "POST", render, 201)
    done = await poll(http, f"/v1/generations/{accepted['generation_id']}")
    assert done["status"] == "completed" and done["output_resources"][0]["url"].endswith(".mp4")
    assert (await ledger(http))["credits"]["charged"] > charged


async def test_render_of_each_starter_template_once_its_layers_are_filled(
    http: aiohttp.ClientSession,
) -> None:
    templates = await call(http, "GET", "/v1/templates/projects", 200)
    for slug in (t["slug"] for t in templates):
        eng = await clone(http, slug)
        render = cell_url(eng, "final_video", "render")
        plain_error(await call(http, "POST", render, 422), "validation_error")
        assert await fill_layers(http, eng, slug)  # filling by hand counts as content
        accepted = await call(http, "POST", render, 201)
        done = await poll(http, f"/v1/generations/{accepted['generation_id']}")
        assert done["status"] == "completed", (slug, done)


async def test_a_layer_without_content_of_its_own_is_named(
    http: aiohttp.ClientSession, sim: SimServer
) -> None:
    eng = await clone(http, "tiktok-split-screen")
    await fill_layers(http, eng, "tiktok-split-screen")
    final = cell_id(eng, "final_video")
    cell = sim.world.sheets.cells[final]
    sticker = sim.world.sheets.add_layer(cell, "Sticker", "image", None, {})
    message = plain_error(
        await call(http, "POST", cell_url(eng, "final_video", "render"), 422), "validation_error"
    )
    assert f"layer {sticker.id} " in message and '"Sticker"' in message
    layer_gen = f"{engine_prefix(eng)}/{eng['id']}/cells/{final}/layers/{sticker.id}/generate"
    card = {"generation_type": "image_from_text", "data": {"prompt": "a taco sticker"}}
    g = await call(http, "POST", f"{layer_gen}?agent_id={AGENT}", 201, json=card)
    assert (await poll(http, f"/v1/generations/{g['generation_id']}"))["status"] == "completed"
    await call(http, "POST", cell_url(eng, "final_video", "render"), 201)  # its own output counts


# ------------------------------------------------------------------ 2. uploads typed by bytes
def _riff(form: bytes) -> bytes:
    return b"RIFF" + (100).to_bytes(4, "little") + form + b"\0" * 40


MP4 = media.render_mp4({"upload": "local"}, "9:16")
JPEG = media.thumbnail_jpeg("9:16")
M4A = media.sample_media("audio", "9:16", {"upload": "tune"})[0]


@pytest.mark.parametrize(
    ("data", "filename", "declared", "object_type", "content_type"),
    [
        # the teaching document's curl: -F "content_resource[file]=@local.mp4"
        (MP4, "local.mp4", "application/octet-stream", "video", "video/mp4"),
        (JPEG, "clip.mp4", "video/mp4", "image", "image/jpeg"),  # the bytes win
        (
            b"\x89PNG\r\n\x1a\n" + b"\0" * 32,
            "logo",
            "application/octet-stream",
            "image",
            "image/png",
        ),
        (b"GIF89a" + b"\0" * 32, "x.bin", "application/octet-stream", "image", "image/gif"),
        (_riff(b"WEBP"), "still.webp", "audio/wav", "image", "image/webp"),
        (
            b"ID3\x04\x00" + b"\0" * 32,
            "song.mp3",
            "application/octet-stream",
            "audio",
            "audio/mpeg",
        ),
        (M4A, "voice.m4a", "video/mp4", "audio", "audio/mp4"),
        (_riff(b"WAVE"), "take.wav", "application/octet-stream", "audio", "audio/wav"),
        (b"%PDF-1.7\n" + b"\0" * 32, "brief.pdf", "image/png", "document", "application/pdf"),
        # bytes that prove nothing: the declared type, else the file name, is the hint
        (b"0123456789" * 10, "raw.bin", "image/png", "image", "image/png"),
        (b"0123456789" * 10, "notes.txt", "application/octet-stream", "document", "text/plain"),
    ],
)
async def test_multipart_upload_is_typed_from_its_bytes(
    http: aiohttp.ClientSession,
    data: bytes,
    filename: str,
    declared: str,
    object_type: str,
    content_type: str,
) -> None:
    res = await upload(http, data, filename, declared)
    assert (res["object_type"], res["content_type"]) == (object_type, content_type)
    async with aiohttp.ClientSession() as anon, anon.get(res["url"]) as r:
        assert r.headers["Content-Type"] == content_type and await r.read() == data


async def test_direct_upload_is_typed_from_its_bytes(http: aiohttp.ClientSession) -> None:
    checksum = base64.b64encode(hashlib.md5(JPEG).digest()).decode()
    blob = {"filename": "hero.mp4", "byte_size": len(JPEG), "checksum": checksum}
    made = await call(
        http, "POST", "/v1/direct_upload", 200, json={"blob": {**blob, "content_type": "video/mp4"}}
    )
    up = made["direct_upload"]
    async with (
        aiohttp.ClientSession() as storage,
        storage.put(up["url"], data=JPEG, headers=up["headers"]) as r,
    ):
        assert r.status == 200
    res = await call(http, "POST", RES, 201, json={"content_resource": {"file": made["signed_id"]}})
    assert (res["object_type"], res["content_type"]) == ("image", "image/jpeg")


async def test_cards_refuse_a_resource_of_the_wrong_kind(http: aiohttp.ClientSession) -> None:
    video = await upload(http, MP4, "local.mp4", "application/octet-stream")
    audio = await upload(http, M4A, "voice.m4a", "application/octet-stream")
    image = await upload(http, JPEG, "face.jpg", "application/octet-stream")
    eng = await clone(http, "tiktok-talking-avatar")
    lipsync, captions = cell_url(eng, "lipsync", "generate"), cell_url(eng, "captions", "generate")

    def lip(v: int, a: int) -> dict[str, Any]:
        return {
            "generation_type": "lipsync",
            "data": {"model": "sync_so", "video_resource_id": v, "audio_resource_id": a},
        }

    def cap(source: int) -> dict[str, Any]:
        return {
            "generation_type": "captions",
            "data": {"model": "gemini", "source_resource_id": source},
        }

    before = (await ledger(http))["credits"]
    for url, card, needle in (
        (lipsync, lip(audio["id"], audio["id"]), "video_resource_id"),
        (lipsync, lip(video["id"], image["id"]), "audio_resource_id"),
        (lipsync, lip(video["id"], video["id"]), "audio_resource_id"),
        (captions, cap(image["id"]), "source_resource_id"),
    ):
        message = plain_error(await call(http, "POST", url, 422, json=card), "validation_error")
        assert needle in message and card["generation_type"] in message, message
    assert (await ledger(http))["credits"] == before  # refused: nothing charged
    vid_img = {
        "generation_type": "video_from_image",
        "data": {"image_resource_id": video["id"], "prompt": "zoom", "model": "kling_2_6"},
    }
    message = plain_error(
        await call(http, "POST", cell_url(eng, "avatar", "generate"), 422, json=vid_img),
        "validation_error",
    )
    assert "image_resource_id" in message and "video" in message
    # the right kinds are accepted (captions read a video or an audio track)
    await call(http, "POST", lipsync, 201, json=lip(video["id"], audio["id"]))
    await call(http, "POST", captions, 201, json=cap(video["id"]))
    await call(http, "POST", captions, 201, json=cap(audio["id"]))
    await call(http, "POST", captions, 201, json=cap(6001))  # the teaching document's stock video


# ------------------------------------------------------------------ 3. scheduled posts
@pytest.mark.slow  # waits on the wall clock or a subprocess
async def test_scheduled_post_waits_for_its_real_time(http: aiohttp.ClientSession) -> None:
    eng = await clone(http, "tiktok-text-driven")
    await fill_layers(http, eng, "tiktok-text-driven")
    accepted = await call(http, "POST", cell_url(eng, "final_video", "render"), 201)
    video = (await poll(http, f"/v1/generations/{accepted['generation_id']}"))["output_resources"]
    when = datetime.now(UTC) + timedelta(seconds=1.5)
    data = {
        "platform": "tiktok",
        "media_url": video[0]["url"],
        "description": "later",
        "schedule_type": "scheduled",
        "scheduled_time": when.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
    }
    job = await call(
        http, "POST", JOBS, 201, json={"user_job_type": "publish_content", "data": json.dumps(data)}
    )
    url = f"/v1/user_jobs/{job['user_job_id']}?agent_id={AGENT}"
    # time_scale is 0.002: a scaled wait would be over in 3 ms; the real one takes 1.5 s
    await asyncio.sleep(0.5)
    early = await call(http, "GET", url, 200)
    assert early["status"] == "pending" and early["result"] is None
    done = await poll(http, url, limit=10.0)
    assert time.time() >= when.timestamp()
    assert done["status"] == "completed" and done["result"]["post_id"]
    assert done["_seen"][0] == "pending"


# ------------------------------------------------------------------ 4. plain error messages
async def test_missing_agent_id_is_422_agent_not_found_in_plain_words(
    http: aiohttp.ClientSession,
) -> None:
    eng = await clone(http)
    for method, path, kw in (
        ("GET", "/v1/agent/conversations", {}),
        ("GET", "/v1/agent/ideas", {}),
        ("GET", "/v1/content_resources/7000", {}),
        ("GET", f"{engine_prefix(eng)}/{eng['id']}", {}),
        ("POST", "/v1/templates/spreadsheets/tiktok-montage/clone", {"json": {}}),
        ("POST", "/v1/agent/run", {"json": {"message": "Give me 2 ideas"}}),
    ):
        message = plain_error(await call(http, method, path, 422, **kw), "agent_not_found")
        assert message == "agent_id is required", (path, message)
    for bad in ("nope", {"id": 1}, [1, 2], 3.5, True):
        body = {"agent_id": bad, "message": "hi"}
        message = plain_error(await call(http, "POST", "/v1/agent/run", 422, json=body))
        assert "is not a valid agent" in message


async def test_no_access_is_404_not_found(http: aiohttp.ClientSession) -> None:
    plain_error(await call(http, "GET", f"/v1/agents/{SIM_OTHER_AGENT_ID}", 404), "not_found")
    plain_error(
        await call(http, "GET", f"/v1/agent/conversations?agent_id={SIM_OTHER_AGENT_ID}", 404),
        "not_found",
    )
    body = {"agent_id": SIM_OTHER_AGENT_ID}
    plain_error(
        await call(http, "POST", "/v1/templates/spreadsheets/tiktok-montage/clone", 404, json=body),
        "not_found",
    )


async def test_error_messages_never_show_python(http: aiohttp.ClientSession) -> None:
    eng = await clone(http)
    gen = cell_url(eng, "shot_1", "generate")
    core = f"/v1/agents/{AGENT}/core"
    cases: list[tuple[str, str, dict[str, Any]]] = [
        ("GET", "/v1/user_jobs/1", {}),
        ("GET", f"/v1/user_jobs/1?agent_id={AGENT}", {}),
        ("GET", "/v1/generations/1", {}),
        ("POST", gen, {"json": {"data": {"prompt": "x"}}}),
        ("POST", gen, {"json": {"generation_type": None, "data": {"prompt": "x"}}}),
        ("POST", gen, {"json": {**VIDEO, "data": {**VIDEO["data"], "model": None}}}),
        ("POST", gen, {"json": {**VIDEO, "data": {**VIDEO["data"], "duration": [5]}}}),
        ("POST", gen, {"json": {**VIDEO, "data": {**VIDEO["data"], "aspect_ratio": None}}}),
        ("POST", cell_url(eng, "music", "generate"), {"json": {**MUSIC, "data": {}}}),
        (
            "POST",
            cell_url(eng, "music", "generate"),
            {"json": {**MUSIC, "data": {"content_resource_id": "seven"}}},
        ),
        ("POST", cell_url(eng, "shot_2", "generate"), {}),  # {{hook}} is empty
        ("POST", "/v1/agent/run", {"json": {"agent_id": AGENT, "conversation_id": {"a": 1}}}),
        (
            "POST",
            "/v1/agent/run",
            {"json": {"agent_id": AGENT, "message": "x", "conversation_id": [1]}},
        ),
        ("PATCH", core, {"json": {"monitored": [{"handle": "x", "item_type": "blog"}]}}),
        ("PATCH", core, {"json": {"target_platforms": ["myspace"]}}),
        ("PATCH", core, {"json": {"default_user_voice": {"voice_id": None}}}),
        ("PATCH", core, {"data": b"{not json"}),
        ("POST", JOBS, {"json": {"user_job_type": "publish_content", "data": {"a": 1}}}),
        ("POST", JOBS, {"json": {"user_job_type": None, "data": "{}"}}),
        (
            "POST",
            JOBS,
            {
                "json": {
                    "user_job_type": "publish_content",
                    "data": json.dumps(
                        {
                            "platform": "tiktok",
                            "media_url": "http://x/y.mp4",
                            "schedule_type": "scheduled",
                            "scheduled_time": "tomorrow",
                        }
                    ),
                }
            },
        ),
        ("POST", "/v1/generations/999999/stop", {}),
    ]
    for method, path, kw in cases:
        async with http.request(method, path, **kw) as r:
            body = await r.json()
            assert 400 <= r.status < 500, (path, r.status, body)
            plain_error(body)
    # a 207's per-section errors too
    out = await call(http, "PATCH", core, 207, json={"goal": "growth", "target_platforms": ["x1"]})
    for section in out["errors"].values():
        plain_error(section, "validation_error")


# ------------------------------------------------------------------ 5. stop and continue
async def test_stop_twice_or_after_the_end_is_job_cannot_be_stopped(
    http: aiohttp.ClientSession,
) -> None:
    eng = await clone(http)
    accepted = await call(http, "POST", cell_url(eng, "hook", "generate"), 201, json=TEXT)
    gid = accepted["generation_id"]
    assert (await call(http, "POST", f"/v1/generations/{gid}/stop", 200))["status"] == "stopped"
    plain_error(
        await call(http, "POST", f"/v1/generations/{gid}/stop", 422), "job_cannot_be_stopped"
    )
    await call(http, "POST", f"/v1/generations/{gid}/continue", 200)
    plain_error(  # continue works only on a stopped one
        await call(http, "POST", f"/v1/generations/{gid}/continue", 422), "validation_error"
    )
    assert (await poll(http, f"/v1/generations/{gid}"))["status"] == "completed"
    message = plain_error(
        await call(http, "POST", f"/v1/generations/{gid}/stop", 422), "job_cannot_be_stopped"
    )
    assert "completed" in message
    plain_error(
        await call(http, "POST", f"/v1/generations/{gid}/continue", 422), "validation_error"
    )


async def test_a_failed_generation_cannot_be_stopped_or_continued(sim_factory: SimFactory) -> None:
    sim = await sim_factory(faults="gen_fail:1")
    async with aiohttp.ClientSession(base_url=sim.url, headers={"X-API-Key": KEY}) as http:
        eng = await clone(http)
        accepted = await call(http, "POST", cell_url(eng, "hook", "generate"), 201, json=TEXT)
        gid = accepted["generation_id"]
        assert (await poll(http, f"/v1/generations/{gid}"))["status"] == "failed"
        plain_error(
            await call(http, "POST", f"/v1/generations/{gid}/stop", 422), "job_cannot_be_stopped"
        )
        message = plain_error(
            await call(http, "POST", f"/v1/generations/{gid}/continue", 422), "validation_error"
        )
        assert "failed" in message and "stopped" in message
