"""User jobs (Step 2 train_social, Step 5 publish_content): create, poll, update.

``data`` is a JSON *string* on the wire (the reference's curl shows it
escaped); an object, invalid JSON or a missing required key is 422.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import orjson
from aiohttp import web

from genbatch.sim.clock import parse_iso
from genbatch.sim.entities import Agent, Json, invalid, not_found, reject_unknown
from genbatch.sim.routes_common import (
    agent_q,
    agent_w,
    jbody,
    job_view,
    jresp,
    now,
    user_of,
    world_of,
)
from genbatch.sim.world import World

routes = web.RouteTableDef()

JOB_TYPES = ("publish_content", "train_social")
#: Publishing is TikTok-only for now (reference: "Instagram / YouTube coming").
PUBLISH_PLATFORMS = ("tiktok",)
SCHEDULE_TYPES = ("now", "scheduled")
#: train_social: supported source types per platform (reference, Step 2).
SCRAPE_TYPES: dict[str, tuple[str, ...]] = {
    "tiktok": ("username", "hashtag", "keyword"),
    "instagram": ("username", "hashtag"),
    "youtube": ("username", "hashtag", "keyword"),
}
# ASSUMPTION: real CDN URLs map onto /cdn (docs/sim-assumptions.md, "cdn").
#: The public CDN host of the real API; the sim maps its paths onto /cdn.
REAL_CDN_HOST = "cdn.gen.pro"


def cdn_key_for(w: World, url: str) -> str | None:
    """The sim CDN key a media URL points at, or None when it is not fetchable."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        return None
    path = parts.path
    if parts.hostname == REAL_CDN_HOST:
        key = path.lstrip("/")
    elif path.startswith("/cdn/"):
        key = path[len("/cdn/") :]
    else:
        return None
    return key if key in w.shared.cdn else None


def _parse_data(raw: Any) -> Json:
    if not isinstance(raw, str):
        raise invalid(
            'data must be a JSON string (e.g. "{\\"platform\\":\\"tiktok\\"}"), not an object'
        )
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise invalid(f"data is not valid JSON: {exc}") from None
    if not isinstance(parsed, dict):
        raise invalid("data must encode a JSON object")
    return parsed


def _check_publish(w: World, agent: Agent, d: Json, t: float) -> float | None:
    platform = d.get("platform")
    if platform not in PUBLISH_PLATFORMS:
        raise invalid(f"platform is required and must be one of {', '.join(PUBLISH_PLATFORMS)}")
    url = d.get("media_url")
    if not isinstance(url, str) or not url:
        raise invalid("media_url is required")
    if cdn_key_for(w, url) is None:
        raise invalid(f"media_url is not publicly accessible: {url}")
    if "description" in d and not isinstance(d["description"], str):
        raise invalid("description must be a string")
    if d.get("media_type", "VIDEO") != "VIDEO":
        raise invalid("media_type must be VIDEO")
    if not any(a.get("platform") == platform for a in agent.core.get("linked_accounts") or []):
        raise invalid(f"agent {agent.id} has no connected {platform} account (linked_accounts)")
    schedule = d.get("schedule_type", "now")
    if schedule not in SCHEDULE_TYPES:
        raise invalid(f"schedule_type must be one of {', '.join(SCHEDULE_TYPES)}")
    if schedule == "now":
        return None
    raw = d.get("scheduled_time")
    if not isinstance(raw, str):
        raise invalid("scheduled_time (ISO 8601) is required when schedule_type is scheduled")
    try:
        when = parse_iso(raw)
    except ValueError:
        raise invalid(
            "scheduled_time must be ISO 8601 with a timezone, e.g. 2026-04-20T15:00:00Z"
        ) from None
    if when <= t:
        raise invalid("scheduled_time must be in the future")
    return when


def _check_scrape(d: Json) -> None:
    platform = d.get("platform")
    if platform not in SCRAPE_TYPES:
        raise invalid(f"platform must be one of {', '.join(SCRAPE_TYPES)}")
    if d.get("type") not in SCRAPE_TYPES[platform]:
        raise invalid(f"type for {platform} must be one of {', '.join(SCRAPE_TYPES[platform])}")
    if not isinstance(d.get("value"), str) or not d["value"].strip():
        raise invalid("value is required")
    for key in ("days", "max_results"):
        v = d.get(key, 1)
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise invalid(f"{key} must be a positive integer")
    if not isinstance(d.get("monitoring", False), bool):
        raise invalid("monitoring must be true or false")


async def _form_or_json(request: web.Request) -> Json:
    if request.content_type.startswith("multipart/") or request.content_type == (
        "application/x-www-form-urlencoded"
    ):
        form = await request.post()
        out: Json = {}
        for k, v in form.items():
            name = k[len("user_job[") : -1] if k.startswith("user_job[") and k.endswith("]") else k
            out[name] = v if isinstance(v, str) else None
        return out
    body = await jbody(request, required=True)
    inner = body.get("user_job", body)
    if not isinstance(inner, dict):
        raise invalid("user_job must be an object")
    return inner


#: The flat keys today's SDK sends to update a monitoring job (docs/dialect.md §2).
FLAT_SCRAPE_KEYS = (
    "platform",
    "type",
    "value",
    "days",
    "country",
    "max_results",
    "monitoring",
    "comment_monitoring",
)


def _form_value(v: Any) -> Any:
    """A form field as JSON would carry it: true/false and whole numbers typed."""
    if isinstance(v, str):
        if v in ("true", "false"):
            return v == "true"
        if v.isdigit():
            return int(v)
    return v


@routes.post("/v1/user_jobs")
async def create_job(request: web.Request) -> web.Response:
    w, agent = world_of(request), await agent_w(request)
    body = await _form_or_json(request)
    job_type = body.get("user_job_type")
    if job_type not in JOB_TYPES:
        raise invalid(f"user_job_type must be one of {', '.join(JOB_TYPES)}")
    data = body.get("data")
    parsed = _parse_data(data)
    t = now()
    scheduled = None
    if job_type == "publish_content":
        scheduled = _check_publish(w, agent, parsed, t)
    else:
        _check_scrape(parsed)
    job = w.jobs.add(agent, str(job_type), str(data), parsed, t, scheduled)
    return jresp({"user_job_id": job.id}, 201)


@routes.get(r"/v1/user_jobs/{id:\d+}")
async def read_job(request: web.Request) -> web.Response:
    w, user, ident = world_of(request), user_of(request), request.match_info["id"]
    agent: Agent | None
    if "agent_id" in request.query:
        agent = agent_q(request)
    else:
        # ASSUMPTION: polled without agent_id, as the teaching document's Step 2
        # list shows it (docs/sim-assumptions.md, "user-job-read").
        found = w.jobs.user_jobs.get(int(ident))
        agent = w.agent_store.agents.get(found.agent_id) if found is not None else None
        if agent is None:
            raise not_found("user job", ident)
    job = w.jobs.user_job(user, agent, ident)
    return jresp(job_view(w, job, now()))


@routes.put(r"/v1/user_jobs/{id:\d+}")
async def update_job(request: web.Request) -> web.Response:
    w, agent = world_of(request), await agent_w(request)
    job = w.jobs.user_job(user_of(request), agent, request.match_info["id"])
    if job.user_job_type != "train_social":
        raise invalid("only monitoring (train_social) jobs can be updated")
    body = await _form_or_json(request)
    body.pop("agent_id", None)  # accepted in the body too (routes_common.agent_w)
    flat = {k: _form_value(body.pop(k)) for k in FLAT_SCRAPE_KEYS if k in body}
    reject_unknown(body, {"data", "user_job_type"})
    if flat and "data" not in body:
        # ASSUMPTION: today's SDK sends the changes as flat keys; they update the job's
        # data (docs/sim-assumptions.md, "train-social").
        body["data"] = orjson.dumps({**job.parsed, **flat}).decode()
    if "data" in body:
        parsed = _parse_data(body["data"])
        _check_scrape(parsed)
        job.data, job.parsed = str(body["data"]), parsed
        w.jobs.set_monitoring(job, parsed.get("monitoring") is True, now())
    job.updated_at = now()
    return jresp(job_view(w, job, job.updated_at))
