"""Call/poll helpers for the simulator's tests (fixtures live in conftest.py)."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from genbatch._constants import SIM_DEMO_AGENT_ID, SIM_DEMO_API_KEY

AGENT = SIM_DEMO_AGENT_ID
KEY = SIM_DEMO_API_KEY
TERMINAL = ("completed", "failed", "stopped")


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
