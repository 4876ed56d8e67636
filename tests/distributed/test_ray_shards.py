"""``genbatch run --ray``: shards on a two-node Ray cluster sharing one key's rate and credits.

Each test runs a real table against the simulator as its own process (rate
limit 100 requests/s per key, fast time) on the module's loopback cluster, and
checks what the simulator recorded: the combined request rate, 429s, charges
against ``--max-credits``, no cell paid twice, every MP4 whole.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import signal
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from conftest import LedgerWatch, max_in_window
from runhelp import AGENT, SECRET_KEY, exact_pricing, vo_table

from genbatch.distributed.driver import ShardedRun, ShardedSummary, run_sharded
from genbatch.distributed.merge import sharded_status
from genbatch.distributed.shard import DISTRIBUTED_WORKER_FILE
from genbatch.engine.journal import Journal
from genbatch.sim.config import SimConfig
from genbatch.sim.launch import SimProcess

pytestmark = pytest.mark.usefixtures("ray_cluster")

#: The simulator's limit per key (requests/s), and its bucket.
LIMIT = 100.0
BURST = 20
SCALE = 0.01
#: What :func:`runhelp.exact_pricing` estimates, and the simulator charges, per row.
ROW_COST = 201.0
ALIVE = ("completed", "pending", "processing")


@pytest.fixture
def sim(tmp_path: Path) -> Any:
    config = SimConfig(
        api_keys=(SECRET_KEY,), rate=LIMIT, burst=BURST, time_scale=SCALE, credits=1e9, seed=1
    )
    with SimProcess(config, log=tmp_path / "sim.log") as proc:
        yield proc


def sharded(sim: Any, table: Path, out: Path, **kw: Any) -> ShardedRun:
    opts: dict[str, Any] = {
        "table": table,
        "out_dir": out,
        "api_key": SECRET_KEY,
        "api_url": sim.api_url,
        "agent_url": sim.agent_url,
        "agent": AGENT,
        "template": "tiktok-vo-broll",
        "shards": 4,
    }
    opts.update(kw)
    return ShardedRun(**opts)


def check_outputs(led: dict[str, Any], out: Path, table: Path) -> list[dict[str, Any]]:
    """I1–I4 on the merged outputs: one line per input row, no cell paid twice,
    charges equal to what the results report, every MP4 whole in OUT/videos/."""
    rows = pl.read_parquet(out / "results.parquet").to_dicts()
    with table.open() as fh:
        ids = [line.split(",", 1)[0] for line in fh.read().splitlines()[1:]]
    assert [r["row_id"] for r in rows] == ids  # table order, each row once
    alive: dict[tuple[Any, Any], list[Any]] = defaultdict(list)
    for gen in led["generations"]:
        if gen["status"] in ALIVE:
            alive[(gen["engine_id"], gen["cell_id"])].append(gen["id"])
    assert not {c: g for c, g in alive.items() if len(g) > 1}, "a cell was paid twice"
    keys = Counter(g["idempotency_key"] for g in led["generations"] if g["idempotency_key"])
    assert not [k for k, n in keys.items() if n > 1]
    credits = led["credits"]
    reported = sum(r["credits"] or 0.0 for r in rows)
    assert abs(credits["charged"] - credits["refunded"] - reported) < 1e-6
    for r in rows:
        if r["status"] == "completed":
            path = out / r["mp4_path"]
            assert path.parent == out / "videos"
            data = path.read_bytes()
            assert len(data) == r["bytes"]
            assert hashlib.sha256(data).hexdigest() == r["sha256"]
    for root, _, files in os.walk(out):
        for name in files:
            assert SECRET_KEY.encode() not in (Path(root) / name).read_bytes(), name
    return rows


@pytest.mark.slow
async def test_four_shards_keep_one_key_under_its_limit_and_its_credit_cap(
    sim: Any, tmp_path: Path
) -> None:
    rows_n = 400
    table = vo_table(tmp_path / "t.csv", rows_n)
    out = tmp_path / "out"
    cap = rows_n * ROW_COST
    with LedgerWatch(sim) as watch:
        result: ShardedSummary = await run_sharded(
            sharded(sim, table, out, max_credits=cap, pricing=exact_pricing(tmp_path))
        )
    summary = result.summary
    assert summary.counts["completed"] == rows_n, result.to_json()
    assert summary.exit_code == 0
    assert [s.rows for s in result.shards] == [100] * 4
    assert all(s.error is None for s in result.shards)
    # Every shard ran in its own worker, on both nodes.
    assert len({s.result["pid"] for s in result.shards if s.result}) == 4
    assert len({s.result["node"] for s in result.shards if s.result}) == 2
    # Ray's part (the key's actor up, the shards' workers loaded) is told apart.
    assert 0 < result.ray_seconds < summary.seconds
    assert result.to_json()["ray_seconds"] == round(result.ray_seconds, 3)
    led = sim.ledger()
    rows = check_outputs(led, out, table)
    # The combined rate, as the simulator saw it: never above the limit over 2 s.
    assert watch.gaps == 0, "the ledger ring turned over between reads"
    calls = watch.requests()
    assert len(calls) >= 6 * rows_n  # clone, fill, two generations, a render, polls
    peak = max_in_window([c[0] for c in calls], 2.0)
    assert peak <= 2 * LIMIT, peak
    limited = sum(1 for c in calls if c[3] == "429")
    print(f"requests {len(calls)}, peak over 2 s {peak}, 429s {limited}, {summary.seconds:.1f} s")
    assert limited <= 0.01 * len(calls), (limited, len(calls))
    # --max-credits across the shards: charged within the cap, as the results say.
    charged = led["credits"]["charged"] - led["credits"]["refunded"]
    assert charged <= cap + 1e-6
    assert abs(sum(r["credits"] for r in rows) - charged) < 1e-6
    budget = result.budgets["GEN_API_KEY"]
    assert budget["source"] == "header" and budget["final"] <= LIMIT
    assert budget["allowances"] <= cap + 1e-6


async def test_a_shard_whose_worker_is_killed_is_retried_and_resumes(
    sim: Any, tmp_path: Path
) -> None:
    rows_n = 120
    table = vo_table(tmp_path / "t.csv", rows_n)
    out = tmp_path / "out"
    marker = out / "shards" / "0" / DISTRIBUTED_WORKER_FILE
    killed: list[int] = []

    def completed(directory: Path) -> int:
        with contextlib.suppress(Exception):
            journal = Journal.open(directory, read_only=True)
            try:
                return journal.counts()["completed"]
            finally:
                journal.close()
        return 0

    async def kill_when_halfway() -> None:
        while not killed:
            await asyncio.sleep(0.1)
            if marker.is_file() and completed(marker.parent) >= 10:
                pid = json.loads(marker.read_text())["pid"]
                os.kill(pid, signal.SIGKILL)  # the shard's Ray worker, started by our cluster
                killed.append(pid)

    killer = asyncio.ensure_future(kill_when_halfway())
    try:
        result = await run_sharded(sharded(sim, table, out, shards=2))
    finally:
        killer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await killer
    assert killed, "the shard finished before it could be killed"
    summary = result.summary
    assert summary.counts["completed"] == rows_n, result.to_json()
    first = result.shards[0].result
    assert first is not None and first["pid"] != killed[0]  # Ray ran it again elsewhere
    assert first["resumed"] and first["identity"]["kept"] >= 10
    assert json.loads(marker.read_text())["pid"] == first["pid"]
    check_outputs(sim.ledger(), out, table)
    status = sharded_status(out)
    assert status is not None and status.counts["completed"] == rows_n
    assert status.live is None


@pytest.mark.slow
async def test_an_interrupted_sharded_run_stops_and_the_same_run_resumes(
    sim: Any, tmp_path: Path
) -> None:
    """^C in the driver (its task cancelled): the shards are cancelled and stop
    with their rows resumable, the run says it was interrupted (exit 130); the
    same run again finishes every row, none paid twice."""
    rows_n = 160
    table = vo_table(tmp_path / "t.csv", rows_n)
    out = tmp_path / "out"

    def completed() -> int:
        done = 0
        for k in range(2):
            with contextlib.suppress(Exception):
                journal = Journal.open(out / "shards" / str(k), read_only=True)
                try:
                    done += journal.counts()["completed"]
                finally:
                    journal.close()
        return done

    def api_calls() -> dict[str, int]:
        routes = sim.ledger()["requests"]["by_route"]  # (its own reads are /_sim/)
        return {r: n for r, n in routes.items() if " /v1/" in r or " /cdn/" in r}

    run = asyncio.ensure_future(run_sharded(sharded(sim, table, out, shards=2)))
    for _ in range(600):  # the journals are the only sign of progress: look every 0.1 s
        if completed() >= 20 or run.done():
            break
        await asyncio.sleep(0.1)
    assert not run.done(), "the run finished before it could be interrupted"
    run.cancel()
    first: ShardedSummary = await run
    assert first.summary.interrupted and first.exit_code == 130, first.to_json()
    assert first.summary.counts["completed"] < rows_n
    # Nothing runs after the driver has returned: no call reaches the simulator.
    before = api_calls()
    await asyncio.sleep(1.0)
    assert api_calls() == before

    second = await run_sharded(sharded(sim, table, out, shards=2))
    assert second.summary.counts["completed"] == rows_n, second.to_json()
    assert second.exit_code == 0
    assert sum(s.result["identity"]["kept"] for s in second.shards if s.result) >= 20
    check_outputs(sim.ledger(), out, table)


def _cli_words(address: str, *words: str) -> list[str]:
    """``genbatch run ... --ray ADDRESS``, for the real command line."""
    return ["run", *words, "--ray", address]


def test_the_cap_is_shared_exactly_through_the_command_line(
    ray_cluster: str, sim: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    from genbatch.cli import main

    rows_n, fits = 60, 25
    table = vo_table(tmp_path / "t.csv", rows_n)
    out = tmp_path / "out"
    cap = fits * ROW_COST
    monkeypatch.setenv("GEN_API_KEY", SECRET_KEY)
    words = _cli_words(
        ray_cluster,
        str(table),
        "--base-url",
        sim.api_url,
        "--agent-url",
        sim.agent_url,
        "--agent",
        AGENT,
        "--template",
        "tiktok-vo-broll",
        "--pricing",
        str(exact_pricing(tmp_path)),
        "--max-credits",
        str(cap),
        "--shards",
        "3",
        "--out",
        str(out),
        "--quiet",
    )
    assert main(words) == 1  # some rows skipped: the budget said so
    printed = capsys.readouterr().out
    assert "3 shards" in printed
    rows = check_outputs(sim.ledger(), out, table)
    statuses = Counter(r["status"] for r in rows)
    # Estimates equal charges: exactly the rows the cap pays for, whichever shard.
    assert statuses == {"completed": fits, "skipped": rows_n - fits}, statuses
    assert {r["error_code"] for r in rows if r["status"] == "skipped"} == {"max_credits"}
    led = sim.ledger()
    assert led["credits"]["charged"] - led["credits"]["refunded"] == pytest.approx(cap)
    assert len({r["shard"] for r in rows if r["status"] == "completed"}) >= 2
    status = sharded_status(out)
    assert status is not None
    assert status.counts["completed"] == fits
    assert status.counts["skipped"] == rows_n - fits
    assert "3 shards" in status.lines()[0]
