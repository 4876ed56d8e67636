"""Steps 4–5 against the simulator: generate, layer generate, stop/continue, render,
download, publish — and the credits the ledger charged for each."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from clienthelp import AGENT, POLL, Sim

from genbatch.client import GenClient
from genbatch.client.models import PublishData, TextCard, TextData
from genbatch.errors import JobFailed, UnprocessableError, WaitTimeout


def _charged(ledger: dict[str, Any], generation_id: str) -> float:
    """What the simulator's ledger charged for one generation (net of nothing)."""
    return sum(
        e["amount"]
        for e in ledger["credits"]["events"]
        if e["kind"] == "charge" and str(e["generation_id"]) == generation_id
    )


async def test_generate_text_then_render_download_publish(
    dgen: GenClient, dsim: Sim, tmp_path: Path
) -> None:
    gen, sim = dgen, dsim
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
    # Today a generation names its type by the internal name (docs/dialect.md §2).
    assert text.kind == ("text_generation" if gen.dialect == "today" else "text")
    assert text.cost is not None and text.cost > 0
    assert text.cost == _charged(await sim.ledger(), text.id)  # what it says it cost
    # the cell reports its latest generation (how a restart reconciles)
    cell = await gen.cells.get(eng.id, hook.id, AGENT)
    assert cell.latest_generation == (started.generation_id, "completed")
    assert cell.generation_id == started.generation_id and cell.generation_status == "completed"

    # generate with the cell's saved card (no body); its {{hook}} needs a value
    script = eng.cell("script")
    assert script is not None
    await gen.cells.update(eng.id, hook.id, AGENT, text.result)
    again = await gen.generations.generate(eng.id, script.id, AGENT)
    assert (await gen.generations.wait(again.generation_id, **POLL)).status == "completed"
    # every layer the render composites needs content: the background image too
    background = eng.cell("background")
    assert background is not None
    image = await gen.generations.generate(eng.id, background.id, AGENT)
    assert (await gen.generations.wait(image.generation_id, **POLL)).status == "completed"

    render = await gen.generations.render(eng.id, final.id, AGENT)
    done = await gen.generations.wait(render.generation_id, **POLL)
    assert done.kind == "render" and done.video_url
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
    assert charged[int(render.generation_id)] == done.cost == _charged(ledger, done.id) > 0


async def test_layer_generate(dgen: GenClient) -> None:
    gen = dgen
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
    assert done.output_resources
    # the layer lists it (today: in its user_jobs; before: as its generation_id)
    read = await gen.layers.get(eng.id, final.id, layer.id, AGENT)
    assert read.latest_generation == (started.generation_id, "completed")


async def test_stop_refunds_and_continue_recharges(dgen: GenClient, dsim: Sim) -> None:
    gen, sim = dgen, dsim
    await sim.config(time_scale=1.0)  # long enough to stop it mid-flight
    eng = await gen.templates.clone("tiktok-vo-broll", AGENT)
    broll = eng.cell("broll")
    assert broll is not None
    card = {
        "generation_type": "video_from_text",
        "data": {"prompt": "taco truck", "model": "veo_3"},
    }
    started = await gen.generations.generate(eng.id, broll.id, AGENT, card)
    ledger = await sim.ledger()
    before, price = ledger["credits"], _charged(ledger, started.generation_id)
    assert price > 0
    stopped = await gen.generations.stop(started.generation_id)
    assert stopped is not None and stopped.status == "stopped"
    after = (await sim.ledger())["credits"]
    assert after["refunded"] - before["refunded"] == price
    with pytest.raises(JobFailed) as info:
        await gen.generations.wait(started.generation_id, **POLL)
    assert info.value.status == "stopped" and info.value.job_id == started.generation_id
    # Stopping it again: the server says it cannot be stopped (422); the client reads it,
    # sees it stopped, and answers with it — no error, and no second refund.
    again = await gen.generations.stop(started.generation_id)
    assert again is not None and again.id == started.generation_id and again.status == "stopped"
    assert gen.stats.status_counts[422] == 1  # the server did refuse the second stop
    assert (await sim.ledger())["credits"]["refunded"] == after["refunded"]

    await gen.generations.continue_(started.generation_id)
    assert (await sim.ledger())["credits"]["charged"] - after["charged"] == price
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


async def test_stop_after_the_end_returns_the_finished_generation(dgen: GenClient) -> None:
    # docs/dialect.md §4: stopping a generation that is over answers 422
    # (job_cannot_be_stopped or validation_error); stop() returns it as it ended.
    gen = dgen
    eng = await gen.templates.clone("tiktok-text-driven", AGENT)
    hook = eng.cell("hook")
    assert hook is not None
    started = await gen.generations.generate(
        eng.id, hook.id, AGENT, TextCard(data=TextData(prompt="a taco hook"))
    )
    done = await gen.generations.wait(started.generation_id, **POLL)
    assert done.status == "completed"
    over = await gen.generations.stop(started.generation_id)
    assert over is not None and over.status == "completed" and over.result == done.result
    assert gen.stats.status_counts[422] == 1  # refused by the server, answered by a read
    # continue of a generation that is not stopped is still the server's 422
    with pytest.raises(UnprocessableError) as info:
        await gen.generations.continue_(started.generation_id)
    assert info.value.status == 422
