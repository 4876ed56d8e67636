"""Issue 2 acceptance: the reference's five steps, with its own example bodies verbatim.

Bodies are the JSON text of the teaching document's curl examples, with the
shell variables substituted as curl would ($AGENT_ID, conv_xyz, the render
URL).  Every documented response field is checked.  Steps 3–5 use the engine
routes under the teaching document's ``/v1/autocontentengine`` prefix, so they
run against a simulator started with ``legacy_paths=True``; today's API plays
the same journey in tests/sim/test_dialects.py.
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
from simhelp import AGENT, call, ledger, poll

from genbatch.sim import media
from genbatch.sim.serve import SimServer

JSON = {"Content-Type": "application/json"}

# --- Step 1 (verbatim) -------------------------------------------------------
CORE_BODY = """{ "brand_name": "Santiago", "description": "San Antonio street food scout who hunts the best tacos.", "identity_type": "character", "goal": "growth", "target_platforms": ["tiktok", "instagram"], "shortform": true, "keywords": ["streetfood", "foodtruck", "tacotok"], "monitored": [ { "handle": "https://tiktok.com/@keithlee", "item_type": "account" }, { "handle": "sanantonioeats", "item_type": "hashtag" } ], "research_topics": [ { "topic": "new food truck openings in San Antonio" } ], "linked_accounts": [ { "url": "https://tiktok.com/@santiago_sa", "platform": "tiktok" } ], "personality": "Santiago grew up eating at his tia taco stand in south San Antonio...", "default_user_voice": { "voice_id": "21m00Tcm4TlvDq8ikWAM", "source": "public" } }"""  # noqa: E501
# --- Step 2 (verbatim) -------------------------------------------------------
RUN_BODY = """{ "agent_id": "'"$AGENT_ID"'", "message": "Generate 5 content ideas grounded in this week trends" }"""  # noqa: E501
REFINE_BODY = """{ "agent_id": "'"$AGENT_ID"'", "conversation_id": "conv_xyz", "message": "Make idea 1 hook punchier. Change idea 3 to montage. Drop idea 5." }"""  # noqa: E501
REMEMBER_BODY = """{ "agent_id": "'"$AGENT_ID"'", "message": "remember: always use statement hooks, never questions. target women 25-34." }"""  # noqa: E501
RESEARCH_BODY = """{ "agent_id": "'"$AGENT_ID"'", "topic": "tariffs on beauty imports 2026", "depth": "default" }"""  # noqa: E501
TRAIN_TYPE = "train_social"
TRAIN_DATA = """{"platform":"tiktok","type":"hashtag","value":"streetfood","days":7,"max_results":50,"monitoring":false}"""  # noqa: E501
# --- Step 3 (verbatim) -------------------------------------------------------
CLONE_BODY = """{ "agent_id": "'"$AGENT_ID"'" }"""
CUSTOM_BODY = """{ "spreadsheet": { "title": "Custom campaign" } }"""
# --- Step 4 (verbatim) -------------------------------------------------------
CELL_BODY = """{ "spreadsheet_cell": { "value": "The $2 taco at 2am saved my life." } }"""
GENERATE_BODY = """{ "generation_type": "video_from_text", "data": { "prompt": "San Antonio taco truck at golden hour, steam rising, handheld camera", "model": "veo_3", "aspect_ratio": "9:16", "duration": 10 } }"""  # noqa: E501
# --- Step 5 (verbatim) -------------------------------------------------------
PUBLISH_BODY = """{ "user_job_type": "publish_content", "data": "{\\"platform\\":\\"tiktok\\",\\"media_url\\":\\"https://cdn.gen.pro/outputs/render_xyz.mp4\\",\\"description\\":\\"The $2 taco at 2am #streetfood #tacotok\\",\\"schedule_type\\":\\"now\\",\\"media_type\\":\\"VIDEO\\"}" }"""  # noqa: E501

IDEA_FIELDS = {
    "title",
    "hook",
    "full_script",
    "video_type",
    "video_type_id",
    "estimated_duration",
    "aspect_ratio",
    "selected_assets",
    "project_manifest",
    "inspiration_sources",
    "rationale",
}
VIDEO_TYPE_IDS = {
    "talking_avatar": 1,
    "green_screen": 2,
    "montage": 3,
    "text_driven": 4,
    "pov_object": 5,
    "narrated_vo": 6,
    "split_screen": 8,
    "skit": 9,
}


def shell(body: str, **subst: str) -> str:
    """Substitute the curl example's shell variables the way bash would."""
    out = body.replace("""'"$AGENT_ID"'""", str(AGENT))
    for old, new in subst.items():
        out = out.replace(old, new)
    json.loads(out)  # still valid JSON
    return out


def check_idea(idea: dict[str, Any]) -> None:
    assert set(idea) >= IDEA_FIELDS, IDEA_FIELDS - set(idea)
    assert isinstance(idea["id"], int) and idea["status"] in ("generated", "rejected")
    for key in ("title", "hook", "full_script", "rationale", "video_type", "aspect_ratio"):
        assert isinstance(idea[key], str) and idea[key]
    assert idea["video_type_id"] == VIDEO_TYPE_IDS[idea["video_type"]]
    assert isinstance(idea["estimated_duration"], int) and idea["estimated_duration"] > 0
    assert idea["selected_assets"]
    for asset in idea["selected_assets"]:
        assert {"url", "type", "description", "usage", "clip_range"} <= set(asset)
    manifest = idea["project_manifest"]
    assert manifest["total_duration"] == idea["estimated_duration"]
    assert manifest["timeline_layers"] and all("type" in x for x in manifest["timeline_layers"])
    assert idea["inspiration_sources"] and all("url" in s for s in idea["inspiration_sources"])


async def test_step1_agent_core_verbatim(http: aiohttp.ClientSession) -> None:
    core = await call(http, "PATCH", f"/v1/agents/{AGENT}/core", 200, data=CORE_BODY, headers=JSON)
    sent = json.loads(CORE_BODY)
    for key, value in sent.items():
        assert core[key] == value, key
    assert "errors" not in core
    again = await call(http, "GET", f"/v1/agents/{AGENT}/core", 200)
    assert again == {k: core[k] for k in again}
    me = await call(http, "GET", "/v1/me", 200)
    assert me["workspace_ids"]
    orgs = await call(http, "GET", f"/v1/organizations/{me['workspace_ids'][0]}", 200)
    # today's balance fields (docs/dialect.md §4 "credits / balance")
    assert isinstance(orgs["credit"], float)
    assert orgs["available_credit"]["generic"] == orgs["credit"]


async def test_step2_ideas_refine_remember_research_verbatim(
    http: aiohttp.ClientSession, sim: SimServer
) -> None:
    started = await call(http, "POST", "/v1/agent/run", 201, data=shell(RUN_BODY), headers=JSON)
    assert set(started) == {"run_id", "conversation_id", "status", "firebase_path"}
    assert started["status"] == "running" and started["firebase_path"]
    run = await poll(http, f"/v1/agent/runs/{started['run_id']}", ("completed", "failed"))
    assert run["status"] == "completed" and run["_seen"][0] == "running"
    conv = started["conversation_id"]
    messages = await call(http, "GET", f"/v1/agent/conversations/{conv}/messages", 200)
    ideas = [i for m in messages for i in m["ideas"]]
    assert len(ideas) == 5
    for idea in ideas:
        check_idea(idea)

    refine = shell(REFINE_BODY, conv_xyz=str(conv))
    started2 = await call(http, "POST", "/v1/agent/run", 201, data=refine, headers=JSON)
    assert started2["conversation_id"] == conv
    await poll(http, f"/v1/agent/runs/{started2['run_id']}", ("completed",))
    listed = await call(http, "GET", f"/v1/agent/ideas?agent_id={AGENT}", 200)
    by_id = {i["id"]: i for i in listed}
    first, third, fifth = (by_id[ideas[n]["id"]] for n in (0, 2, 4))
    assert first["hook"] != ideas[0]["hook"] or first["hook"].endswith("!")
    assert third["video_type"] == "montage" and third["video_type_id"] == 3
    assert fifth["status"] == "rejected"

    started3 = await call(
        http, "POST", "/v1/agent/run", 201, data=shell(REMEMBER_BODY), headers=JSON
    )
    done3 = await poll(http, f"/v1/agent/runs/{started3['run_id']}", ("completed",))
    assert "always use statement hooks" in done3["result"]["preferences"][0]
    assert sim.world.agents[AGENT].preferences  # stored on the agent
    started4 = await call(http, "POST", "/v1/agent/run", 201, data=shell(RUN_BODY), headers=JSON)
    done4 = await poll(http, f"/v1/agent/runs/{started4['run_id']}", ("completed",))
    for idea in done4["result"]["ideas"]:
        assert not idea["hook"].endswith("?")  # the preference applies to every later run
        assert "statement hooks" in idea["rationale"]

    research = await call(
        http, "POST", "/v1/research", 201, data=shell(RESEARCH_BODY), headers=JSON
    )
    done5 = await poll(http, f"/v1/agent/runs/{research['run_id']}", ("completed",))
    assert done5["result"]["findings"] and done5["result"]["summary"]
    assert done5["result"]["topic"] == "tariffs on beauty imports 2026"

    form = aiohttp.FormData(
        {"user_job[user_job_type]": TRAIN_TYPE, "user_job[data]": TRAIN_DATA},
        default_to_multipart=True,
    )
    job = await call(http, "POST", f"/v1/user_jobs?agent_id={AGENT}", 201, data=form)
    done6 = await poll(http, f"/v1/user_jobs/{job['user_job_id']}?agent_id={AGENT}")
    assert done6["status"] == "completed" and done6["result"]["items_indexed"] == 50
    # the Step 2 list polls it without agent_id: GET /v1/user_jobs/:id
    bare = await call(http, "GET", f"/v1/user_jobs/{job['user_job_id']}", 200)
    assert bare["id"] == job["user_job_id"] and bare["status"] == "completed"


async def test_steps3_to_5_verbatim(legacy_http: aiohttp.ClientSession) -> None:
    http = legacy_http  # the teaching document's paths and shapes (legacy_paths=True)
    templates = await call(http, "GET", "/v1/templates/projects", 200)
    assert len(templates) == 7
    for t in templates:
        assert {
            "slug",
            "title",
            "description",
            "tags",
            "cover",
            "recent_generated_contents",
        } <= set(t)
    detail = await call(http, "GET", "/v1/templates/projects/tiktok-talking-avatar", 200)
    assert detail["slug"] == "tiktok-talking-avatar" and detail["tags"] == ["talking_avatar"]

    clone_url = "/v1/templates/spreadsheets/tiktok-talking-avatar/clone"
    eng = await call(http, "POST", clone_url, 201, data=shell(CLONE_BODY), headers=JSON)
    for key in ("id", "spreadsheet_columns", "spreadsheet_rows", "spreadsheet_cells", "layers"):
        assert eng[key], key
    assert await ledger(http) and (await ledger(http))["credits"]["charged"] == 0  # clone is free
    custom = await call(
        http, "POST", f"/v1/autocontentengine?agent_id={AGENT}", 201, data=CUSTOM_BODY, headers=JSON
    )
    assert custom["title"] == "Custom campaign"

    eid = eng["id"]
    base = f"/v1/autocontentengine/{eid}"
    read = await call(http, "GET", f"{base}?agent_id={AGENT}", 200)
    assert read["id"] == eid
    cells = {c["column_name"]: c for c in read["spreadsheet_cells"]}
    hook = await call(
        http,
        "PATCH",
        f"{base}/cells/{cells['hook']['id']}?agent_id={AGENT}",
        200,
        data=CELL_BODY,
        headers=JSON,
    )
    assert hook["value"] == "The $2 taco at 2am saved my life."

    gen_url = f"{base}/cells/{cells['avatar']['id']}/generate?agent_id={AGENT}"
    accepted = await call(http, "POST", gen_url, 201, data=GENERATE_BODY, headers=JSON)
    assert set(accepted) == {"generation_id", "status"} and accepted["status"] == "pending"
    gen = await poll(http, f"/v1/generations/{accepted['generation_id']}")
    assert gen["status"] == "completed" and gen["_seen"][0] in ("pending", "processing")
    assert gen["generation_type"] == "video_from_text" and gen["model"] == "veo_3"
    out = gen["output_resources"][0]
    assert (
        set(out) == {"id", "url", "thumbnail_url", "object_type"} and out["object_type"] == "video"
    )
    async with aiohttp.ClientSession() as anon, anon.get(out["url"]) as r:
        assert r.status == 200 and r.headers["Content-Type"] == "video/mp4"

    # stop (refund) and continue (re-charge)
    before = (await ledger(http))["credits"]
    again = await call(http, "POST", gen_url, 201, data=GENERATE_BODY, headers=JSON)
    stopped = await call(http, "POST", f"/v1/generations/{again['generation_id']}/stop", 200)
    assert stopped["status"] == "stopped"
    mid = (await ledger(http))["credits"]
    # 10 s of Veo 3 at the published ~60 credits a second
    assert mid["charged"] - before["charged"] == 600 and mid["refunded"] - before["refunded"] == 600
    cont = await call(http, "POST", f"/v1/generations/{again['generation_id']}/continue", 200)
    assert cont["status"] in ("pending", "processing")
    after = (await ledger(http))["credits"]
    assert after["charged"] - mid["charged"] == 600 and after["balance"] == mid["balance"] - 600

    # uploads: multipart, then the 3-step direct upload
    clip = media.render_mp4({"upload": "local"}, "9:16")
    form = aiohttp.FormData()
    form.add_field("content_resource[file]", clip, filename="local.mp4", content_type="video/mp4")
    res = await call(http, "POST", f"/v1/content_resources?agent_id={AGENT}", 201, data=form)
    assert res["byte_size"] == len(clip) and res["object_type"] == "video"
    hero = media.render_mp4({"upload": "hero"}, "9:16") * 3
    checksum = base64.b64encode(hashlib.md5(hero).digest()).decode()  # openssl md5 -binary | base64
    body = {
        "blob": {
            "filename": "hero.mp4",
            "byte_size": len(hero),
            "checksum": checksum,
            "content_type": "video/mp4",
        }
    }
    blob = await call(http, "POST", "/v1/direct_upload", 200, json=body)
    assert {"signed_id", "key", "direct_upload"} <= set(blob)
    async with (
        aiohttp.ClientSession() as storage,
        storage.put(
            blob["direct_upload"]["url"], data=hero, headers=blob["direct_upload"]["headers"]
        ) as put,
    ):
        assert put.status == 200
    attached = await call(
        http,
        "POST",
        f"/v1/content_resources?agent_id={AGENT}",
        201,
        json={"content_resource": {"file": blob["signed_id"]}},
    )
    assert attached["byte_size"] == len(hero) and attached["filename"] == "hero.mp4"
    async with aiohttp.ClientSession() as anon, anon.get(attached["url"]) as r:
        assert await r.read() == hero

    # Step 5: render → poll → CDN download (+ Range) → publish now and scheduled
    # The render composites every layer, so the voiceover and captions need content too.
    for column in ("voiceover", "captions"):
        filled = {"spreadsheet_cell": {"value": f"{column} filled by hand"}}
        cell_path = f"{base}/cells/{cells[column]['id']}?agent_id={AGENT}"
        await call(http, "PATCH", cell_path, 200, json=filled)
    final = cells["final_video"]["id"]
    rendered = await call(http, "POST", f"{base}/cells/{final}/render?agent_id={AGENT}", 201)
    assert rendered["status"] == "pending"
    done = await poll(http, f"/v1/generations/{rendered['generation_id']}")
    assert done["status"] == "completed" and done["generation_type"] == "render"
    video = done["output_resources"][0]
    assert video["object_type"] == "video" and "/cdn/outputs/render_" in video["url"]
    assert video["thumbnail_url"].endswith(".jpg") and isinstance(video["id"], int)
    async with aiohttp.ClientSession() as anon:
        async with anon.get(video["url"]) as r:
            mp4 = await r.read()
            assert r.status == 200 and int(r.headers["Content-Length"]) == len(mp4)
        async with anon.get(video["url"], headers={"Range": "bytes=0-99"}) as r:
            assert r.status == 206 and await r.read() == mp4[:100]
            assert r.headers["Content-Range"] == f"bytes 0-99/{len(mp4)}"
        async with anon.get(video["thumbnail_url"]) as r:
            assert r.status == 200 and (await r.read())[:2] == b"\xff\xd8"
    manifest = media.read_manifest(mp4)
    assert manifest is not None and manifest["cells"]["hook"] == "The $2 taco at 2am saved my life."

    now_body = PUBLISH_BODY.replace("https://cdn.gen.pro/outputs/render_xyz.mp4", video["url"])
    job = await call(
        http, "POST", f"/v1/user_jobs?agent_id={AGENT}", 201, data=now_body, headers=JSON
    )
    assert set(job) == {"user_job_id"}
    posted = await poll(http, f"/v1/user_jobs/{job['user_job_id']}?agent_id={AGENT}")
    assert posted["status"] == "completed" and posted["result"]["post_id"]
    assert posted["user_job_type"] == "publish_content" and posted["error"] is None
    bare = await call(http, "GET", f"/v1/user_jobs/{job['user_job_id']}", 200)  # Step 2 list
    assert bare["result"]["post_id"] == posted["result"]["post_id"]

    data = json.loads(json.loads(now_body)["data"])
    data.update(schedule_type="scheduled", scheduled_time="2026-04-20T15:00:00Z")
    past = {"user_job_type": "publish_content", "data": json.dumps(data)}
    if datetime(2026, 4, 20, 15, tzinfo=UTC) < datetime.now(UTC):  # the reference's date has passed
        err = await call(http, "POST", f"/v1/user_jobs?agent_id={AGENT}", 422, json=past)
        assert err["error_code"] == "validation_error"
    future = datetime.now(UTC) + timedelta(seconds=2)  # a wall-clock wait: keep it short
    data["scheduled_time"] = future.strftime("%Y-%m-%dT%H:%M:%SZ")
    sched = {"user_job_type": "publish_content", "data": json.dumps(data)}
    job2 = await call(http, "POST", f"/v1/user_jobs?agent_id={AGENT}", 201, json=sched)
    first = await call(http, "GET", f"/v1/user_jobs/{job2['user_job_id']}?agent_id={AGENT}", 200)
    assert first["status"] == "pending"  # waits for its real scheduled time
    posted2 = await poll(http, f"/v1/user_jobs/{job2['user_job_id']}?agent_id={AGENT}")
    assert (
        posted2["status"] == "completed"
        and posted2["result"]["post_id"] != posted["result"]["post_id"]
    )
    ledger_jobs = (await ledger(http))["user_jobs"]
    assert [j["status"] for j in ledger_jobs if j["type"] == "publish_content"] == ["completed"] * 2
