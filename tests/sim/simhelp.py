"""Call/poll helpers for the simulator's tests (fixtures live in conftest.py)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any

import aiohttp

from genbatch._constants import SIM_DEMO_AGENT_ID, SIM_DEMO_API_KEY
from genbatch.sim.dialect import LEGACY_PREFIX, TODAY_PREFIX
from genbatch.sim.serve import SimServer

AGENT = SIM_DEMO_AGENT_ID
KEY = SIM_DEMO_API_KEY
TERMINAL = ("completed", "failed", "stopped")
#: The ``sim_factory`` fixture: start a simulator with overridden settings.
SimFactory = Callable[..., Awaitable[SimServer]]
#: What the agent host serves (docs/dialect.md §1, "agent host"): the Step 2
#: agent endpoints and research; everything else is the API host's.
_AGENT_HOST_PATH = re.compile(
    r"/v1/(?:agent|research|ideas)(?:/.*)?|/v1/agents/[^/]+/recurring-jobs(?:/.*)?"
)


def on_agent_host(path: str) -> bool:
    """True for a path (query allowed) the agent host serves."""
    return _AGENT_HOST_PATH.fullmatch(path.split("?", 1)[0]) is not None


class SimHttp:
    """Both hosts of one simulator, held the way a client holds them.

    Two sessions with the same options, one on the API host's root and one on
    the agent host's; a request goes to the host that serves its path, so a
    test names only the path.  ``api`` / ``agent`` are the sessions themselves
    (to aim at one host on purpose).
    """

    def __init__(self, sim: SimServer, **session: Any) -> None:
        self.api = aiohttp.ClientSession(base_url=sim.url, **session)
        self.agent = aiohttp.ClientSession(base_url=sim.agent_url.removesuffix("/v1"), **session)

    def session_for(self, path: str) -> aiohttp.ClientSession:
        return self.agent if on_agent_host(path) else self.api

    def request(self, method: str, path: str, **kw: Any) -> Any:
        return self.session_for(path).request(method, path, **kw)

    def get(self, path: str, **kw: Any) -> Any:
        return self.session_for(path).get(path, **kw)

    def post(self, path: str, **kw: Any) -> Any:
        return self.session_for(path).post(path, **kw)

    def put(self, path: str, **kw: Any) -> Any:
        return self.session_for(path).put(path, **kw)

    def patch(self, path: str, **kw: Any) -> Any:
        return self.session_for(path).patch(path, **kw)

    def delete(self, path: str, **kw: Any) -> Any:
        return self.session_for(path).delete(path, **kw)

    async def close(self) -> None:
        await self.api.close()
        await self.agent.close()

    async def __aenter__(self) -> SimHttp:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


#: What the helpers below take: a session on one host, or both hosts.
Http = aiohttp.ClientSession | SimHttp


async def call(http: Http, method: str, path: str, expect: int | None = None, **kw: Any) -> Any:
    """One request; assert the status when given; return the decoded JSON body."""
    async with http.request(method, path, **kw) as resp:
        body = await resp.json(content_type=None) if resp.content_length != 0 else None
        if expect is not None:
            assert resp.status == expect, (method, path, resp.status, body)
        return body


async def poll(
    http: Http,
    path: str,
    until: tuple[str, ...] = TERMINAL,
    limit: float = 10.0,
) -> dict[str, Any]:
    """GET ``path`` until its ``status`` is in ``until``; returns the last body."""
    deadline = asyncio.get_running_loop().time() + limit
    seen: list[str] = []
    while True:
        body = await call(http, "GET", path, 200)
        if not seen or seen[-1] != body["status"]:
            seen.append(body["status"])
        if body["status"] in until:
            body["_seen"] = seen
            return body
        assert asyncio.get_running_loop().time() < deadline, (path, seen)
        await asyncio.sleep(0.01)


async def ledger(http: Http) -> dict[str, Any]:
    result: dict[str, Any] = await call(http, "GET", "/_sim/ledger", 200)
    return result


async def admin(http: Http, **config: Any) -> dict[str, Any]:
    result: dict[str, Any] = await call(http, "POST", "/_sim/config", 200, json=config)
    return result


async def clone(http: Http, slug: str = "tiktok-montage", agent: int = AGENT) -> dict[str, Any]:
    """Clone a starter template into ``agent``; returns the engine."""
    url = f"/v1/templates/spreadsheets/{slug}/clone"
    body: dict[str, Any] = await call(http, "POST", url, 201, json={"agent_id": agent})
    return body


def is_legacy(engine: dict[str, Any]) -> bool:
    """Whether ``engine`` has the teaching document's shape (cells listed flat)."""
    return "spreadsheet_cells" in engine


def cells_of(engine: dict[str, Any]) -> list[dict[str, Any]]:
    """Every cell of an engine read, in either dialect (today's rows hold their cells)."""
    if is_legacy(engine):
        return list(engine["spreadsheet_cells"])
    return [c for r in engine["spreadsheet_rows"] for c in r["spreadsheet_cells"]]


def column_of(engine: dict[str, Any], cell: dict[str, Any]) -> str:
    """The name of ``cell``'s column: today the title of the column its column_id names."""
    if "column_name" in cell:
        return str(cell["column_name"])
    return str(
        next(c["title"] for c in engine["spreadsheet_columns"] if c["id"] == cell["column_id"])
    )


def cell_of(engine: dict[str, Any], column: str, row: int = 0) -> dict[str, Any]:
    """``column``'s cell in the engine's ``row``-th row (either dialect)."""
    row_id = engine["spreadsheet_rows"][row]["id"]
    return next(
        c
        for c in cells_of(engine)
        if column_of(engine, c) == column and c["spreadsheet_row_id"] == row_id
    )


def cell_id(engine: dict[str, Any], column: str, row: int = 0) -> int:
    """The id of ``column``'s cell in the engine's ``row``-th row."""
    return int(cell_of(engine, column, row)["id"])


def latest_generation(cell: dict[str, Any]) -> tuple[int | None, str | None]:
    """(id, status) of a cell's (or layer's) current generation, in either dialect."""
    if "generation_id" in cell:
        return cell["generation_id"], cell["generation_status"]
    job = cell["default_user_job"]
    return (job["id"], job["status"]) if job else (None, None)


def engine_prefix(engine: dict[str, Any]) -> str:
    """Where ``engine``'s dialect serves the engine routes (told apart by its shape)."""
    return LEGACY_PREFIX if is_legacy(engine) else TODAY_PREFIX


def eng_url(engine: dict[str, Any], tail: str = "", agent: int = AGENT) -> str:
    """``/v1/vidsheet/<id><tail>?agent_id=<agent>`` (``/v1/autocontentengine`` for legacy)."""
    return f"{engine_prefix(engine)}/{engine['id']}{tail}?agent_id={agent}"


def cell_url(engine: dict[str, Any], column: str, action: str = "", row: int = 0) -> str:
    """URL of a cell (``action`` "generate"/"render"/"" for the cell itself)."""
    tail = f"/cells/{cell_id(engine, column, row)}" + (f"/{action}" if action else "")
    return eng_url(engine, tail)
