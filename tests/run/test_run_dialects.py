"""The whole batch path against today's GEN and against the teaching document's.

The vendor moved the engine API from ``/v1/autocontentengine`` to
``/v1/vidsheet`` (docs/dialect.md §1). genbatch speaks today's prefix and,
against a server that still serves only the old one, falls back once per
session. Both runs go clone → fill → generate → render → download →
publish; the simulator's request log shows which prefix each one used.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from runhelp import SECRET_KEY, check_invariants, ledger, run_table, vo_recipe, write_csv

TODAY, LEGACY = "/v1/vidsheet/", "/v1/autocontentengine/"


def routes(led: dict[str, Any]) -> dict[str, int]:
    by_route: dict[str, int] = led["requests"]["by_route"]
    return by_route


#: tiktok-vo-broll's default recipe, publishing every row now.
RECIPE = vo_recipe(publish='[publish]\nenabled = true\ndescription = "{hook}"\n')


def table(path: Path) -> Path:
    return write_csv(
        path,
        ["row_id", "hook", "script"],
        [
            ["a", "Cold brew in sixty seconds.", "Grind, steep, strain, pour."],
            ["b", "The $2 taco at 2am.", "One truck, no regrets."],
        ],
    )


@pytest.mark.parametrize("legacy", [False, True], ids=["today", "legacy"])
async def test_batch_path_speaks_the_prefix_the_server_serves(
    sim_factory, tmp_path: Path, legacy: bool
) -> None:
    sim = await sim_factory(api_keys=(SECRET_KEY,), legacy_paths=legacy)
    rows_in = table(tmp_path / "t.csv")
    recipe = tmp_path / "publish.toml"
    recipe.write_text(RECIPE, encoding="utf-8")
    out = tmp_path / "out"

    summary = await run_table(sim, rows_in, out, recipe=recipe)

    assert summary.exit_code == 0, summary.to_json()
    led = await ledger(sim.url)
    rows = check_invariants(led, out, rows_in)
    assert all(r["status"] == "completed" and r["mp4_path"] and r["post_id"] for r in rows)
    used, refused = (LEGACY, TODAY) if legacy else (TODAY, LEGACY)
    by_route = routes(led)
    engine_calls = {k: n for k, n in by_route.items() if used in k}
    for step in ("cells/mass_update", "cells/{cell_id}/generate", "cells/{cell_id}/render"):
        assert any(step in k for k in engine_calls), (step, by_route)
    assert not [k for k in by_route if refused in k], by_route
    # The fallback costs one refused request per client session, never one per row.
    statuses = led["requests"]["by_status"]
    assert statuses.get("404", 0) == (1 if legacy else 0), statuses
    publishes = [j for j in led["user_jobs"] if j["type"] == "publish_content"]
    assert len(publishes) == 2
