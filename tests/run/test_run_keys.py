"""A table that names a key per row runs only sharded; `status` reads a sharded layout."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from runhelp import SECRET_KEY, ledger, run_table, vo_table, write_csv

from genbatch.cli import main
from genbatch.engine.plan import StartError


async def test_a_plain_run_refuses_a_key_per_row_before_any_call(
    sim_factory: Any, tmp_path: Path
) -> None:
    sim = await sim_factory(api_keys=(SECRET_KEY,))
    rows = [["a1", "Hook", "S.", "ACME_KEY"], ["a2", "Hook", "S.", ""]]
    table = write_csv(tmp_path / "t.csv", ["row_id", "hook", "script", "api_key_env"], rows)
    with pytest.raises(StartError, match=r"api_key_env column\): run it with --ray"):
        await run_table(sim, table, tmp_path / "o", template="tiktok-vo-broll")
    book = await ledger(sim.url)
    assert not [r for r in book["requests"]["by_route"] if r.startswith("POST")]


async def test_status_reads_a_sharded_runs_journals(
    sim_factory: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sim = await sim_factory(api_keys=(SECRET_KEY,))
    out = tmp_path / "out"
    # Two shards' journals where `genbatch run --ray` keeps them.
    for k, n in ((0, 3), (1, 2)):
        table = vo_table(tmp_path / f"s{k}.csv", n, prefix=f"s{k}-")
        await run_table(sim, table, out / "shards" / str(k), template="tiktok-vo-broll")
    assert main(["status", str(out), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)

    def nonzero(counts: dict[str, int]) -> dict[str, int]:
        return {k: v for k, v in counts.items() if v}

    assert data["sharded"] is True and nonzero(data["counts"]) == {"completed": 5}
    assert [nonzero(s["counts"]) for s in data["shards"]] == [{"completed": 3}, {"completed": 2}]
    assert main(["status", str(out)]) == 0
    text = capsys.readouterr().out
    assert "sharded run, 2 shards" in text and "5 rows: 5 completed" in text
    # Past the first line (which names the dir) every line fits 80 columns.
    assert all(len(line) <= 80 for line in text.splitlines()[1:])
