"""Running out of credits: in-flight work finishes, the rest is skipped, a top-up finishes it."""

from __future__ import annotations

from pathlib import Path

from runhelp import VO_ROW_COST, check_invariants, ledger, results, run_table, sim_config, vo_table

#: tiktok-vo-broll: what the simulator charges a row (runhelp.VO_ROW_COST).
ROW_COST = VO_ROW_COST


async def test_exhaustion_mid_run_skips_the_rest_and_a_top_up_finishes_them(
    sim_factory, tmp_path: Path
) -> None:
    sim = await sim_factory(api_keys=("gb-test-secret-key-7f3a9c21d5e84b60",))
    table = vo_table(tmp_path / "t.csv", 10)
    out = tmp_path / "out"
    drained = False

    async def drain(row_id: str, what: str) -> None:
        # The moment the third render is about to be paid for, the workspace
        # runs dry behind our back (another app spent it): the server's 422
        # insufficient_credits_for_job is the only signal.
        nonlocal drained
        if what == "render:intent" and not drained:
            renders = [g for g in sim.world.generations.values() if g.generation_type == "render"]
            if len(renders) >= 2:
                drained = True
                await sim_config(sim.url, balance=3)

    first = await run_table(sim, table, out, template="tiktok-vo-broll", milestone=drain)

    assert drained
    assert first.exit_code == 1
    rows = check_invariants(await ledger(sim.url), out, table)
    done = [r for r in rows if r["status"] == "completed"]
    skipped = [r for r in rows if r["status"] == "skipped"]
    assert done and skipped and len(done) + len(skipped) == 10
    for r in skipped:
        assert r["reason"] == "insufficient credits", r
        assert r["mp4_path"] is None
    # At least one row met the server's own refusal (not just our ledger's).
    assert "insufficient_credits_for_job" in {r["error_code"] for r in skipped}
    # Skipped rows were charged only for generations that completed in flight.
    led = await ledger(sim.url)
    assert any(e["kind"] == "charge" for e in led["credits"]["events"])

    await sim_config(sim.url, balance=10_000)
    second = await run_table(sim, table, out, template="tiktok-vo-broll")

    assert second.exit_code == 0, second.to_json()
    rows = check_invariants(await ledger(sim.url), out, table)
    assert all(r["status"] == "completed" for r in rows)
    assert sum(r["credits"] for r in rows) == ROW_COST * 10


async def test_known_balance_skips_rows_it_cannot_cover_before_paying(
    sim_factory, tmp_path: Path
) -> None:
    # Two rows' estimates (2 x 215) fit, a third does not.
    sim = await sim_factory(api_keys=("gb-test-secret-key-7f3a9c21d5e84b60",), credits=500.0)
    table = vo_table(tmp_path / "t.csv", 6)
    out = tmp_path / "out"
    summary = await run_table(sim, table, out, template="tiktok-vo-broll")
    assert summary.exit_code == 1
    rows = check_invariants(await ledger(sim.url), out, table)
    assert {r["status"] for r in rows} == {"completed", "skipped"}
    led = await ledger(sim.url)
    assert led["credits"]["charged"] - led["credits"]["refunded"] <= 500.0
    assert all("insufficient credits" in r["reason"] for r in rows if r["status"] == "skipped")


async def test_max_credits_budget_is_never_exceeded(sim_factory, tmp_path: Path) -> None:
    sim = await sim_factory(api_keys=("gb-test-secret-key-7f3a9c21d5e84b60",))
    table = vo_table(tmp_path / "t.csv", 6)
    out = tmp_path / "out"
    summary = await run_table(sim, table, out, template="tiktok-vo-broll", max_credits=500.0)
    assert summary.exit_code == 1
    rows = check_invariants(await ledger(sim.url), out, table)
    assert sum(r["credits"] for r in rows) <= 500.0
    assert [r for r in rows if r["status"] == "skipped"]
    assert [r for r in rows if r["status"] == "completed"]
    assert all("max-credits" in r["reason"] for r in results(out) if r["status"] == "skipped")
