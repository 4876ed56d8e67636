"""Helpers of the journey tests: the CLI in a thread, the sim's ledger, table writers."""

from __future__ import annotations

import asyncio
import csv
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import aiohttp

from genbatch.cli import main
from genbatch.sim.serve import SimServer

#: The extra key tests/conftest.py's simulators accept (FAST["api_keys"]).
KEY = "k1"
#: The simulator's time scale in tests/conftest.py (FAST["time_scale"]).
SCALE = 0.002
CORE_PATCH = "PATCH /v1/agents/{agent_id}/core"
AGENT_CREATE = "POST /v1/agents"
RUN_START = "POST /v1/agent/run"
USER_JOBS = "POST /v1/user_jobs"


def target(sim: SimServer) -> list[str]:
    """CLI flags that point a journey command at ``sim`` (no rate wait; polls learn)."""
    return [
        "--base-url", sim.api_url, "--agent-url", sim.agent_url, "--rate", "1000",
    ]  # fmt: skip


async def cli(*argv: str | Path) -> int:
    """``genbatch ARGV`` in a worker thread (it runs its own event loop)."""
    return await asyncio.to_thread(main, [str(a) for a in argv])


async def ledger(sim: SimServer) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http, http.get(sim.url + "/_sim/ledger") as resp:
        assert resp.status == 200
        data: dict[str, Any] = await resp.json()
        return data


async def count(sim: SimServer, route: str) -> int:
    """Requests the simulator saw for a route pattern, from GET /_sim/ledger."""
    by_route: dict[str, int] = (await ledger(sim))["requests"]["by_route"]
    return by_route.get(route, 0)


def write_csv(path: Path, rows: Sequence[Mapping[str, Any]]) -> Path:
    """A CSV whose list/dict cells are JSON, the way a person would type them."""
    columns: list[str] = []
    for row in rows:
        columns += [c for c in row if c not in columns]
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow(
                {
                    k: json.dumps(v) if isinstance(v, list | dict) else ("" if v is None else v)
                    for k, v in row.items()
                }
            )
    return path
