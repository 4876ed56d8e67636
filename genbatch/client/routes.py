"""Every GEN endpoint, defined once, by method and path pattern.

Resources call routes by these names, errors and metrics name the *pattern*
(``GET /v1/generations/{id}``) — never a concrete URL — and the money rule
reads ``side_effect`` from here rather than from each call site.

Two dialects (docs/dialect.md §1): today's API serves every engine route under
``/v1/vidsheet``; the teaching document's API served them under
``/v1/autocontentengine``.  An engine-family route carries both paths
(``path`` today's, ``legacy_path`` the teaching document's); every other path
is the same in both.  Which one a session uses is decided by ``dialect.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Final, Literal

Host = Literal["api", "agent"]
#: "today": the API as the vendor's current sources describe it; "legacy": the
#: teaching document's API.
Dialect = Literal["today", "legacy"]
DIALECTS: Final[tuple[Dialect, Dialect]] = ("today", "legacy")

#: The engine (vidsheet) prefix of each dialect, relative to the ``/v1`` base.
ENGINE_PREFIX: Final[Mapping[Dialect, str]] = MappingProxyType(
    {"today": "/vidsheet", "legacy": "/autocontentengine"}
)


@dataclass(frozen=True, slots=True)
class Route:
    """One endpoint.  ``path`` is relative to the host's ``/v1`` base URL.

    ``side_effect``: a POST whose resend could create or charge something
    twice.  Such a request is resent only when it provably never left, or
    when the caller supplied an Idempotency-Key (see ``retry.py``).
    """

    method: str
    path: str
    host: Host = "api"
    side_effect: bool = False
    #: The teaching document's path when it differs (the engine prefix), else None.
    legacy_path: str | None = None

    @property
    def name(self) -> str:
        return f"{self.method} /v1{self.path}"

    @property
    def legacy_name(self) -> str:
        """The route's name in the teaching document's dialect."""
        return f"{self.method} /v1{self.legacy_path or self.path}"

    @property
    def by_dialect(self) -> bool:
        """An engine-family route: its path depends on the session's dialect."""
        return self.legacy_path is not None

    def in_dialect(self, dialect: Dialect) -> Route:
        """This route as ``dialect`` spells it (a plain route either way)."""
        if self.legacy_path is None:
            return self
        path = self.path if dialect == "today" else self.legacy_path
        return replace(self, path=path, legacy_path=None)

    @property
    def idempotent(self) -> bool:
        """Safe to resend after an ambiguous failure without a caller key."""
        return not self.side_effect

    def __str__(self) -> str:
        return self.name


def _get(path: str, host: Host = "api") -> Route:
    return Route("GET", path, host)


def _post(path: str, host: Host = "api", *, side_effect: bool = True) -> Route:
    return Route("POST", path, host, side_effect)


def _patch(path: str, host: Host = "api") -> Route:
    return Route("PATCH", path, host)


def _put(path: str, host: Host = "api") -> Route:
    return Route("PUT", path, host)


def _delete(path: str, host: Host = "api") -> Route:
    return Route("DELETE", path, host)


def _engine(route: Route) -> Route:
    """``route`` (written relative to the engine prefix) under both dialects' prefixes."""
    rest = route.path
    return replace(
        route, path=ENGINE_PREFIX["today"] + rest, legacy_path=ENGINE_PREFIX["legacy"] + rest
    )


_ENG = "/{id}"
_CELL = _ENG + "/cells/{cell_id}"
_LAYER = _CELL + "/layers/{layer_id}"
_VOICE = "/agents/{agent_id}/voice"

# Step 1 — agent setup
ME = _get("/me")
WORKSPACES = _get("/workspaces")
AGENTS_LIST = _get("/agents")
AGENTS_CREATE = _post("/agents")
AGENTS_GET = _get("/agents/{id}")
AGENTS_UPDATE = _patch("/agents/{id}")
AGENTS_DELETE = _delete("/agents/{id}")
CORE_GET = _get("/agents/{agent_id}/core")
CORE_UPDATE = _patch("/agents/{agent_id}/core")
VOICE_LIBRARY = _get(_VOICE + "/library")
VOICE_ELEVENLABS_CONNECT = _post(_VOICE + "/integrations/elevenlabs", side_effect=False)
VOICE_ELEVENLABS_TEST = _post(_VOICE + "/integrations/elevenlabs/test", side_effect=False)
VOICE_ELEVENLABS_DISCONNECT = _delete(_VOICE + "/integrations/elevenlabs")
VOICE_DESIGN_SCRIPT = _post(_VOICE + "/design/generate-script")
VOICE_DESIGN_DESCRIPTION = _post(_VOICE + "/design/generate-description")
VOICE_DESIGN_SAMPLES = _post(_VOICE + "/design/generate-samples")
VOICE_DESIGN_SAVE = _post(_VOICE + "/design")
VOICE_CLONE = _post(_VOICE + "/clone")
VOICE_DELETE = _delete(_VOICE + "/{voice_id}")
VOICE_PREVIEW = _post(_VOICE + "/{voice_id}/preview")
VOICE_PREVIEW_GET = _get(_VOICE + "/preview/{job_id}")
ORGS_LIST = _get("/organizations")
ORGS_CREATE = _post("/organizations")
ORGS_GET = _get("/organizations/{id}")
ORGS_UPDATE = _patch("/organizations/{id}")
ORGS_DELETE = _delete("/organizations/{id}")
TOKENS_CREATE = _post("/persisted_tokens")
TOKENS_LIST = _get("/persisted_tokens")
TOKENS_RENAME = _patch("/persisted_tokens/{id}")
TOKENS_REVOKE = _delete("/persisted_tokens/{id}/revoke")
TOKENS_REVOKE_ALL = _delete("/persisted_tokens/revoke_all")

# Step 2 — ideas (agent host), research, user jobs (api host)
RUN_START = _post("/agent/run", "agent")
RUN_GET = _get("/agent/runs/{run_id}", "agent")
RUN_APPROVE = _post("/agent/runs/{run_id}/approve", "agent", side_effect=False)
CONVERSATIONS_LIST = _get("/agent/conversations", "agent")
CONVERSATIONS_GET = _get("/agent/conversations/{id}", "agent")
CONVERSATIONS_UPDATE = _patch("/agent/conversations/{id}", "agent")
CONVERSATIONS_DELETE = _delete("/agent/conversations/{id}", "agent")
CONVERSATIONS_MESSAGES = _get("/agent/conversations/{id}/messages", "agent")
CONVERSATIONS_RUNS = _get("/agent/conversations/{id}/runs", "agent")
IDEAS_LIST = _get("/agent/ideas", "agent")
IDEAS_CYCLE_STATUS = _post("/agent/ideas/{id}/status", "agent")
IDEAS_SET_STATUS = _put("/agent/ideas/{id}/status/{status}", "agent")
RESEARCH_START = _post("/research", "agent")
USER_JOBS_CREATE = _post("/user_jobs")
USER_JOBS_GET = _get("/user_jobs/{id}")
USER_JOBS_UPDATE = _put("/user_jobs/{id}")

# Step 3 — templates and engines
TEMPLATES_LIST = _get("/templates/projects")
TEMPLATES_GET = _get("/templates/projects/{slug}")
TEMPLATES_CLONE = _post("/templates/spreadsheets/{slug}/clone")
ENGINES_CREATE = _engine(_post(""))
ENGINES_GET = _engine(_get(_ENG))
ENGINES_CLONE = _engine(_post(_ENG + "/clone"))

# Step 4 — rows, columns, cells, layers, generations, variables, resources
ROWS_LIST = _engine(_get(_ENG + "/rows"))
ROWS_CREATE = _engine(_post(_ENG + "/rows"))
ROWS_GET = _engine(_get(_ENG + "/rows/{row_id}"))
ROWS_DUPLICATE = _engine(_post(_ENG + "/rows/{row_id}/duplicate"))
ROWS_UPDATE_POSITIONS = _engine(_put(_ENG + "/rows/update_positions"))
ROWS_MASS_UPDATE = _engine(_put(_ENG + "/rows/mass_update"))
COLUMNS_LIST = _engine(_get(_ENG + "/columns"))
COLUMNS_CREATE = _engine(_post(_ENG + "/columns"))
COLUMNS_DUPLICATE = _engine(_post(_ENG + "/columns/{col_id}/duplicate"))
COLUMNS_UPDATE_POSITIONS = _engine(_patch(_ENG + "/columns/update_positions"))
COLUMNS_MASS_UPDATE = _engine(_put(_ENG + "/columns/mass_update"))
CELLS_GET = _engine(_get(_CELL))
CELLS_UPDATE = _engine(_patch(_CELL))
CELLS_MASS_UPDATE = _engine(_put(_ENG + "/cells/mass_update"))
CELLS_SET_DEFAULT_USER_JOB = _engine(_patch(_CELL + "/set_default_user_job"))
LAYERS_CREATE = _engine(_post(_CELL + "/layers"))
LAYERS_GET = _engine(_get(_LAYER))
LAYERS_UPDATE = _engine(_patch(_LAYER))
LAYERS_DELETE = _engine(_delete(_LAYER))
LAYERS_DUPLICATE = _engine(_post(_LAYER + "/duplicate"))
LAYERS_UPDATE_POSITIONS = _engine(_put(_CELL + "/layers/update_positions"))
CELL_GENERATE = _engine(_post(_CELL + "/generate"))
LAYER_GENERATE = _engine(_post(_LAYER + "/generate"))
GENERATIONS_GET = _get("/generations/{id}")
# Stopping twice is stopping once (and refunds once): safe to resend.
GENERATIONS_STOP = _post("/generations/{id}/stop", side_effect=False)
GENERATIONS_CONTINUE = _post("/generations/{id}/continue")
GLOBAL_VARIABLES_LIST = _engine(_get(_ENG + "/global_variables"))
GLOBAL_VARIABLES_IMPORT = _engine(_post(_ENG + "/import_global_variables"))
GLOBAL_VARIABLES_TEMPLATE = _engine(_get("/global_variables_template"))
CONTENT_RESOURCES_LIST = _get("/content_resources")
CONTENT_RESOURCES_CREATE = _post("/content_resources")
CONTENT_RESOURCES_GET = _get("/content_resources/{id}")
CONTENT_RESOURCES_UPDATE = _patch("/content_resources/{id}")
CONTENT_RESOURCES_DELETE = _delete("/content_resources/{id}")
ASSET_LIBRARIES = _get("/asset_libraries")
ASSET_FOLDERS_CREATE = _post("/asset_folders")
ASSET_FOLDERS_UPDATE = _patch("/asset_folders/{id}")
ASSET_FOLDERS_DELETE = _delete("/asset_folders/{id}")
DIRECT_UPLOAD = _post("/direct_upload")
AUTOMATION_GET = _get("/agents/{agent_id}/automation_config")
AUTOMATION_UPDATE = _patch("/agents/{agent_id}/automation_config")
AUTOMATION_TEST_WEBHOOK = _post(
    "/agents/{agent_id}/automation_config/test_webhook", side_effect=False
)
AUTOMATION_TEST_CALLBACK = _post(
    "/agents/{agent_id}/automation_config/test_callback", side_effect=False
)

# Step 5 — render (a generation on the final_video cell)
CELL_RENDER = _engine(_post(_CELL + "/render"))

#: Every route, for coverage checks.
ALL: tuple[Route, ...] = tuple(v for v in dict(globals()).values() if isinstance(v, Route))
