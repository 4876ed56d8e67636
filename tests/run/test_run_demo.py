"""The bundled demo table, end to end against the simulator (issue 4 acceptance)."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest
from runhelp import check_invariants, ledger, run_table, snapshot_tree

from genbatch.sim.media import read_manifest

DEMO = Path(__file__).resolve().parents[2] / "inputs" / "demo.csv"


async def test_demo_table_every_row_completed_with_its_own_video(
    sim_factory, tmp_path: Path
) -> None:
    sim = await sim_factory(api_keys=("gb-test-secret-key-7f3a9c21d5e84b60",))
    work = tmp_path / "work"
    work.mkdir()
    table = work / "demo.csv"
    table.write_bytes(DEMO.read_bytes())
    before = snapshot_tree(tmp_path)
    out = work / "out"

    summary = await run_table(sim, table, out)

    assert summary.exit_code == 0, summary.to_json()
    assert summary.counts["completed"] == summary.total == 12
    rows = check_invariants(await ledger(sim.url), out, table)
    with DEMO.open(newline="", encoding="utf-8") as fh:
        wanted = {r["row_id"]: r for r in csv.DictReader(fh)}
    for row in rows:
        assert row["status"] == "completed"
        assert row["mp4_path"] == f"videos/{row['row_id']}.mp4"
        manifest = read_manifest((out / row["mp4_path"]).read_bytes())
        assert manifest is not None
        source = wanted[row["row_id"]]
        # The video carries this row's own values, rendered from its own engine.
        assert manifest["cells"]["hook"] == source["hook"]
        if "script" in manifest["cells"]:
            assert manifest["cells"]["script"] == source["script"]
        assert manifest["template_slug"] == source["template"]
        assert str(manifest["engine_id"]) == row["engine_id"]
        assert row["credits"] > 0 and row["render_url"].endswith(".mp4")
        assert row["seconds_render"] is not None and row["seconds_total"] > 0
    # I6: the run wrote only inside its output dir.
    created = snapshot_tree(tmp_path) - before
    assert created and all(p == out or out in p.parents for p in created), created


async def test_rerun_of_a_finished_run_spends_nothing(sim_factory, tmp_path: Path) -> None:
    sim = await sim_factory(api_keys=("gb-test-secret-key-7f3a9c21d5e84b60",))
    table = tmp_path / "demo.csv"
    table.write_bytes(DEMO.read_bytes())
    out = tmp_path / "out"
    first = await run_table(sim, table, out)
    assert first.exit_code == 0
    before = await ledger(sim.url)

    again = await run_table(sim, table, out)

    after = await ledger(sim.url)
    assert again.exit_code == 0 and again.resumed
    assert after["credits"]["charged"] == before["credits"]["charged"]
    assert len(after["generations"]) == len(before["generations"])
    assert again.credits == first.credits
    check_invariants(after, out, table)


@pytest.mark.slow
def test_demo_command_prints_where_things_are(tmp_path: Path) -> None:
    out = tmp_path / "demo-out"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "genbatch",
            "demo",
            "--quiet",
            "--out",
            str(out),
            "--table",
            str(DEMO),
            "--sim-time-scale",
            "0.002",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert f"{out / 'videos'}" in proc.stdout
    assert f"{out / 'results.csv'}" in proc.stdout
    assert len(list((out / "videos").glob("*.mp4"))) == 12
    # ... and the report that shows them all.
    report = out / "report.html"
    assert f"Open {report} in a browser" in proc.stdout
    assert report.read_text(encoding="utf-8").count('class="card') >= 12
