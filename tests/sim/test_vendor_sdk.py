"""The vendor's TypeScript SDK, one video's worth of requests, against today's simulator.

What was read: ``poweredbyGEN/gen-sdk`` ``src/index.ts`` at commit
``88870b88bbc7753fbd2c1d9b617fc83f952118b6`` (package ``@poweredbygen/gen-sdk``
0.7.1; its ``src/index.ts`` differs from 0.7.0's, ``097da184``, only in routing
``grok`` models, which this test does not use).  Nothing of the SDK is imported
or copied: each request below is written out in Python with the method, path,
query, headers and JSON body the SDK puts on the wire.

Wire facts (every call): ``{baseUrl}{path}``, ``baseUrl`` being the API host's
``.../v1``; headers ``X-API-Key: <key>`` and ``Content-Type: application/json``
(GETs included); the body, when there is one, is the ``JSON.stringify`` text of
an object; any non-2xx answer is an error to the SDK.

The steps, and the SDK function each mirrors:

1. ``cloneTemplate(slug, agentId)``: POST ``/templates/spreadsheets/<slug>/clone``,
   body ``{agent_id}``, no query.  The SDK README's slugs (``ugc-talking-avatar``,
   ``ugc-avatar``) are not starter templates here, so ``tiktok-vo-broll``.
2. ``getEngine(agentId, engineId)``: GET ``/vidsheet/<id>?agent_id=<agent>``.
3. ``updateCell(...)`` twice (hook, script): PATCH
   ``/vidsheet/<id>/cells/<cell>?agent_id=<agent>``, body ``{spreadsheet_cell: {value}}``.
4. ``generateContent(...)`` twice: POST ``/vidsheet/<id>/cells/<cell>/generate?agent_id=``,
   body ``{generation_type, data}``, the type already turned into the SDK's internal
   name (``speech_from_text`` is sent as ``eleven_labs``; ``video_from_text`` with a
   ``veo_*`` model as ``gemini_video_generation``).  The SDK reads ``generation_id``.
5. ``waitForGeneration(id)``: GET ``/generations/<id>`` (``getGeneration``) until the
   status is ``completed`` (``failed`` / ``stopped`` are errors to it), sleeping
   2000 ms between reads; here 2 s times the simulator's time scale.
6. ``renderVideo(agentId, engineId, cellId)``: POST ``/vidsheet/<id>/cells/<final>/render``
   with ``agent_id`` in the body and no query string; then ``waitForGeneration``,
   whose ``output_resources[0].url`` is the MP4 (the README's Step 5).
7. ``publishContent(agentId, params)``: POST ``/user_jobs?agent_id=<agent>``, body
   ``{user_job_type: "publish_content", data: <JSON text>}``, ``data`` holding
   ``platform``, ``media_url``, ``description``, ``schedule_type`` in that order (the
   optional keys only when given).  The SDK has no reader for the job it starts;
   the test polls GET ``/user_jobs/<id>?agent_id=`` (the API's own read) to completion.

Every request is then looked up in the simulator's ledger: each hit one of
today's routes, none 404 / unmatched, nothing under ``/v1/autocontentengine``.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
from simhelp import AGENT, KEY, SimFactory

from genbatch.sim.dialect import LEGACY_PREFIX
from genbatch.sim.serve import SimServer
from genbatch.sim.templates import DEFAULT_VOICE_ID

SLUG = "tiktok-vo-broll"
#: waitForGeneration's default interval, in seconds of GEN time.
SDK_POLL_S = 2.0
#: How long the test waits for one job, wall clock (generous; the SDK's own is 300 s).
WALL_LIMIT_S = 30.0
HOOK = "I fixed my sleep in 7 days with one boring habit."
SCRIPT = "Here is the habit: same wake-up time, every single day, weekends included."
SPEECH = {"script": SCRIPT, "voice_method": "my_voices", "voice_id": DEFAULT_VOICE_ID}
VIDEO = {
    "prompt": "Slow dolly in on a sunrise bedroom, alarm clock on the nightstand",
    "model": "veo_3",
    "aspect_ratio": "9:16",
    "duration": 8,
}
#: The canonical route (method + aiohttp's canonical path) each request must hit.
EXPECTED_ROUTES = {
    "POST /v1/templates/spreadsheets/{slug}/clone",
    "GET /v1/vidsheet/{id}",
    "PATCH /v1/vidsheet/{id}/cells/{cell_id}",
    "POST /v1/vidsheet/{id}/cells/{cell_id}/generate",
    "GET /v1/generations/{id}",
    "POST /v1/vidsheet/{id}/cells/{cell_id}/render",
    "POST /v1/user_jobs",
    "GET /v1/user_jobs/{id}",
}


class SdkWire:
    """Sends a request the way the SDK's private ``request`` helper does; keeps a log."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str, api_key: str) -> None:
        self.session = session
        self.base_url = base_url.rstrip("/")
        self.headers = {"X-API-Key": api_key, "Content-Type": "application/json"}
        self.sent: list[tuple[str, str]] = []

    async def request(
        self, method: str, path: str, body: Any = None, expect: int = 200
    ) -> dict[str, Any]:
        data = None if body is None else json.dumps(body, separators=(",", ":"))
        self.sent.append((method, path))
        async with self.session.request(
            method, self.base_url + path, headers=self.headers, data=data
        ) as resp:
            text = await resp.text()
            assert resp.status == expect, (method, path, resp.status, text)
            parsed: dict[str, Any] = json.loads(text)
            return parsed

    async def poll(self, path: str, interval: float) -> dict[str, Any]:
        """GET ``path`` every ``interval`` s until its status is terminal (waitForGeneration)."""
        deadline = asyncio.get_running_loop().time() + WALL_LIMIT_S
        while True:
            body = await self.request("GET", path)
            if body["status"] in ("completed", "failed", "stopped"):
                return body
            assert asyncio.get_running_loop().time() < deadline, (path, body)
            await asyncio.sleep(interval)


def _cell_ids(engine: dict[str, Any]) -> dict[str, int]:
    """Column title → the id of its cell in the engine's first row."""
    titles = {c["id"]: c["title"] for c in engine["spreadsheet_columns"]}
    row = engine["spreadsheet_rows"][0]
    return {titles[c["column_id"]]: c["id"] for c in row["spreadsheet_cells"]}


async def _download(url: str) -> tuple[int, str, bytes]:
    async with aiohttp.ClientSession() as anon, anon.get(url) as resp:
        return resp.status, resp.headers.get("Content-Type", ""), await resp.read()


async def test_one_video_as_the_vendor_sdk_sends_it(sim_factory: SimFactory) -> None:
    sim: SimServer = await sim_factory()  # today's API: the default, not legacy_paths
    assert not sim.world.legacy_paths
    interval = SDK_POLL_S * sim.world.time_scale
    q = f"?agent_id={AGENT}"

    async with aiohttp.ClientSession() as session:
        sdk = SdkWire(session, sim.api_url, KEY)

        # 1. cloneTemplate
        cloned = await sdk.request(
            "POST", f"/templates/spreadsheets/{SLUG}/clone", {"agent_id": AGENT}, 201
        )
        eid = cloned["id"]
        assert isinstance(eid, int)

        # 2. getEngine
        engine = await sdk.request("GET", f"/vidsheet/{eid}{q}")
        assert engine["id"] == eid
        cells = _cell_ids(engine)
        assert {"hook", "script", "voiceover", "broll", "final_video"} <= set(cells)

        # 3. updateCell × 2
        for column, value in (("hook", HOOK), ("script", SCRIPT)):
            cell = await sdk.request(
                "PATCH",
                f"/vidsheet/{eid}/cells/{cells[column]}{q}",
                {"spreadsheet_cell": {"value": value}},
            )
            assert cell["id"] == cells[column] and cell["value"] == value

        # 4. generateContent × 2 (internal type names, as the SDK resolves them)
        started: dict[str, tuple[int, str]] = {}
        for column, internal, data in (
            ("voiceover", "eleven_labs", SPEECH),
            ("broll", "gemini_video_generation", VIDEO),
        ):
            accepted = await sdk.request(
                "POST",
                f"/vidsheet/{eid}/cells/{cells[column]}/generate{q}",
                {"generation_type": internal, "data": data},
                201,
            )
            assert isinstance(accepted["generation_id"], int), accepted
            assert accepted["status"] == "pending"
            started[column] = (accepted["generation_id"], internal)

        # 5. waitForGeneration × 2
        for column, (gid, internal) in started.items():
            gen = await sdk.poll(f"/generations/{gid}", interval)
            assert gen["status"] == "completed", (column, gen)
            assert gen["id"] == gid and gen["user_job_type"] == internal
            url = gen["output_resources"][0]["url"]
            assert isinstance(url, str) and url.startswith("http"), gen

        # 6. renderVideo (agent_id in the body, no query) + waitForGeneration
        accepted = await sdk.request(
            "POST", f"/vidsheet/{eid}/cells/{cells['final_video']}/render", {"agent_id": AGENT}, 201
        )
        rid = accepted["generation_id"]
        assert isinstance(rid, int) and accepted["status"] == "pending"
        rendered = await sdk.poll(f"/generations/{rid}", interval)
        assert rendered["status"] == "completed", rendered
        media_url = rendered["output_resources"][0]["url"]
        assert media_url.endswith(".mp4"), rendered
        status, ctype, mp4 = await _download(media_url)
        assert status == 200 and ctype == "video/mp4"
        assert len(mp4) > 8 and mp4[4:8] == b"ftyp"

        # 7. publishContent (schedule now), then the job's read until completed
        publish_data = {
            "platform": "tiktok",
            "media_url": media_url,
            "description": "One boring habit fixed my sleep #fyp",
            "schedule_type": "now",
        }
        job = await sdk.request(
            "POST",
            f"/user_jobs{q}",
            {
                "user_job_type": "publish_content",
                "data": json.dumps(publish_data, separators=(",", ":")),
            },
            201,
        )
        job_id = job.get("user_job_id", job.get("id"))
        assert isinstance(job_id, int), job
        published = await sdk.poll(f"/user_jobs/{job_id}{q}", interval)
        assert published["status"] == "completed", published
        assert published["user_job_type"] == "publish_content"
        assert json.loads(published["data"])["media_url"] == media_url

        # The ledger: every request above hit one of today's routes and succeeded.
        async with session.get(f"{sim.url}/_sim/ledger") as resp:
            assert resp.status == 200
            book = await resp.json()

    api_log = [e for e in book["requests"]["log"] if " /v1/" in e["route"] or "<" in e["route"]]
    assert len(api_log) == len(sdk.sent), (api_log, sdk.sent)
    for entry in api_log:
        assert entry["status"] != "404" and "<unmatched>" not in entry["route"], entry
        assert entry["status"].startswith("2"), entry
        assert LEGACY_PREFIX not in entry["route"], entry
    assert {e["route"] for e in api_log} == EXPECTED_ROUTES
    assert not any(LEGACY_PREFIX in path for _, path in sdk.sent)
