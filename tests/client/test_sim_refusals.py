"""The simulator's refusals and behaviours, seen through the client.

tests/sim/test_refusals.py, test_webhooks.py and test_content.py prove each of
these with raw HTTP; here every call goes through ``GenClient`` against the
in-process simulator (today's dialect), so each test proves the client surfaces
the behaviour: the right class from genbatch/errors.py, the server's words kept
in the message, the right model fields, and the balance the client reads.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from clienthelp import AGENT, FAST, POLL, WORKSPACE, Sim

from genbatch.client import GenClient
from genbatch.client.models import (
    Generation,
    LipsyncCard,
    LipsyncData,
    PublishData,
    TextCard,
    TextData,
    VideoFromTextCard,
    VideoFromTextData,
)
from genbatch.errors import (
    APIStatusError,
    NotFoundError,
    UnprocessableError,
    ValidationError,
)
from genbatch.sim import media
from genbatch.sim.accounts import SIM_OTHER_AGENT_ID, SIM_OTHER_API_KEY

#: What an error message must never show: Python reprs, class names, tracebacks
#: (the same pattern tests/sim/test_refusals.py holds the raw bodies to).
LEAK = re.compile(
    r"\bNone\b|\bTrue\b|\bFalse\b|NoneType|<class|Traceback|object at 0x|\w+(Error|Exception)\b"
    r"|[\[(]'|\{'|'\]|'\)"
)
MP4 = media.render_mp4({"upload": "local"}, "9:16")
JPEG = media.thumbnail_jpeg("9:16")
M4A = media.sample_media("audio", "9:16", {"upload": "tune"})[0]
#: 5 s of Veo 3: 60 credits a second (the vendor's "10 s Veo 3 ≈ 600").
VEO_3_FIVE_SECONDS = VideoFromTextCard(
    data=VideoFromTextData(prompt="taco truck at dusk", model="veo_3", duration=5)
)


def assert_plain(exc: APIStatusError) -> str:
    """The error's message and the server's, in plain words; returns the server's."""
    assert exc.server_message, exc.body
    for text in (str(exc), exc.message, exc.server_message):
        assert not LEAK.search(text), text
    return exc.server_message


async def balance(gen: GenClient) -> float:
    """The demo workspace's spendable balance, as the client reads it."""
    value = (await gen.organizations.get(WORKSPACE)).balance
    assert value is not None
    return value


def credit_events(ledger: dict[str, Any], kind: str, generation_id: str) -> list[float]:
    return [
        e["amount"]
        for e in ledger["credits"]["events"]
        if e["kind"] == kind and str(e["generation_id"]) == generation_id
    ]


# ------------------------------------------------------------------ 1. render needs content
async def test_render_of_empty_layers_is_refused_uncharged_then_completes_once_filled(
    gen: GenClient,
) -> None:
    eng = await gen.templates.clone("tiktok-text-driven", AGENT)
    final = eng.final_video_cell()
    cells = {name: eng.cell(name) for name in ("background", "script", "hook")}
    assert final is not None
    before = await balance(gen)

    with pytest.raises(ValidationError) as info:
        await gen.generations.render(eng.id, final.id, AGENT)
    err = info.value
    assert isinstance(err, UnprocessableError)
    assert (err.status, err.error_code) == (422, "validation_error")
    assert err.route == "POST /v1/vidsheet/{id}/cells/{cell_id}/render"
    message = assert_plain(err)
    assert message in str(err)  # the server's words reach the caller whole
    for column, cell in cells.items():
        assert cell is not None
        assert f'cell {cell.id} (column "{column}"' in message, message
    assert await balance(gen) == before  # refused: nothing charged
    assert (await gen.cells.get(eng.id, final.id, AGENT)).latest_generation is None

    # give every layer what it reads: generate the hook and the background, fill the script
    hook, script, background = cells["hook"], cells["script"], cells["background"]
    assert hook is not None and script is not None and background is not None
    text = await gen.generations.generate(
        eng.id, hook.id, AGENT, TextCard(data=TextData(prompt="A hook about $2 tacos"))
    )
    written = await gen.generations.wait(text.generation_id, **POLL)
    assert written.status == "completed" and isinstance(written.result, str)
    await gen.cells.update(eng.id, hook.id, AGENT, written.result)  # its card reads {{hook}}
    image = await gen.generations.generate(eng.id, background.id, AGENT)  # its saved card
    await gen.cells.update(eng.id, script.id, AGENT, "Two dollars. Three tacos. Zero regrets.")
    assert (await gen.generations.wait(image.generation_id, **POLL)).status == "completed"

    filled = await balance(gen)
    accepted = await gen.generations.render(eng.id, final.id, AGENT)
    done = await gen.generations.wait(accepted.generation_id, **POLL)
    assert done.status == "completed" and done.kind == "render"
    assert done.video_url and done.video_url.endswith(".mp4")
    assert done.cost is not None and done.cost > 0
    assert await balance(gen) == filled - done.cost  # the render, and only it, is paid


# ------------------------------------------------------------------ 2. uploads typed by bytes
async def test_uploads_are_typed_from_their_bytes_and_cards_refuse_the_wrong_kind(
    gen: GenClient, tmp_path: Path
) -> None:
    clip_bin = tmp_path / "clip.bin"  # no telling extension: the client sends octet-stream
    clip_bin.write_bytes(MP4)
    clip_mp4 = tmp_path / "local.mp4"
    clip_mp4.write_bytes(MP4)
    face = tmp_path / "face.mp4"  # a JPEG under a video's name: the bytes win
    face.write_bytes(JPEG)
    voice = tmp_path / "voice.m4a"
    voice.write_bytes(M4A)

    video = await gen.uploads.upload(clip_bin, AGENT)
    assert (video.object_type, video.content_type) == ("video", "video/mp4")
    declared = await gen.uploads.upload(clip_mp4, AGENT, content_type="application/octet-stream")
    assert (declared.object_type, declared.content_type) == ("video", "video/mp4")
    direct = await gen.uploads.upload(
        clip_bin, AGENT, content_type="application/octet-stream", method="direct"
    )
    assert (direct.object_type, direct.content_type) == ("video", "video/mp4")
    image = await gen.uploads.upload(face, AGENT)
    assert (image.object_type, image.content_type) == ("image", "image/jpeg")
    audio = await gen.uploads.upload(voice, AGENT, content_type="application/octet-stream")
    assert audio.object_type == "audio"
    # the type sticks: a later read says the same
    assert (await gen.content_resources.get(video.id, AGENT)).object_type == "video"
    assert (await gen.content_resources.get(image.id, AGENT)).object_type == "image"

    eng = await gen.templates.clone("tiktok-talking-avatar", AGENT)
    lipsync = eng.cell("lipsync")
    assert lipsync is not None
    before = await balance(gen)
    wrong = LipsyncCard(
        data=LipsyncData(model="sync_so", video_resource_id=image.id, audio_resource_id=audio.id)
    )
    with pytest.raises(ValidationError) as info:
        await gen.generations.generate(eng.id, lipsync.id, AGENT, wrong)
    assert (info.value.status, info.value.error_code) == (422, "validation_error")
    message = assert_plain(info.value)
    assert "lipsync" in message and "video_resource_id" in message, message
    assert f"content resource {image.id} " in message and "is image" in message, message
    assert message in str(info.value)
    assert await balance(gen) == before  # refused: nothing charged

    right = LipsyncCard(
        data=LipsyncData(model="sync_so", video_resource_id=video.id, audio_resource_id=audio.id)
    )
    started = await gen.generations.generate(eng.id, lipsync.id, AGENT, right)
    assert (await gen.generations.wait(started.generation_id, **POLL)).status == "completed"


# ------------------------------------------------------------------ 3. scheduled posts
@pytest.mark.slow  # waits on the wall clock or a subprocess
async def test_scheduled_publish_waits_for_its_wall_clock_time(
    gen: GenClient, tmp_path: Path
) -> None:
    clip = tmp_path / "post.mp4"
    clip.write_bytes(MP4)
    video = await gen.uploads.upload(clip, AGENT)
    assert video.url
    when = datetime.now(UTC) + timedelta(seconds=1.5)
    job = await gen.user_jobs.publish(
        AGENT,
        PublishData(
            media_url=video.url,
            description="later, at 2am",
            schedule_type="scheduled",
            scheduled_time=when,
        ),
    )
    # time_scale is 0.002: a scaled wait would end in 3 ms; the real one takes 1.5 s
    seen: list[tuple[float, str]] = []
    deadline = time.time() + 10.0
    while True:
        read = await gen.user_jobs.get(job.user_job_id, AGENT)
        seen.append((time.time(), read.status))
        if read.status == "completed":
            break
        assert read.status in ("pending", "processing"), read
        assert read.post_id is None and read.failure is None, read
        assert time.time() < deadline, seen
        await asyncio.sleep(0.05)
    early = [status for t, status in seen if t < when.timestamp() - 0.05]
    assert len(early) >= 10 and set(early) <= {"pending", "processing"}, seen
    assert seen[-1][0] >= when.timestamp()  # completed only once its time had come
    assert read.post_id and read.result["post_id"] == read.post_id
    waited = await gen.user_jobs.wait(job.user_job_id, AGENT, **POLL)
    assert waited.status == "completed" and waited.post_id == read.post_id


# ------------------------------------------------------------------ 4. no access is 404
async def test_another_workspace_gets_not_found_in_plain_words(gen: GenClient, sim: Sim) -> None:
    eng = await gen.templates.clone("tiktok-text-driven", AGENT)
    hook = eng.cell("hook")
    assert hook is not None
    started = await gen.generations.generate(
        eng.id, hook.id, AGENT, TextCard(data=TextData(prompt="A taco hook"))
    )
    gid = started.generation_id
    assert (await gen.generations.wait(gid, **POLL)).status == "completed"

    async with GenClient(
        SIM_OTHER_API_KEY, api_url=sim.api, agent_url=sim.agent, retry_policy=FAST
    ) as other:
        # the key is known and its own agent answers: what follows is about access
        assert (await other.automation.get(SIM_OTHER_AGENT_ID)).model_extra is not None
        seen: dict[str, NotFoundError] = {}
        attempts: tuple[tuple[str, Callable[[], Awaitable[object]]], ...] = (
            ("engine", lambda: other.engines.get(eng.id, SIM_OTHER_AGENT_ID)),
            ("engine via our agent", lambda: other.engines.get(eng.id, AGENT)),
            ("cell", lambda: other.cells.get(eng.id, hook.id, AGENT)),
            ("generation", lambda: other.generations.get(gid)),
            ("stop", lambda: other.generations.stop(gid)),
            ("missing engine", lambda: other.engines.get("999999", SIM_OTHER_AGENT_ID)),
            ("missing generation", lambda: other.generations.get("999999")),
        )
        for what, attempt in attempts:
            with pytest.raises(NotFoundError) as info:
                await attempt()
            err = info.value
            assert (err.status, err.error_code) == (404, "not_found"), (what, err.body)
            assert_plain(err)
            seen[what] = err
    # "not yours" reads exactly like "missing": only the id differs
    for theirs, missing, ident in (
        ("engine", "missing engine", eng.id),
        ("generation", "missing generation", gid),
    ):
        assert str(seen[theirs]).replace(ident, "999999") == str(seen[missing])
    # untouched: the owner still reads both, and the stop attempt did nothing
    assert (await gen.generations.get(gid)).status == "completed"
    assert (await gen.engines.get(eng.id, AGENT)).id == eng.id
    assert credit_events(await sim.ledger(), "refund", gid) == []


# ------------------------------------------------------------------ 5. stop twice
async def test_stop_twice_returns_the_stopped_generation_and_refunds_once(
    gen: GenClient, sim: Sim
) -> None:
    await sim.config(time_scale=1.0)  # long enough to stop it mid-flight
    eng = await gen.templates.clone("tiktok-vo-broll", AGENT)
    broll = eng.cell("broll")
    assert broll is not None
    before = await balance(gen)
    started = await gen.generations.generate(eng.id, broll.id, AGENT, VEO_3_FIVE_SECONDS)
    gid = started.generation_id
    assert await balance(gen) < before  # pre-charged

    first = await gen.generations.stop(gid)
    assert first is not None and first.id == gid and first.status == "stopped"
    refused = gen.stats.status_counts[422]
    second = await gen.generations.stop(gid)
    # the server refused (422 job_cannot_be_stopped); the client read it and answered with it
    assert gen.stats.status_counts[422] == refused + 1
    assert second is not None and second.id == gid and second.status == "stopped"
    assert isinstance(second, Generation) and second.done and second.failed

    ledger = await sim.ledger()
    charged = credit_events(ledger, "charge", gid)
    assert len(charged) == 1
    assert credit_events(ledger, "refund", gid) == charged  # one refund, of all of it
    assert await balance(gen) == before


# ------------------------------------------------------------------ 6. webhooks
@dataclass
class Receiver:
    """A real HTTP endpoint on 127.0.0.1 recording what it is sent."""

    url: str = ""
    bodies: list[dict[str, Any]] = field(default_factory=list)

    def statuses(self, generation_id: str) -> list[str]:
        return [
            b["generation"]["status"]
            for b in self.bodies
            if isinstance(b.get("generation"), dict)
            and str(b["generation"].get("id")) == generation_id
        ]

    async def wait_for(self, generation_id: str, status: str, limit: float = 10.0) -> None:
        deadline = time.monotonic() + limit
        while status not in self.statuses(generation_id):
            assert time.monotonic() < deadline, (generation_id, status, self.bodies)
            await asyncio.sleep(0.01)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver()

    async def hook(request: web.Request) -> web.Response:
        rec.bodies.append(await request.json())
        return web.Response(status=200)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    rec.url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    yield rec
    await runner.cleanup()


async def test_webhook_hears_status_changes_and_test_webhook_reports_delivery(
    gen: GenClient, sim: Sim, receiver: Receiver
) -> None:
    # never leave the machine: a non-loopback URL is refused before anything is stored
    with pytest.raises(ValidationError) as info:
        await gen.automation.update(
            AGENT, {"automation_config": {"webhook_url": "https://example.com/hook"}}
        )
    assert (info.value.status, info.value.error_code) == (422, "validation_error")
    assert "webhook_url" in assert_plain(info.value)
    assert (await gen.automation.get(AGENT)).model_extra == {
        "webhook_url": None,
        "callback_url": None,
        "polling_enabled": False,
    }

    config = await gen.automation.update(
        AGENT, {"automation_config": {"webhook_url": receiver.url}}
    )
    assert (config.model_extra or {})["webhook_url"] == receiver.url
    assert await gen.automation.test_webhook(AGENT) == {"success": True}
    assert receiver.bodies == [{"event": "test", "generation": None}]  # the real delivery

    await sim.config(time_scale=0.01)  # a video's pending phase lasts long enough to be told
    eng = await gen.templates.clone("tiktok-vo-broll", AGENT)
    broll = eng.cell("broll")
    assert broll is not None
    started = await gen.generations.generate(eng.id, broll.id, AGENT, VEO_3_FIVE_SECONDS)
    gid = started.generation_id
    # nobody polls: the simulator's own timers post each change
    await receiver.wait_for(gid, "completed")
    assert receiver.statuses(gid) == ["pending", "processing", "completed"]
    told = Generation.model_validate(receiver.bodies[-1]["generation"])
    read = await gen.generations.get(gid)
    assert told.id == read.id == gid and told.status == read.status == "completed"
    assert told.cost == read.cost == 300 and told.video_url == read.video_url


# ------------------------------------------------------------------ 7. published prices
async def test_five_seconds_of_veo_3_cost_300_credits(gen: GenClient, sim: Sim) -> None:
    eng = await gen.templates.clone("tiktok-vo-broll", AGENT)
    broll = eng.cell("broll")
    assert broll is not None
    before = await balance(gen)
    started = await gen.generations.generate(eng.id, broll.id, AGENT, VEO_3_FIVE_SECONDS)
    done = await gen.generations.wait(started.generation_id, **POLL)
    assert done.status == "completed"
    assert done.execution_cost == 300 and done.cost == 300
    assert await balance(gen) == before - 300
    assert credit_events(await sim.ledger(), "charge", done.id) == [300]
