"""SIGKILL at the worst moments, then the same command again: every row, paid once.

The simulator runs as its own process (it outlives the crashed run, like
GEN would); genbatch runs as a subprocess through tests/reliability/launch.py,
whose ``GENBATCH_TEST_HALT_AT`` hook makes the first row that reaches a
journal milestone announce it on stderr and stop there, so the kill lands
exactly at that point while the other rows are wherever they happen to be.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from runhelp import LAUNCH, SECRET_KEY, check_invariants, ledger, results, vo_table

from genbatch.sim.config import SimConfig
from genbatch.sim.launch import SimProcess

#: Subprocesses killed and rerun: seconds each, so outside `make check`.
pytestmark = pytest.mark.slow

SCALE = "0.002"
RATE = "500"


@pytest.fixture(scope="module")
def sim_proc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimProcess]:
    spec = SimConfig(
        time_scale=float(SCALE),
        rate=float(RATE),
        burst=int(RATE),
        api_keys=(SECRET_KEY,),
        seed=11,
    )
    with SimProcess(spec, log=tmp_path_factory.mktemp("sim") / "sim.log") as sim:
        yield sim


def run_cmd(sim: SimProcess, table: Path, out: Path) -> list[str]:
    return [
        sys.executable,
        str(LAUNCH),
        "run",
        str(table),
        "--template",
        "tiktok-vo-broll",
        "--base-url",
        sim.api_url,
        "--agent-url",
        sim.agent_url,
        "--agent",
        "1000",
        "--out",
        str(out),
        "--rate",
        RATE,
        "--json",
    ]


def env(halt: str | None = None) -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if k != "GENBATCH_TEST_HALT_AT"}
    e["GEN_API_KEY"] = SECRET_KEY
    if halt:
        e["GENBATCH_TEST_HALT_AT"] = halt
    return e


def run_and_kill(cmd: list[str], halt: str) -> str:
    """Start the run, SIGKILL it as soon as a row halts at ``halt``."""
    proc = subprocess.Popen(
        cmd, env=env(halt), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    assert proc.stderr is not None
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if line.startswith("GENBATCH-TEST-HALT"):
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, "".join(seen)
    return next(line for line in seen if line.startswith("GENBATCH-TEST-HALT"))


def net_charged(url: str) -> float:
    led = asyncio.run(ledger(url))
    return float(led["credits"]["charged"] - led["credits"]["refunded"])


@pytest.mark.parametrize(
    "halt",
    [
        "clone_intent",  # engine clone journaled, not yet sent
        "generate:voiceover:intent",  # paid intent committed, POST not sent
        "generate:broll:posted",  # POST accepted, its id never journaled
        "render:submitted",  # render paid and journaled: the row is mid-poll
        "download:start",  # video on the CDN, download under way
    ],
)
def test_sigkill_then_same_command_completes_every_row_paid_once(
    sim_proc: SimProcess, tmp_path: Path, halt: str
) -> None:
    table = vo_table(tmp_path / "t.csv", 6)
    out = tmp_path / "out"
    before = net_charged(sim_proc.url)
    cmd = run_cmd(sim_proc, table, out)

    line = run_and_kill(cmd, halt)
    halted_row = line.split("row=", 1)[1].split()[0]
    if halt == "download:start":
        # What a torn download leaves behind: a partial file next to the target.
        (out / "videos" / f"{halted_row}.mp4.part").write_bytes(b"\x00" * 100)

    again = subprocess.run(cmd, env=env(), capture_output=True, text=True, timeout=60)

    assert again.returncode == 0, again.stdout + again.stderr
    led = asyncio.run(ledger(sim_proc.url))
    rows = check_invariants(led, out, table, charged_before=before)
    assert all(r["status"] == "completed" for r in rows)
    halted = next(r for r in rows if r["row_id"] == halted_row)
    assert halted["attempts"] == 2  # started by both runs, finished once
    assert not list((out / "videos").glob("*.part"))
    # Each row: one voiceover, one broll, one render — however the kill fell.
    mine = [g for g in led["generations"] if str(g["engine_id"]) in {r["engine_id"] for r in rows}]
    assert len(mine) == 3 * len(rows)
    if halt == "generate:broll:posted":
        # The id was lost with the process: the rerun found it by reading the cell.
        log = (out / "run.log").read_text(encoding="utf-8")
        assert f'"event": "reconciled", "row_id": "{halted_row}"' in log


def test_second_process_on_the_same_out_dir_is_refused(
    sim_proc: SimProcess, tmp_path: Path
) -> None:
    table = vo_table(tmp_path / "t.csv", 2)
    out = tmp_path / "out"
    cmd = run_cmd(sim_proc, table, out)
    holder = subprocess.Popen(
        cmd,
        env=env("generate:broll:intent"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert holder.stderr is not None
    for line in holder.stderr:
        if line.startswith("GENBATCH-TEST-HALT"):
            break
    try:
        second = subprocess.run(cmd, env=env(), capture_output=True, text=True, timeout=60)
        assert second.returncode == 2
        assert "in use by another genbatch process" in second.stderr
        assert len(second.stderr.strip().splitlines()) == 1
    finally:
        holder.kill()
        holder.wait()
    # The kernel dropped the dead holder's lock: the same command now runs.
    third = subprocess.run(cmd, env=env(), capture_output=True, text=True, timeout=60)
    assert third.returncode == 0, third.stderr
    assert [r["status"] for r in results(out)] == ["completed", "completed"]


def test_sigint_stops_gracefully_and_the_same_command_resumes(
    sim_proc: SimProcess, tmp_path: Path
) -> None:
    table = vo_table(tmp_path / "t.csv", 6)
    out = tmp_path / "out"
    cmd = run_cmd(sim_proc, table, out)
    before = net_charged(sim_proc.url)
    proc = subprocess.Popen(
        cmd,
        env=env("render:submitted"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    for line in proc.stderr:
        if line.startswith("GENBATCH-TEST-HALT"):
            proc.send_signal(signal.SIGINT)
            break
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130, stderr  # the convention for ^C (128 + SIGINT)
    summary = json.loads(stdout)
    assert summary["interrupted"] is True and summary["exit_code"] == 130
    rows = results(out)  # written on the way out
    assert sorted(r["row_id"] for r in rows) == sorted(f"r{i:02d}" for i in range(6))
    stopped = [r for r in rows if r["status"] == "pending"]
    assert stopped and all("rerun" in r["reason"] for r in stopped)
    assert not list((out / "videos").glob("*.part"))

    again = subprocess.run(cmd, env=env(), capture_output=True, text=True, timeout=60)
    assert again.returncode == 0, again.stderr
    led = asyncio.run(ledger(sim_proc.url))
    rows = check_invariants(led, out, table, charged_before=before)
    assert all(r["status"] == "completed" for r in rows)
