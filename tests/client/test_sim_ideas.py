"""Step 2 against the simulator: agent runs, conversations, ideas, research, train_social."""

from __future__ import annotations

import orjson
import pytest
from clienthelp import AGENT, POLL

from genbatch.client import GenClient
from genbatch.client.models import TrainSocialData
from genbatch.errors import RequestValidationError


async def test_ideas_run_conversation_and_status_flow(gen: GenClient) -> None:
    started = await gen.runs.start(AGENT, "Generate 3 content ideas grounded in this week trends")
    assert started.status == "running" and started.key and started.conversation_id
    run = await gen.runs.wait(started.key, **POLL)
    assert run.status == "completed"
    assert started.key in {
        r.key for r in await gen.conversations.runs(started.conversation_id or "")
    }

    conv_id = started.conversation_id or ""
    ideas = await gen.conversations.ideas(conv_id)
    assert len(ideas) == 3
    first = ideas[0]
    assert first.hook and first.full_script and first.video_type and first.project_manifest
    messages = await gen.conversations.messages(conv_id)
    assert [m.role for m in messages][:2] == ["user", "assistant"]

    # refine in the same conversation
    refine = await gen.runs.start(AGENT, "Make idea 1 hook punchier", conversation_id=conv_id)
    assert refine.conversation_id == conv_id
    await gen.runs.wait(refine.key, **POLL)

    listed = await gen.ideas.list(AGENT, status="generated")
    assert first.id in {i.id for i in listed}
    cycled = await gen.ideas.cycle_status(first.id or "")
    assert cycled.status == "approve_to_create"
    assert (await gen.ideas.set_status(first.id or "", "rejected")).status == "rejected"
    with pytest.raises(RequestValidationError):
        await gen.ideas.set_status(first.id or "", "maybe")  # type: ignore[arg-type]

    conv = await gen.conversations.update(conv_id, {"title": "Taco week", "pinned": True})
    assert conv.title == "Taco week" and conv.pinned is True
    assert conv_id in {c.id for c in await gen.conversations.list(AGENT)}
    assert (await gen.conversations.get(conv_id)).title == "Taco week"
    await gen.conversations.delete(conv_id)
    assert conv_id not in {c.id for c in await gen.conversations.list(AGENT)}


async def test_preferences_and_approval(gen: GenClient) -> None:
    pref = await gen.runs.start(AGENT, "remember: always use statement hooks, never questions")
    assert (await gen.runs.wait(pref.key, **POLL)).status == "completed"

    action = await gen.runs.start(AGENT, "publish the taco video to tiktok")
    waiting = await gen.runs.wait(action.key, **POLL)
    assert waiting.status == "awaiting_approval"  # a wait ends: it needs a human
    approved = await gen.runs.approve(action.key, approved=True)
    assert approved.status in {"running", "completed"}


async def test_research(gen: GenClient) -> None:
    started = await gen.research.start(AGENT, "tariffs on beauty imports 2026", depth="quick")
    done = await gen.runs.wait(started.key, **POLL)
    assert done.status == "completed" and done.result


async def test_train_social_multipart_and_update(gen: GenClient) -> None:
    created = await gen.user_jobs.train_social(
        AGENT,
        TrainSocialData(
            platform="tiktok", type="hashtag", value="streetfood", days=7, max_results=50
        ),
    )
    job = await gen.user_jobs.get(created.user_job_id, AGENT)
    assert job.user_job_type == "train_social"
    assert orjson.loads(job.data)["value"] == "streetfood"  # data kept as the JSON string
    updated = await gen.user_jobs.update(
        created.user_job_id,
        AGENT,
        {
            "data": orjson.dumps(
                {"platform": "tiktok", "type": "hashtag", "value": "tacos"}
            ).decode()
        },
    )
    assert orjson.loads(updated.data)["value"] == "tacos"
    done = await gen.user_jobs.wait(created.user_job_id, AGENT, **POLL)
    assert done.status == "completed"
    with pytest.raises(RequestValidationError):
        await gen.user_jobs.train_social(
            AGENT, {"platform": "instagram", "type": "keyword", "value": "x"}
        )
