"""`genbatch sim` as its own process: prints both hosts' URLs, serves, stops on SIGTERM."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import aiohttp
import pytest

from genbatch._constants import SIM_DEMO_AGENT_ID, SIM_DEMO_API_KEY
from genbatch.sim.config import SimConfig
from genbatch.sim.launch import SimLaunchError, SimProcess, command


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
        m = re.fullmatch(
            r"genbatch sim listening on (http://127\.0\.0\.1:\d+) \(api\)"
            r" and (http://127\.0\.0\.1:\d+) \(agent\)\n",
            line,
        )
        assert m, line
        url = m.group(1)
        assert url == sim.url and m.group(2) == sim.agent_root
        assert sim.api_url == url + "/v1" and sim.agent_url == m.group(2) + "/v1"
        assert sim.port != sim.agent_port
        # what a person copies: both base URLs and the demo key, nothing else secret
        printed = (tmp_path / "out.log").read_text(encoding="utf-8").splitlines()
        assert printed[:4] == [
            line.rstrip("\n"),
            f"GEN_API_URL={sim.api_url}",
            f"GEN_AGENT_URL={sim.agent_url}",
            f"demo key: {SIM_DEMO_API_KEY}",
        ]
        async with aiohttp.ClientSession(base_url=sim.agent_root) as agent:
            ideas = f"/v1/agent/ideas?agent_id={SIM_DEMO_AGENT_ID}"
            async with agent.get(ideas, headers={"X-API-Key": "cli-key"}) as r:
                assert r.status == 200  # the agent host, on its own port
            async with agent.get("/v1/me", headers={"X-API-Key": "cli-key"}) as r:
                assert r.status == 404 and "API host" in (await r.json())["error"]
        async with aiohttp.ClientSession(base_url=url) as http:
            for key in ("cli-key", "cli-key-2", SIM_DEMO_API_KEY):
                async with http.get("/v1/me", headers={"X-API-Key": key}) as r:
                    assert r.status == 200
                    assert r.headers["X-RateLimit-Limit"] == "50"
            async with http.get("/v1/organizations/100", headers={"X-API-Key": "cli-key"}) as r:
                assert (await r.json())["available_credit"]["generic"] == 123  # today's field
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


def test_legacy_paths_flag_reaches_the_process(tmp_path: Path) -> None:
    """``--legacy-paths`` (SimConfig.legacy_paths) serves the old engine prefix only."""
    config = SimConfig(legacy_paths=True)
    assert "--legacy-paths" in command(config) and "--legacy-paths" not in command(SimConfig())
    with SimProcess(config, log=tmp_path / "out.log") as sim:
        for prefix, status in (("/v1/autocontentengine", 201), ("/v1/vidsheet", 404)):
            request = urllib.request.Request(
                f"{sim.url}{prefix}?agent_id={SIM_DEMO_AGENT_ID}",
                data=b'{"spreadsheet": {"title": "t"}}',
                headers={"X-API-Key": SIM_DEMO_API_KEY, "Content-Type": "application/json"},
                method="POST",
            )
            try:
                with urllib.request.urlopen(request, timeout=30) as r:
                    got = r.status
            except urllib.error.HTTPError as exc:
                got = exc.code
            assert got == status, prefix


@pytest.mark.slow  # waits on the wall clock or a subprocess
def test_price_flag_reaches_the_process(tmp_path: Path) -> None:
    """``--price KEY=CREDITS`` (SimConfig.prices) replaces a published price in the process."""
    config = SimConfig(prices=(("render", 20.0),))
    assert command(config)[-2:] == ["--price", "render=20.0"]
    with SimProcess(config, log=tmp_path / "out.log") as sim:
        headers = {"X-API-Key": SIM_DEMO_API_KEY, "Content-Type": "application/json"}
        clone = urllib.request.Request(
            f"{sim.url}/v1/templates/spreadsheets/tiktok-text-driven/clone",
            data=json.dumps({"agent_id": SIM_DEMO_AGENT_ID}).encode(),
            headers=headers,
            method="POST",
        )
        with urllib.request.urlopen(clone, timeout=30) as r:
            assert r.status == 201
    bad = subprocess.run(
        [sys.executable, "-m", "genbatch", "sim", "--port", "0", "--price", "render=cheap"],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert bad.returncode == 2 and b"expected KEY=CREDITS" in bad.stderr


def _free_pair() -> int:
    """A port P with P + 1 free too (checked by binding both, then let go)."""
    for _ in range(50):
        with socket.socket() as a:
            a.bind(("127.0.0.1", 0))
            port = int(a.getsockname()[1])
            if port >= 65535:
                continue
            with socket.socket() as b:
                try:
                    b.bind(("127.0.0.1", port + 1))
                except OSError:
                    continue
        return port
    raise AssertionError("no two consecutive free ports")


def test_agent_port_defaults_to_port_plus_one(tmp_path: Path) -> None:
    port = _free_pair()
    log = tmp_path / "out.log"
    argv = [sys.executable, "-m", "genbatch", "sim", "--port", str(port), "--api-key", "k-secret"]
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while "demo key:" not in log.read_text(encoding="utf-8") and proc.poll() is None:
            assert time.monotonic() < deadline, log.read_text(encoding="utf-8")
            time.sleep(0.02)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    text = log.read_text(encoding="utf-8")
    assert f"GEN_API_URL=http://127.0.0.1:{port}/v1" in text, text
    assert f"GEN_AGENT_URL=http://127.0.0.1:{port + 1}/v1" in text, text
    assert "k-secret" not in text  # a key given with --api-key is never printed
    assert proc.returncode == 0


def test_same_port_for_both_hosts_is_refused() -> None:
    with pytest.raises(ValueError, match="two ports"):
        SimConfig(port=8787, agent_port=8787)
    done = subprocess.run(
        [sys.executable, "-m", "genbatch", "sim", "--port", "8787", "--agent-port", "8787"],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2 and b"two ports" in done.stderr and done.stdout == b""


def test_launcher_refuses_an_announcement_it_cannot_read(tmp_path: Path) -> None:
    fake = tmp_path / "fake-python"
    fake.write_text(
        "#!/bin/sh\necho 'genbatch sim listening on http://127.0.0.1:1'\nexec sleep 30\n",
        encoding="utf-8",
    )
    fake.chmod(0o755)
    with pytest.raises(SimLaunchError, match="cannot read"):
        SimProcess(SimConfig(), python=str(fake), stop_timeout=5).start()
