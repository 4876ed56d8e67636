"""`genbatch sim` as its own process: prints its URL, serves, stops on SIGTERM."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from genbatch._constants import SIM_DEMO_API_KEY
from genbatch.sim.config import SimConfig
from genbatch.sim.launch import SimProcess


async def test_sim_subcommand_serves_and_stops(tmp_path: Path) -> None:
    spec = SimConfig(
        api_keys=("cli-key", "cli-key-2"),
        time_scale=0.01,
        seed=7,
        credits=123,
        rate=500,
        burst=50,
    )
    sim = SimProcess(
        spec, log=tmp_path / "out.log", err_log=tmp_path / "err.log", stop_signal=signal.SIGTERM
    )
    try:
        sim.start()
        line = sim.announcement
        m = re.fullmatch(r"genbatch sim listening on (http://127\.0\.0\.1:\d+)\n", line)
        assert m, line
        url = m.group(1)
        assert url == sim.url
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
        code = sim.stop(timeout=30)  # SIGTERM first
    assert code == 0
    assert b"cli-key" not in (tmp_path / "err.log").read_bytes()  # never prints a key
    assert b"cli-key" not in (tmp_path / "out.log").read_bytes()


def test_bad_fault_spec_exits_2() -> None:
    with pytest.raises(ValueError, match="unknown fault kind"):
        SimConfig(faults="meteor:1")  # refused before any process starts
    done = subprocess.run(
        [sys.executable, "-m", "genbatch", "sim", "--port", "0", "--faults", "meteor:1"],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert b"unknown fault kind" in done.stderr and done.stdout == b""
