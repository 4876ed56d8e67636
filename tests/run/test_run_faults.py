"""Faults on: every row still ends with exactly one terminal status, nothing paid twice."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from runhelp import VO_ROW_COST, check_invariants, ledger, run_table, sim_config, vo_table

from genbatch.client.base import AttemptInfo
from genbatch.client.routes import Route

FAULTS = "500:0.04,503:0.04,reset:0.04,reset_after:0.05,gen_fail:0.15,truncate:0.3,429:0.03@1"


@pytest.mark.slow
async def test_faults_every_row_terminal_nothing_paid_twice(sim_factory, tmp_path: Path) -> None:
    sim = await sim_factory(
        api_keys=("gb-test-secret-key-7f3a9c21d5e84b60",), faults=FAULTS, seed=7
    )
    table = vo_table(tmp_path / "t.csv", 16)
    out = tmp_path / "out"
    events: list[tuple[float, str, Any]] = []

    def observe(kind: str, route: Route, info: AttemptInfo | None) -> None:
        events.append((time.monotonic(), kind, info))

    summary = await run_table(sim, table, out, template="tiktok-vo-broll", observer=observe)

    led = await ledger(sim.url)
    rows = check_invariants(led, out, table)
    assert summary.exit_code in (0, 1)
    # The faults really happened, and most rows still made it.
    statuses = led["requests"]["by_status"]
    assert statuses.get("reset", 0) > 0 and statuses.get("500", 0) + statuses.get("503", 0) > 0
    assert any(g["status"] == "failed" for g in led["generations"])
    assert sum(r["status"] == "completed" for r in rows) >= 12
    for r in rows:
        if r["status"] != "completed":
            assert r["reason"] and r["error_code"], r
    # No request left before a Retry-After we were given had passed.
    limited = [(t, info.retry_after) for t, k, info in events if k == "done" and info.status == 429]
    assert limited, "the 429 storm never hit"
    sends = [t for t, k, _ in events if k == "send"]
    for t429, wait in limited:
        assert wait is not None and wait >= 1
        early = [t for t in sends if t429 < t < t429 + wait - 0.01]
        assert not early, f"{len(early)} request(s) sent within Retry-After {wait}s of a 429"


async def test_generation_failures_retry_as_new_intents_then_fail_the_row(
    sim_factory, tmp_path: Path
) -> None:
    sim = await sim_factory(
        api_keys=("gb-test-secret-key-7f3a9c21d5e84b60",), faults="gen_fail:1.0", seed=3
    )
    table = vo_table(tmp_path / "t.csv", 2)
    out = tmp_path / "out"
    summary = await run_table(sim, table, out, template="tiktok-vo-broll")
    assert summary.exit_code == 1
    led = await ledger(sim.url)
    rows = check_invariants(led, out, table)
    for r in rows:
        assert r["status"] == "failed" and r["error_code"] == "generation_failed"
        assert "3 attempt" in r["reason"] and r["credits"] == 0
    # Three tries per generation step, each its own key; every one refunded.
    per_cell: dict[Any, set[str]] = {}
    for g in led["generations"]:
        per_cell.setdefault(g["cell_id"], set()).add(g["idempotency_key"])
    assert per_cell and all(len(keys) == 3 for keys in per_cell.values())
    assert led["credits"]["charged"] == led["credits"]["refunded"]

    # The provider recovers; rerunning gives the failed steps new attempts.
    await sim_config(sim.url, faults="")
    again = await run_table(sim, table, out, template="tiktok-vo-broll")
    assert again.exit_code == 0, again.to_json()
    led = await ledger(sim.url)
    rows = check_invariants(led, out, table)
    assert all(r["status"] == "completed" and r["credits"] == VO_ROW_COST for r in rows)
    first_cells = set(per_cell)
    for g in led["generations"]:
        if g["cell_id"] in first_cells:
            per_cell[g["cell_id"]].add(g["idempotency_key"])
    assert all(len(keys) == 4 for keys in per_cell.values())
