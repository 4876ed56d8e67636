"""Canned content that reads right: hooks and scripts built from the agent's keywords or
the prompt's topic, image assets that are JPEGs, preferences kept once, approvals that
really do what they report, and monitoring jobs that keep monitoring."""

from __future__ import annotations

import asyncio
import json
import re
import time
from typing import Any

import aiohttp
from layerhelp import fill_layers
from simhelp import AGENT, call, cell_url, clone, poll

from genbatch.sim.serve import SimServer

CORE = f"/v1/agents/{AGENT}/core"
JOBS = f"/v1/user_jobs?agent_id={AGENT}"
KEYWORDS = ["birria tacos", "street food"]
#: A sentence: a capital first, one space between words, a stop at the end.
SENTENCE = re.compile(r"^[A-Z][^\s].*[^\s][.!?]$")


async def run(
    http: aiohttp.ClientSession, message: str, conversation: int | None = None, agent: int = AGENT
) -> dict[str, Any]:
    body: dict[str, Any] = {"agent_id": agent, "message": message}
    if conversation is not None:
        body["conversation_id"] = conversation
    started = await call(http, "POST", "/v1/agent/run", 201, json=body)
    done = await poll(
        http, f"/v1/agent/runs/{started['run_id']}", ("completed", "failed", "awaiting_approval")
    )
    done["conversation_id"] = started["conversation_id"]
    return done


def reads_right(text: str) -> None:
    """Every sentence of ``text`` starts with a capital and ends with a stop."""
    for sentence in re.split(r"(?<=[.!?]) ", text):
        assert SENTENCE.match(sentence), (sentence, text)
    assert "  " not in text and " ," not in text and " ." not in text, text


async def test_idea_hooks_and_scripts_are_built_from_the_keywords(
    http: aiohttp.ClientSession,
) -> None:
    await call(http, "PATCH", CORE, 200, json={"keywords": KEYWORDS, "brand_name": "Santiago"})
    done = await run(http, "Generate 6 content ideas")
    ideas = done["result"]["ideas"]
    assert len(ideas) == 6
    for idea in ideas:
        hook, script = idea["hook"], idea["full_script"]
        assert SENTENCE.match(hook), hook
        assert sum(hook.count(k) for k in KEYWORDS) == 1, hook  # one keyword, as written
        assert script.startswith(hook + " ") and "Santiago" in script
        reads_right(script)
        assert idea["title"].split(":")[0] in ("Birria tacos", "Street food")
    # refining a hook keeps the rest of the script
    old = ideas[0]
    refined = await run(http, "Make idea 1 hook punchier", done["conversation_id"])
    new = refined["result"]["ideas"][0]
    assert new["id"] == old["id"] and new["hook"].endswith(("!", "?")), new["hook"]
    assert new["full_script"] == new["hook"] + old["full_script"][len(old["hook"]) :]
    text_layers = [x for x in new["project_manifest"]["timeline_layers"] if x["type"] == "text"]
    assert text_layers[0]["content"] == new["hook"]


async def test_an_agent_without_keywords_talks_about_its_brand(
    http: aiohttp.ClientSession,
) -> None:
    agent = await call(http, "POST", "/v1/agents", 201, json={"agent": {"name": "Lumen Labs"}})
    done = await run(http, "Give me 3 ideas", agent=agent["id"])
    for idea in done["result"]["ideas"]:
        assert "Lumen Labs" in idea["hook"] and "lumen labs" not in idea["hook"], idea["hook"]
        assert idea["title"].startswith("Lumen Labs: ")


async def generate_text(
    http: aiohttp.ClientSession, eng: dict[str, Any], column: str, data: dict[str, Any]
) -> str:
    card = {"generation_type": "text", "data": data}
    accepted = await call(http, "POST", cell_url(eng, column, "generate"), 201, json=card)
    done = await poll(http, f"/v1/generations/{accepted['generation_id']}")
    assert done["status"] == "completed", done
    result = done["result"]
    return str(result if isinstance(result, str) else result.get("text"))


async def test_text_generations_read_right(http: aiohttp.ClientSession) -> None:
    await call(http, "PATCH", CORE, 200, json={"keywords": KEYWORDS})
    eng = await clone(http, "tiktok-vo-broll")
    # the teaching document's text card: the topic comes from the prompt, whole
    doc_card = {
        "prompt": "Write a 12s TikTok hook for {{topic}}",
        "model": "gemini_2_5_pro",
        "variables": {"topic": "San Antonio tacos"},
    }
    hook = await generate_text(http, eng, "hook", doc_card)
    assert "San Antonio tacos" in hook and "hook Antonio" not in hook, hook
    assert SENTENCE.match(hook), hook
    # a prompt without a topic: the agent's first keyword
    plain = await generate_text(
        http, eng, "hook", {"prompt": "Write a scroll-stopping one-line TikTok hook."}
    )
    assert "birria tacos" in plain and SENTENCE.match(plain), plain
    # a script told how to open opens that way
    await call(
        http,
        "PATCH",
        cell_url(eng, "hook"),
        200,
        json={"spreadsheet_cell": {"value": "The $2 taco at 2am saved my life."}},
    )
    prompt = "Write a 30-second spoken TikTok script that opens with: {{hook}}"
    script = await generate_text(http, eng, "script", {"prompt": prompt})
    assert script.startswith("The $2 taco at 2am saved my life. "), script
    reads_right(script)


async def test_idea_assets_point_at_real_files_of_their_type(
    http: aiohttp.ClientSession,
) -> None:
    done = await run(http, "Give me 3 ideas")
    async with aiohttp.ClientSession() as anon:
        for idea in done["result"]["ideas"]:
            kinds = {a["type"]: a for a in idea["selected_assets"]}
            assert set(kinds) == {"clip", "image"}
            for kind, ext, ctype, magic in (
                ("clip", ".mp4", "video/mp4", b"ftyp"),
                ("image", ".jpg", "image/jpeg", b"\xff\xd8\xff"),
            ):
                url = kinds[kind]["url"]
                assert url.endswith(ext), url
                async with anon.get(url) as r:
                    data = await r.read()
                    assert r.status == 200 and r.headers["Content-Type"] == ctype
                    assert magic in data[:12]


async def test_a_repeated_preference_is_stored_once(http: aiohttp.ClientSession) -> None:
    first = await run(http, "remember: always use statement hooks, never questions.")
    assert first["result"]["preferences"] == ["always use statement hooks, never questions."]
    again = await run(http, "remember:   Always use statement hooks,  never questions")
    assert again["result"]["preferences"] == first["result"]["preferences"]
    other = await run(http, "remember: target women 25-34")
    assert len(other["result"]["preferences"]) == 2
    agent = await call(http, "GET", f"/v1/agents/{AGENT}", 200)
    assert agent["preferences"] == other["result"]["preferences"]


async def render_one(http: aiohttp.ClientSession) -> str:
    eng = await clone(http, "tiktok-text-driven")
    await fill_layers(http, eng, "tiktok-text-driven")
    accepted = await call(http, "POST", cell_url(eng, "final_video", "render"), 201)
    done = await poll(http, f"/v1/generations/{accepted['generation_id']}")
    return str(done["output_resources"][0]["url"])


async def approve(http: aiohttp.ClientSession, waiting: dict[str, Any], ok: bool) -> dict[str, Any]:
    assert waiting["status"] == "awaiting_approval", waiting
    url = f"/v1/agent/runs/{waiting['run_id']}"
    await call(http, "POST", f"{url}/approve", 200, json={"approved": ok})
    return await poll(http, url, ("completed", "failed"))


async def test_an_approved_publish_creates_the_job_it_reports(
    http: aiohttp.ClientSession, sim: SimServer
) -> None:
    ideas = await run(http, "Give me 3 ideas")
    conv, hooks = ideas["conversation_id"], [i["hook"] for i in ideas["result"]["ideas"]]
    # nothing rendered yet: approved, but nothing to post
    early = await approve(http, await run(http, "Publish idea 1 to TikTok", conv), True)
    assert early["result"]["executed"] is False and "rendered" in early["result"]["reason"]
    assert not sim.world.user_jobs
    video = await render_one(http)
    # rejected: nothing happens
    no = await approve(http, await run(http, "Publish idea 1 to TikTok", conv), False)
    assert no["result"]["executed"] is False and not sim.world.user_jobs
    # approved: the publish user job it reports exists and posts
    done = await approve(http, await run(http, "Publish idea 1 to TikTok", conv), True)
    result = done["result"]
    assert result["executed"] is True and result["media_url"] == video
    assert result["idea_id"] == ideas["result"]["ideas"][0]["id"]
    job_url = f"/v1/user_jobs/{result['user_job_id']}?agent_id={AGENT}"
    posted = await poll(http, job_url)
    assert posted["status"] == "completed" and posted["result"]["post_id"]
    assert posted["user_job_type"] == "publish_content"
    data = json.loads(sim.world.user_jobs[result["user_job_id"]].data)
    assert data["media_url"] == video and data["description"] == hooks[0]
    # delete idea 2, approved: it is gone
    deleted = await approve(http, await run(http, "Delete idea 2", conv), True)
    assert deleted["result"]["executed"] is True
    await call(http, "GET", f"/v1/agent/ideas/{deleted['result']['idea_id']}", 404)


async def test_a_monitoring_job_stays_active(http: aiohttp.ClientSession) -> None:
    data = {
        "platform": "tiktok",
        "type": "hashtag",
        "value": "streetfood",
        "days": 7,
        "max_results": 40,
        "monitoring": True,
    }
    job = await call(
        http, "POST", JOBS, 201, json={"user_job_type": "train_social", "data": json.dumps(data)}
    )
    url = f"/v1/user_jobs/{job['user_job_id']}?agent_id={AGENT}"
    deadline = time.monotonic() + 10
    while (body := await call(http, "GET", url, 200))["result"] is None:
        assert body["status"] in ("pending", "processing") and time.monotonic() < deadline
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.3)  # well past the scrape's scaled latency (at most 60 ms)
    active = await call(http, "GET", url, 200)
    assert active["status"] == "processing"  # still watching, not completed
    assert active["result"]["monitoring"] is True and active["result"]["items_indexed"] == 40
    data["monitoring"] = False
    stopped = await call(http, "PUT", url, 200, json={"user_job": {"data": json.dumps(data)}})
    assert stopped["status"] == "completed" and stopped["result"]["monitoring"] is False
    data["monitoring"] = True
    again = await call(http, "PUT", url, 200, json={"user_job": {"data": json.dumps(data)}})
    assert again["status"] == "processing"
