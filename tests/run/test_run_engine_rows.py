"""Rows naming an existing engine: each row works on its own copy; the original is untouched."""

from __future__ import annotations

from pathlib import Path

from runhelp import SECRET_KEY, check_invariants, ledger, results, run_table, write_csv

from genbatch._constants import SIM_DEMO_AGENT_ID
from genbatch.client import GenClient
from genbatch.sim.media import read_manifest


async def test_engine_id_rows_clone_the_engine_and_leave_it_alone(
    sim_factory, tmp_path: Path
) -> None:
    sim = await sim_factory(api_keys=(SECRET_KEY,))
    async with GenClient(SECRET_KEY, api_url=sim.api_url, agent_url=sim.agent_url) as gen:
        source = await gen.templates.clone("tiktok-vo-broll", SIM_DEMO_AGENT_ID)
    table = write_csv(
        tmp_path / "t.csv",
        ["row_id", "engine_id", "hook", "script"],
        [["e1", source.id, "From my engine", "Script one."], ["e2", source.id, "Again", "Two."]],
    )
    out = tmp_path / "out"

    summary = await run_table(sim, table, out, template="tiktok-vo-broll")

    assert summary.exit_code == 0, summary.to_json()
    led = await ledger(sim.url)
    rows = check_invariants(led, out, table)
    engines = {r["engine_id"] for r in rows}
    assert len(engines) == 2 and source.id not in engines
    assert not [g for g in led["generations"] if str(g["engine_id"]) == source.id]
    for r in rows:
        manifest = read_manifest((out / r["mp4_path"]).read_bytes())
        assert manifest is not None and str(manifest["engine_id"]) == r["engine_id"]


async def test_engine_id_rows_without_a_recipe_fail_with_a_reason(
    sim_factory, tmp_path: Path
) -> None:
    sim = await sim_factory(api_keys=(SECRET_KEY,))
    table = write_csv(
        tmp_path / "t.csv",
        ["row_id", "template", "engine_id", "hook", "script"],
        [["t", "tiktok-vo-broll", "", "Hook", "S"], ["e", "", "50001", "Hook", "S"]],
    )
    out = tmp_path / "out"
    summary = await run_table(sim, table, out)
    rows = {r["row_id"]: r for r in results(out)}
    assert summary.exit_code == 1
    assert rows["t"]["status"] == "completed"
    assert rows["e"]["status"] == "failed" and "--recipe" in rows["e"]["reason"]
