"""Renders: real MP4s, unique per row, carrying a manifest that names their row;
layer generations; the render manifest follows the layer stack."""

from __future__ import annotations

import io
from typing import Any

import aiohttp
import av
from layerhelp import fill_layers
from simhelp import AGENT, call, cell_id, cell_url, clone, eng_url, poll

from genbatch.sim import media

HOOK_CARD = {"generation_type": "text", "data": {"prompt": "Write a hook"}}


async def fetch(url: str) -> bytes:
    async with aiohttp.ClientSession() as anon, anon.get(url) as r:
        assert r.status == 200 and r.headers["Content-Type"] == "video/mp4"
        return await r.read()


async def render_row(http: aiohttp.ClientSession, eng: dict[str, Any], row: int) -> dict[str, Any]:
    accepted = await call(http, "POST", cell_url(eng, "final_video", "render", row), 201)
    done = await poll(http, f"/v1/generations/{accepted['generation_id']}")
    assert done["status"] == "completed" and done["user_job_type"] == "render"
    return done


async def test_two_rows_render_to_different_mp4s_naming_their_rows(
    http: aiohttp.ClientSession,
) -> None:
    eng = await clone(http, "tiktok-text-driven")
    await call(
        http,
        "POST",
        eng_url(eng, "/rows"),
        201,
        json={"spreadsheet_row": {"values": {"hook": "second"}}},
    )
    eng = await call(http, "GET", eng_url(eng), 200)
    assert len(eng["spreadsheet_rows"]) == 2
    await call(
        http,
        "PATCH",
        cell_url(eng, "hook", row=0),
        200,
        json={"spreadsheet_cell": {"value": "first"}},
    )
    for row in (0, 1):  # a render needs content in every layer (background, script)
        assert await fill_layers(http, eng, "tiktok-text-driven", row) == ["background", "script"]
    videos = []
    for row in (0, 1):
        done = await render_row(http, eng, row)
        out = done["output_resources"][0]
        assert out["url"].endswith(".mp4") and "/cdn/outputs/render_" in out["url"]
        videos.append((await fetch(out["url"]), done))
    (a, ga), (b, _) = videos
    assert a != b
    for (data, gen), row, hook in ((videos[0], 0, "first"), (videos[1], 1, "second")):
        manifest = media.read_manifest(data)
        assert manifest is not None
        assert manifest["row_id"] == eng["spreadsheet_rows"][row]["id"]
        assert manifest["engine_id"] == eng["id"] and manifest["generation_id"] == gen["id"]
        assert (
            manifest["cell_id"] == cell_id(eng, "final_video", row)
            and manifest["template_slug"] == "tiktok-text-driven"
        )
        assert manifest["cells"]["hook"] == hook
        assert [x["name"] for x in manifest["layers"]] == ["Background", "Script text", "Hook text"]
        with av.open(io.BytesIO(data), "r") as container:
            stream = container.streams.video[0]
            assert stream.codec_context.name == "h264"
            assert stream.codec_context.width < stream.codec_context.height  # 9:16
    # the final_video cell now shows the render as its output
    cell = await call(http, "GET", cell_url(eng, "final_video", row=0), 200)
    ga.pop("_seen")
    assert cell["default_user_job"] == ga and cell["user_jobs"] == [ga]
    assert cell["value"] == ga["output_resources"][0]["url"]


async def test_generated_outputs_feed_later_cells_and_the_render(
    http: aiohttp.ClientSession,
) -> None:
    """The vo-broll recipe: hook → script ({{hook}}) → voiceover ({{script}}) → broll → render."""
    eng = await clone(http, "tiktok-vo-broll")
    await call(
        http,
        "PATCH",
        cell_url(eng, "hook"),
        200,
        json={"spreadsheet_cell": {"value": "Tacos at 2am"}},
    )
    err = await call(http, "POST", cell_url(eng, "voiceover", "generate"), 422)
    assert "script" in err["error"]  # {{script}} is still empty
    for column in ("script", "voiceover", "broll"):
        accepted = await call(http, "POST", cell_url(eng, column, "generate"), 201)
        gen = await poll(http, f"/v1/generations/{accepted['generation_id']}")
        assert gen["status"] == "completed", gen
    script = await call(http, "GET", cell_url(eng, "script"), 200)
    assert isinstance(script["value"], str) and script["value"]
    voice = await call(http, "GET", cell_url(eng, "voiceover"), 200)
    assert voice["default_user_job"]["output_resources"][0]["object_type"] == "audio"
    done = await render_row(http, eng, 0)
    manifest = media.read_manifest(await fetch(done["output_resources"][0]["url"]))
    assert manifest is not None and manifest["cells"]["hook"] == "Tacos at 2am"
    assert manifest["cells"]["broll"].endswith(".mp4")


async def test_layer_generate_and_layer_crud(http: aiohttp.ClientSession) -> None:
    eng = await clone(http, "tiktok-montage")
    final = await call(http, "GET", cell_url(eng, "final_video"), 200)
    layers = final["video_layers"]
    assert [x["position"] for x in layers] == list(range(len(layers)))
    assert [x["type"] for x in layers] == ["clip", "clip", "clip", "sound", "text"]  # today's names
    base = eng_url(eng, f"/cells/{final['id']}/layers").split("?")[0]
    agent = AGENT
    sticker = {"name": "Sticker", "type": "image", "additional_attributes": {"x": 10}}
    new = await call(http, "POST", f"{base}?agent_id={agent}", 201, json={"video_layer": sticker})
    assert new["position"] == len(layers) and new["additional_attributes"] == {"x": 10}
    body = {
        "generation_type": "image_from_text",
        "data": {"prompt": "taco sticker", "aspect_ratio": "1:1"},
    }
    accepted = await call(
        http, "POST", f"{base}/{new['id']}/generate?agent_id={agent}", 201, json=body
    )
    gen = await poll(http, f"/v1/generations/{accepted['generation_id']}")
    assert gen["output_resources"][0]["object_type"] == "image"
    assert gen["user_job_type"] == "gemini_image_generation"
    read = await call(http, "GET", f"{base}/{new['id']}?agent_id={agent}", 200)
    gen.pop("_seen")
    assert read["default_user_job"] == gen and read["user_jobs"] == [gen]  # the layer's history
    patched = await call(
        http,
        "PATCH",
        f"{base}/{new['id']}?agent_id={agent}",
        200,
        json={"video_layer": {"additional_attributes": {"y": 5}}},
    )
    assert patched["additional_attributes"] == {"x": 10, "y": 5}
    dup = await call(http, "POST", f"{base}/{new['id']}/duplicate?agent_id={agent}", 201)
    order = [dup["id"]] + [x["id"] for x in layers] + [new["id"]]
    to_position = {str(lid): pos for pos, lid in enumerate(order)}
    moved = await call(
        http,
        "PUT",
        f"{base}/update_positions?agent_id={agent}",
        200,
        json={"id_to_position": to_position},
    )
    assert [x["id"] for x in moved] == order
    await call(http, "DELETE", f"{base}/{dup['id']}?agent_id={agent}", 200)
    await call(http, "GET", f"{base}/{dup['id']}?agent_id={agent}", 404)
