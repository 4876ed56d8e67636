"""Every endpoint of the reference has exactly one route, and every route a method."""

from __future__ import annotations

import re
from pathlib import Path

from genbatch.client import routes as R

#: The endpoint lines of GEN-API.md (Steps 1–5 endpoint lists), verbatim.
REFERENCE = """
DELETE /v1/agent/conversations/:id
DELETE /v1/agents/:agent_id/voice/:voice_id
DELETE /v1/agents/:agent_id/voice/integrations/elevenlabs
DELETE /v1/agents/:id
DELETE /v1/asset_folders/:id?agent_id=
DELETE /v1/autocontentengine/:id/cells/:cell_id/layers/:layer_id?agent_id=
DELETE /v1/content_resources/:id?agent_id=
DELETE /v1/organizations/:id
DELETE /v1/persisted_tokens/:id/revoke
DELETE /v1/persisted_tokens/revoke_all
GET /v1/agent/conversations/:id
GET /v1/agent/conversations/:id/messages
GET /v1/agent/conversations/:id/runs
GET /v1/agent/conversations?agent_id=
GET /v1/agent/ideas?agent_id=&status=
GET /v1/agent/runs/:run_id
GET /v1/agents/:agent_id/automation_config
GET /v1/agents/:agent_id/core
GET /v1/agents/:agent_id/voice/library
GET /v1/agents/:agent_id/voice/preview/:job_id
GET /v1/agents/:id
GET /v1/agents?workspace_id=
GET /v1/asset_libraries?agent_id=&folder_id=&asset_type=&search=
GET /v1/autocontentengine/:id/cells/:cell_id/layers/:layer_id?agent_id=
GET /v1/autocontentengine/:id/cells/:cell_id?agent_id=
GET /v1/autocontentengine/:id/columns?agent_id=
GET /v1/autocontentengine/:id/global_variables?agent_id=
GET /v1/autocontentengine/:id/rows/:row_id?agent_id=
GET /v1/autocontentengine/:id/rows?agent_id=
GET /v1/autocontentengine/:id?agent_id=
GET /v1/autocontentengine/global_variables_template
GET /v1/content_resources/:id?agent_id=
GET /v1/content_resources?agent_id=&type=&page=
GET /v1/generations/:id
GET /v1/me
GET /v1/organizations
GET /v1/organizations/:id
GET /v1/persisted_tokens
GET /v1/templates/projects
GET /v1/templates/projects/:slug
GET /v1/user_jobs/:id
GET /v1/user_jobs/:id?agent_id=
GET /v1/workspaces
PATCH /v1/agent/conversations/:id
PATCH /v1/agents/:agent_id/automation_config
PATCH /v1/agents/:agent_id/core
PATCH /v1/agents/:id
PATCH /v1/asset_folders/:id?agent_id=
PATCH /v1/autocontentengine/:id/cells/:cell_id/layers/:layer_id?agent_id=
PATCH /v1/autocontentengine/:id/cells/:cell_id/set_default_user_job?agent_id=
PATCH /v1/autocontentengine/:id/cells/:cell_id?agent_id=
PATCH /v1/autocontentengine/:id/columns/update_positions?agent_id=
PATCH /v1/content_resources/:id?agent_id=
PATCH /v1/organizations/:id
PATCH /v1/persisted_tokens/:id
POST /v1/agent/ideas/:id/status
POST /v1/agent/run
POST /v1/agent/runs/:run_id/approve
POST /v1/agents
POST /v1/agents/:agent_id/automation_config/test_callback
POST /v1/agents/:agent_id/automation_config/test_webhook
POST /v1/agents/:agent_id/voice/:voice_id/preview
POST /v1/agents/:agent_id/voice/clone
POST /v1/agents/:agent_id/voice/design
POST /v1/agents/:agent_id/voice/design/generate-description
POST /v1/agents/:agent_id/voice/design/generate-samples
POST /v1/agents/:agent_id/voice/design/generate-script
POST /v1/agents/:agent_id/voice/integrations/elevenlabs
POST /v1/agents/:agent_id/voice/integrations/elevenlabs/test
POST /v1/asset_folders?agent_id=
POST /v1/autocontentengine/:id/cells/:cell_id/generate?agent_id=
POST /v1/autocontentengine/:id/cells/:cell_id/layers/:layer_id/duplicate?agent_id=
POST /v1/autocontentengine/:id/cells/:cell_id/layers/:layer_id/generate?agent_id=
POST /v1/autocontentengine/:id/cells/:cell_id/layers?agent_id=
POST /v1/autocontentengine/:id/cells/:cell_id/render?agent_id=
POST /v1/autocontentengine/:id/clone?agent_id=
POST /v1/autocontentengine/:id/columns/:col_id/duplicate?agent_id=
POST /v1/autocontentengine/:id/columns?agent_id=
POST /v1/autocontentengine/:id/import_global_variables?agent_id=
POST /v1/autocontentengine/:id/rows/:row_id/duplicate?agent_id=
POST /v1/autocontentengine/:id/rows?agent_id=
POST /v1/autocontentengine?agent_id=
POST /v1/content_resources?agent_id=
POST /v1/direct_upload
POST /v1/generations/:id/continue
POST /v1/generations/:id/stop
POST /v1/organizations
POST /v1/persisted_tokens
POST /v1/research
POST /v1/templates/spreadsheets/:slug/clone
POST /v1/user_jobs
POST /v1/user_jobs?agent_id=
PUT /v1/agent/ideas/:id/status/:status
PUT /v1/autocontentengine/:id/cells/:cell_id/layers/update_positions?agent_id=
PUT /v1/autocontentengine/:id/cells/mass_update?agent_id=
PUT /v1/autocontentengine/:id/columns/mass_update?agent_id=
PUT /v1/autocontentengine/:id/rows/mass_update?agent_id=
PUT /v1/autocontentengine/:id/rows/update_positions?agent_id=
PUT /v1/user_jobs/:id
"""


def _shape(line: str) -> str:
    method, path = line.split(" ", 1)
    path = path.split("?", 1)[0]
    path = re.sub(r":\w+|\{\w+\}", "{}", path)
    return f"{method} {path}"


def test_every_reference_endpoint_has_one_route() -> None:
    # The teaching document's endpoints are our routes as that dialect spells them.
    reference = {_shape(line) for line in REFERENCE.split("\n") if line.strip()}
    ours = [_shape(r.legacy_name) for r in R.ALL]
    assert len(ours) == len(set(ours)), "a route is defined twice"
    assert reference == set(ours)
    today = [_shape(r.name) for r in R.ALL]
    assert len(today) == len(set(today))


def test_engine_routes_use_todays_prefix_and_keep_the_old_one() -> None:
    # docs/dialect.md §1: every engine route moved from /v1/autocontentengine to /v1/vidsheet;
    # templates, generations, user jobs, organizations, uploads stay where they were.
    engine = [r for r in R.ALL if r.by_dialect]
    old_prefix = {_shape(ln) for ln in REFERENCE.split("\n") if "/autocontentengine" in ln}
    assert {_shape(r.legacy_name) for r in engine} == old_prefix
    for r in engine:
        assert r.name.split(" ")[1].startswith("/v1/vidsheet")
        assert r.legacy_name.split(" ")[1].startswith("/v1/autocontentengine")
        assert r.legacy_name.replace("/autocontentengine", "/vidsheet", 1) == r.name
        assert r.in_dialect("legacy").name == r.legacy_name
        assert r.in_dialect("today").name == r.name
    assert R.ENGINES_CREATE.name == "POST /v1/vidsheet"
    assert R.ENGINES_GET.name == "GET /v1/vidsheet/{id}"
    assert R.CELL_RENDER.name == "POST /v1/vidsheet/{id}/cells/{cell_id}/render"
    assert R.GLOBAL_VARIABLES_TEMPLATE.name == "GET /v1/vidsheet/global_variables_template"
    unchanged = [r for r in R.ALL if not r.by_dialect]
    assert all("/autocontentengine" not in r.path and "/vidsheet" not in r.path for r in unchanged)
    assert R.TEMPLATES_CLONE.name == "POST /v1/templates/spreadsheets/{slug}/clone"
    assert R.GENERATIONS_STOP.in_dialect("legacy") is R.GENERATIONS_STOP


def test_url_follows_the_sessions_dialect() -> None:
    from genbatch.client import GenClient

    today = GenClient("routes-test-key", api_url="http://h/v1")
    assert today.dialect is None and today.engine_prefix == "/v1/vidsheet"
    assert today.url_for(R.ENGINES_GET, {"id": 7}) == "http://h/v1/vidsheet/7"
    old = GenClient("routes-test-key", api_url="http://h/v1", dialect="legacy")
    assert old.dialect == "legacy" and old.engine_prefix == "/v1/autocontentengine"
    assert old.url_for(R.ENGINES_GET, {"id": 7}) == "http://h/v1/autocontentengine/7"
    assert old.url_for(R.GENERATIONS_GET, {"id": 7}) == "http://h/v1/generations/7"


def test_every_route_is_used_by_a_resource() -> None:
    pkg = Path(R.__file__).parent
    sources = "".join(
        p.read_text() for p in pkg.glob("*.py") if p.name not in ("routes.py", "base.py")
    )
    names = [n for n, v in vars(R).items() if isinstance(v, R.Route)]
    unused = [n for n in names if f"R.{n}" not in sources]
    assert not unused


def test_side_effect_posts() -> None:
    paid_or_creating = {
        R.CELL_GENERATE,
        R.LAYER_GENERATE,
        R.CELL_RENDER,
        R.GENERATIONS_CONTINUE,
        R.TEMPLATES_CLONE,
        R.ENGINES_CLONE,
        R.USER_JOBS_CREATE,
        R.RUN_START,
        R.RESEARCH_START,
        R.DIRECT_UPLOAD,
        R.CONTENT_RESOURCES_CREATE,
    }
    assert all(r.side_effect and not r.idempotent for r in paid_or_creating)
    assert all(r.idempotent for r in R.ALL if r.method != "POST")
    assert R.GENERATIONS_GET.name == "GET /v1/generations/{id}"
    agent_host = {r.path for r in R.ALL if r.host == "agent"}
    assert all(p.startswith(("/agent/", "/research")) for p in agent_host)


def test_path_params_are_single_quoted_segments() -> None:
    from genbatch.client import GenClient

    g = GenClient("routes-test-key", api_url="http://h/v1", agent_url="http://a/v1")
    assert g.url_for(R.GENERATIONS_GET, {"id": 789}) == "http://h/v1/generations/789"
    assert g.url_for(R.GENERATIONS_GET, {"id": "run_abc-1"}) == "http://h/v1/generations/run_abc-1"
    assert g.url_for(R.GENERATIONS_GET, {"id": "a/b c?"}) == "http://h/v1/generations/a%2Fb%20c%3F"
    assert g.url_for(R.RUN_GET, {"run_id": "r1"}) == "http://a/v1/agent/runs/r1"
