"""Call/poll helpers for the simulator's tests (fixtures live in conftest.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from genbatch._constants import SIM_DEMO_AGENT_ID, SIM_DEMO_API_KEY
from genbatch.sim.serve import SimServer

AGENT = SIM_DEMO_AGENT_ID
KEY = SIM_DEMO_API_KEY
TERMINAL = ("completed", "failed", "stopped")
#: The ``sim_factory`` fixture: start a simulator with overridden settings.
SimFactory = Callable[..., Awaitable[SimServer]]


async def call(
    http: aiohttp.ClientSession, method: str, path: str, expect: int | None = None, **kw: Any
) -> Any:
    """One request; assert the status when given; return the decoded JSON body."""
    async with http.request(method, path, **kw) as resp:
        body = await resp.json(content_type=None) if resp.content_length != 0 else None
        if expect is not None:
            assert resp.status == expect, (method, path, resp.status, body)
        return body


async def poll(
    http: aiohttp.ClientSession,
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


async def ledger(http: aiohttp.ClientSession) -> dict[str, Any]:
    result: dict[str, Any] = await call(http, "GET", "/_sim/ledger", 200)
    return result


async def admin(http: aiohttp.ClientSession, **config: Any) -> dict[str, Any]:
    result: dict[str, Any] = await call(http, "POST", "/_sim/config", 200, json=config)
    return result


async def clone(
    http: aiohttp.ClientSession, slug: str = "tiktok-montage", agent: int = AGENT
) -> dict[str, Any]:
    """Clone a starter template into ``agent``; returns the engine."""
    url = f"/v1/templates/spreadsheets/{slug}/clone"
    body: dict[str, Any] = await call(http, "POST", url, 201, json={"agent_id": agent})
    return body


def cell_id(engine: dict[str, Any], column: str, row: int = 0) -> int:
    """The id of ``column``'s cell in the engine's ``row``-th row."""
    row_id = engine["spreadsheet_rows"][row]["id"]
    return int(
        next(
            c["id"]
            for c in engine["spreadsheet_cells"]
            if c["column_name"] == column and c["spreadsheet_row_id"] == row_id
        )
    )


def eng_url(engine: dict[str, Any], tail: str = "", agent: int = AGENT) -> str:
    """``/v1/autocontentengine/<id><tail>?agent_id=<agent>``."""
    return f"/v1/autocontentengine/{engine['id']}{tail}?agent_id={agent}"


def cell_url(engine: dict[str, Any], column: str, action: str = "", row: int = 0) -> str:
    """URL of a cell (``action`` "generate"/"render"/"" for the cell itself)."""
    tail = f"/cells/{cell_id(engine, column, row)}" + (f"/{action}" if action else "")
    return eng_url(engine, tail)
