"""publish_content validation: data is a JSON *string*; media must be fetchable;
the agent needs a TikTok account; scheduled needs a future ISO 8601 time."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest
from simhelp import AGENT, call, poll

from genbatch.sim.serve import SimServer

JOBS = f"/v1/user_jobs?agent_id={AGENT}"


def publish(media_url: str, **over: Any) -> dict[str, Any]:
    data = {
        "platform": "tiktok",
        "media_url": media_url,
        "schedule_type": "now",
        "media_type": "VIDEO",
        **over,
    }
    return {
        "user_job_type": "publish_content",
        "data": json.dumps({k: v for k, v in data.items() if v is not None}),
    }


@pytest.fixture
def media_url(sim: SimServer) -> str:
    return f"{sim.url}/cdn/outputs/template_tiktok-montage_sample.mp4"


async def test_publish_now(http: aiohttp.ClientSession, media_url: str) -> None:
    job = await call(http, "POST", JOBS, 201, json=publish(media_url, description="hi"))
    done = await poll(http, f"/v1/user_jobs/{job['user_job_id']}?agent_id={AGENT}")
    assert done["status"] == "completed" and done["result"]["post_id"].isdigit()
    assert json.loads(done["data"])["media_url"] == media_url  # data stays the string sent


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"user_job_type": "publish_content", "data": {"platform": "tiktok"}}, "JSON string"),
        ({"user_job_type": "publish_content", "data": "{not json"}, "not valid JSON"),
        ({"user_job_type": "publish_content", "data": "[1]"}, "object"),
        ({"user_job_type": "teleport", "data": "{}"}, "user_job_type"),
    ],
)
async def test_bad_data(http: aiohttp.ClientSession, body: dict[str, Any], needle: str) -> None:
    err = await call(http, "POST", JOBS, 422, json=body)
    assert err["error_code"] == "validation_error" and needle in err["error"]


async def test_bad_publish_fields(
    http: aiohttp.ClientSession, media_url: str, sim: SimServer
) -> None:
    cases = [
        (publish(media_url, platform=None), "platform"),
        (publish(media_url, platform="instagram"), "platform"),
        (publish(None), "media_url"),
        (publish(f"{sim.url}/cdn/outputs/render_nope.mp4"), "publicly accessible"),
        (publish("https://example.com/x.mp4"), "publicly accessible"),
        (publish(media_url, schedule_type="later"), "schedule_type"),
        (publish(media_url, schedule_type="scheduled"), "scheduled_time"),
        (publish(media_url, schedule_type="scheduled", scheduled_time="tomorrow"), "ISO 8601"),
        (
            publish(media_url, schedule_type="scheduled", scheduled_time="2020-01-01T00:00:00Z"),
            "future",
        ),
    ]
    for body, needle in cases:
        err = await call(http, "POST", JOBS, 422, json=body)
        assert err["error_code"] == "validation_error" and needle in err["error"], (body, err)
    # no TikTok account → 422
    await call(http, "PATCH", f"/v1/agents/{AGENT}/core", 200, json={"linked_accounts": []})
    err = await call(http, "POST", JOBS, 422, json=publish(media_url))
    assert "tiktok" in err["error"]


async def test_train_social_json_and_update(http: aiohttp.ClientSession) -> None:
    data = {
        "platform": "youtube",
        "type": "keyword",
        "value": "tacos",
        "days": 3,
        "max_results": 10,
    }
    job = await call(
        http, "POST", JOBS, 201, json={"user_job_type": "train_social", "data": json.dumps(data)}
    )
    url = f"/v1/user_jobs/{job['user_job_id']}?agent_id={AGENT}"
    done = await poll(http, url)
    assert done["result"]["items_indexed"] == 10
    data["monitoring"] = True
    updated = await call(http, "PUT", url, 200, json={"user_job": {"data": json.dumps(data)}})
    assert updated["result"]["monitoring"] is True
    bad = {**data, "type": "username", "platform": "instagram", "value": ""}
    await call(
        http, "POST", JOBS, 422, json={"user_job_type": "train_social", "data": json.dumps(bad)}
    )
