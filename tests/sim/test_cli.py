"""`genbatch sim` as its own process: prints its URL, serves, stops on SIGTERM."""

from __future__ import annotations

import asyncio
import re
import signal
import sys

import aiohttp

from genbatch._constants import SIM_DEMO_API_KEY


async def test_sim_subcommand_serves_and_stops() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "genbatch",
        "sim",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--api-key",
        "cli-key",
        "--api-key",
        "cli-key-2",
        "--time-scale",
        "0.01",
        "--seed",
        "7",
        "--credits",
        "123",
        "--rate",
        "500",
        "--burst",
        "50",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        m = re.fullmatch(r"genbatch sim listening on (http://127\.0\.0\.1:\d+)\n", line)
        assert m, line
        url = m.group(1)
        async with aiohttp.ClientSession(base_url=url) as http:
            for key in ("cli-key", "cli-key-2", SIM_DEMO_API_KEY):
                async with http.get("/v1/me", headers={"X-API-Key": key}) as r:
                    assert r.status == 200
                    assert r.headers["X-RateLimit-Limit"] == "50"
            async with http.get("/v1/organizations/100", headers={"X-API-Key": "cli-key"}) as r:
                assert (await r.json())["credit_balance"] == 123
            async with http.get("/_sim/ledger") as r:
                assert (await r.json())["config"]["seed"] == 7
    finally:
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(proc.wait(), 30)
    assert code == 0
    assert proc.stderr is not None
    assert b"cli-key" not in await proc.stderr.read()  # never prints a key


async def test_bad_fault_spec_exits_2() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "genbatch",
        "sim",
        "--port",
        "0",
        "--faults",
        "meteor:1",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 2 and b"unknown fault kind" in err and out == b""
