"""Steps 4–5 against the simulator: generate, layer generate, stop/continue, render,
download, publish — and the credits the ledger charged for each."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from clienthelp import AGENT, POLL, Sim

from genbatch.client import GenClient
from genbatch.client.models import PublishData, TextCard, TextData
from genbatch.errors import JobFailed, WaitTimeout


async def test_generate_text_then_render_download_publish(
    gen: GenClient, sim: Sim, tmp_path: Path
) -> None:
    eng = await gen.templates.clone("tiktok-text-driven", AGENT)
    hook = eng.cell("hook")
    final = eng.final_video_cell()
    assert hook is not None and final is not None

    started = await gen.generations.generate(
        eng.id,
        hook.id,
        AGENT,
        TextCard(
            data=TextData(
                prompt="Write a 12s TikTok hook for {{topic}}",
                model="gpt_4o",
                variables={"topic": "tacos"},
            )
        ),
    )
    assert started.status == "pending"
    text = await gen.generations.wait(started.generation_id, **POLL)
    assert text.status == "completed" and isinstance(text.result, str) and text.result
    assert text.generation_type == "text" and text.credits == 1.0
    # the cell reports its latest generation (how a restart reconciles)
    cell = await gen.cells.get(eng.id, hook.id, AGENT)
    assert cell.generation_id == started.generation_id and cell.generation_status == "completed"

    # generate with the cell's saved card (no body); its {{hook}} needs a value
    script = eng.cell("script")
    assert script is not None
    await gen.cells.update(eng.id, hook.id, AGENT, text.result)
    again = await gen.generations.generate(eng.id, script.id, AGENT)
    assert (await gen.generations.wait(again.generation_id, **POLL)).status == "completed"

    render = await gen.generations.render(eng.id, final.id, AGENT)
    done = await gen.generations.wait(render.generation_id, **POLL)
    assert done.generation_type == "render" and done.video_url
    assert done.output_resources[0].object_type == "video"
    size, sha = await gen.download(done.video_url, tmp_path / "final.mp4")
    data = (tmp_path / "final.mp4").read_bytes()
    assert size == len(data) > 0 and sha == hashlib.sha256(data).hexdigest()
    assert data[4:8] == b"ftyp"  # a real MP4

    job = await gen.user_jobs.publish(
        AGENT,
        PublishData(media_url=done.video_url, description="The $2 taco at 2am #tacotok"),
    )
    published = await gen.user_jobs.wait(job.user_job_id, AGENT, **POLL)
    assert published.status == "completed" and published.post_id

    ledger = await sim.ledger()
    charged = {g["id"]: g["credits"] for g in ledger["generations"]}
    assert charged[int(render.generation_id)] == 5.0


async def test_layer_generate(gen: GenClient) -> None:
    eng = await gen.templates.clone("tiktok-vo-broll", AGENT)
    final = eng.final_video_cell()
    assert final is not None
    layer = await gen.layers.create(
        eng.id,
        final.id,
        AGENT,
        {
            "name": "intro",
            "layer_type": "video",
            "creation_card": {
                "generation_type": "video_from_text",
                "data": {"prompt": "steam rising", "model": "veo_3_fast", "duration": 5},
            },
        },
    )
    started = await gen.generations.generate_layer(eng.id, final.id, layer.id, AGENT)
    done = await gen.generations.wait(started.generation_id, **POLL)
    assert done.layer_id == layer.id and done.output_resources


async def test_stop_refunds_and_continue_recharges(gen: GenClient, sim: Sim) -> None:
    await sim.config(time_scale=1.0)  # long enough to stop it mid-flight
    eng = await gen.templates.clone("tiktok-vo-broll", AGENT)
    broll = eng.cell("broll")
    assert broll is not None
    card = {
        "generation_type": "video_from_text",
        "data": {"prompt": "taco truck", "model": "veo_3"},
    }
    started = await gen.generations.generate(eng.id, broll.id, AGENT, card)
    before = (await sim.ledger())["credits"]
    stopped = await gen.generations.stop(started.generation_id)
    assert stopped is not None and stopped.status == "stopped"
    after = (await sim.ledger())["credits"]
    assert after["refunded"] - before["refunded"] == 20.0
    with pytest.raises(JobFailed) as info:
        await gen.generations.wait(started.generation_id, **POLL)
    assert info.value.status == "stopped" and info.value.job_id == started.generation_id

    await gen.generations.continue_(started.generation_id)
    assert (await sim.ledger())["credits"]["charged"] - after["charged"] == 20.0
    with pytest.raises(WaitTimeout):
        await gen.generations.wait(started.generation_id, initial=0.01, max_wait=0.05)


async def test_failed_generation_raises_job_failed(gen: GenClient, sim: Sim) -> None:
    await sim.config(faults="gen_fail:1")
    eng = await gen.templates.clone("tiktok-vo-broll", AGENT)
    hook = eng.cell("hook")
    assert hook is not None
    started = await gen.generations.generate(eng.id, hook.id, AGENT)
    with pytest.raises(JobFailed) as info:
        await gen.generations.wait(started.generation_id, **POLL)
    assert info.value.kind == "generation" and info.value.status == "failed"
    assert info.value.error
