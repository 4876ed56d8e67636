"""Row admission: a row starts only if the budget can finish it (docs/design.md §5).

Spreading credits over more rows than the budget covers buys half-made
videos: a balance for two rows spread over five used to start all five and
finish none.  Each row now holds its whole remaining estimate before its first paid
step; the rows that do not fit end ``skipped`` without a paid call.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from runhelp import (
    SECRET_KEY,
    VO_ROW_COST,
    VO_ROW_ESTIMATE,
    check_invariants,
    exact_pricing,
    ledger,
    run_table,
    sim_config,
    vo_table,
)

from genbatch.cli import main

#: tiktok-vo-broll: what the simulator charges a row (estimated exactly, see exact_pricing).
ROW_COST = VO_ROW_COST
RENDER = 50.0
TEMPLATE = "tiktok-vo-broll"


def paid_engines(led: dict[str, object]) -> set[str]:
    """Engines the simulator generated anything for (charged, refunded or not)."""
    gens = led["generations"]
    assert isinstance(gens, list)
    return {str(g["engine_id"]) for g in gens}


async def test_balance_for_two_rows_finishes_two_and_skips_three_unpaid(
    sim_factory, tmp_path: Path
) -> None:
    sim = await sim_factory(api_keys=(SECRET_KEY,), credits=500.0)
    table = vo_table(tmp_path / "t.csv", 5)
    out = tmp_path / "out"
    pricing = exact_pricing(tmp_path)

    first = await run_table(sim, table, out, template=TEMPLATE, pricing=pricing)

    assert first.exit_code == 1
    assert first.counts == {"completed": 2, "failed": 0, "skipped": 3, "pending": 0}
    led = await ledger(sim.url)
    rows = check_invariants(led, out, table)  # I3: reported == charged - refunded
    done = [r for r in rows if r["status"] == "completed"]
    skipped = [r for r in rows if r["status"] == "skipped"]
    assert sum(r["credits"] for r in done) == 2 * ROW_COST == first.credits
    for r in skipped:
        assert r["reason"] == "insufficient credits: needs 201, 98 left", r
        assert r["error_code"] == "insufficient_credits_for_job"
        assert not r["credits"] and r["engine_id"] is None and r["mp4_path"] is None
    # The simulator charged for the two finished rows' engines only.
    assert paid_engines(led) == {r["engine_id"] for r in done}
    assert led["credits"]["charged"] - led["credits"]["refunded"] == 2 * ROW_COST

    await sim_config(sim.url, balance=10_000)
    second = await run_table(sim, table, out, template=TEMPLATE, pricing=pricing)

    assert second.exit_code == 0, second.to_json()
    led = await ledger(sim.url)
    rows = check_invariants(led, out, table)
    assert all(r["status"] == "completed" for r in rows)
    assert sum(r["credits"] for r in rows) == 5 * ROW_COST
    assert len(led["generations"]) == 5 * 3  # nothing bought twice


async def test_max_credits_admits_only_what_it_can_finish(sim_factory, tmp_path: Path) -> None:
    sim = await sim_factory(api_keys=(SECRET_KEY,))
    table = vo_table(tmp_path / "t.csv", 5)
    out = tmp_path / "out"

    pricing = exact_pricing(tmp_path)

    first = await run_table(sim, table, out, template=TEMPLATE, max_credits=470.0, pricing=pricing)

    assert first.exit_code == 1
    assert first.counts == {"completed": 2, "failed": 0, "skipped": 3, "pending": 0}
    led = await ledger(sim.url)
    rows = check_invariants(led, out, table)
    skipped = [r for r in rows if r["status"] == "skipped"]
    for r in skipped:
        assert r["reason"] == "insufficient credits: needs 201, 68 left of --max-credits 470", r
        assert r["error_code"] == "max_credits" and r["engine_id"] is None
    done_engines = {r["engine_id"] for r in rows if r["status"] == "completed"}
    assert paid_engines(led) == done_engines

    # Earlier runs' spending counts against --max-credits: 2 + 3 rows fit in 5 rows' cost.
    second = await run_table(
        sim, table, out, template=TEMPLATE, max_credits=5 * ROW_COST, pricing=pricing
    )

    assert second.exit_code == 0, second.to_json()
    rows = check_invariants(await ledger(sim.url), out, table)
    assert sum(r["credits"] for r in rows) == 5 * ROW_COST


async def test_resume_holds_only_what_is_left_to_pay(sim_factory, tmp_path: Path) -> None:
    """A row whose generations were paid before it stopped needs just its render."""
    sim = await sim_factory(api_keys=(SECRET_KEY,))
    table = vo_table(tmp_path / "t.csv", 1)
    out = tmp_path / "out"

    async def drain(row_id: str, what: str) -> None:
        if what == "render:intent":  # the workspace runs dry behind our back
            await sim_config(sim.url, balance=0)

    pricing = exact_pricing(tmp_path)
    first = await run_table(sim, table, out, template=TEMPLATE, milestone=drain, pricing=pricing)
    assert first.counts["skipped"] == 1 and first.credits == ROW_COST - RENDER

    await sim_config(sim.url, balance=RENDER)  # exactly the render
    second = await run_table(sim, table, out, template=TEMPLATE, pricing=pricing)

    assert second.exit_code == 0, second.to_json()
    led = await ledger(sim.url)
    rows = check_invariants(led, out, table)
    assert rows[0]["status"] == "completed" and rows[0]["credits"] == ROW_COST
    renders = [g for g in led["generations"] if g["type"] == "render"]
    assert len(renders) == 1


def test_plan_is_unchanged_by_admission(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    table = vo_table(tmp_path / "t.csv", 5)
    code = main(["plan", str(table), "--template", TEMPLATE, "--agent", "1000", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0
    assert report["valid"] == 5 and report["invalid"] == []
    # Every row's whole estimate, nothing held back: plan spends and admits nothing.
    assert report["credits"] == 5 * VO_ROW_ESTIMATE
    assert report["requests"] == 5 * 8  # clone + fill + 2 x (2 generations + render)
