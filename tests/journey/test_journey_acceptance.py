"""Issue 6 acceptance: agents.csv → agents apply → ideas → ideas.parquet → run with publish.

The whole journey through the real CLI against one simulator: three brand
agents created from the example table, two ideas each, every idea rendered
and published (scheduled, from the ``publish_at`` column ``ideas`` adds).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from journeyhelp import cli, target

from genbatch.sim.serve import SimServer

REPO = Path(__file__).resolve().parents[2]


async def journey(sim: SimServer, tmp: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    agents_out = tmp / "agents"
    code = await cli(
        "agents", "apply", REPO / "inputs" / "agents.csv", "--create", "--out", agents_out,
        *target(sim),
    )  # fmt: skip
    assert code == 0
    # Scheduled a few seconds ahead: a post goes out at its real time (the simulator
    # holds it on the wall clock, as GEN does), and the run waits for its post id.
    when = (datetime.now(UTC) + timedelta(seconds=12)).strftime("%Y-%m-%dT%H:%M:%SZ")
    ideas = tmp / "ideas" / "ideas.parquet"
    code = await cli(
        "ideas", "--table", agents_out / "agents_results.csv",
        "--message", "Generate 2 content ideas grounded in this week trends",
        "--publish-at", when, "--out", ideas, *target(sim),
    )  # fmt: skip
    assert code == 0
    run_out = tmp / "run"
    code = await cli("run", ideas, "--out", run_out, "--quiet", *target(sim))
    results = pl.read_parquet(run_out / "results.parquet").to_dicts()
    assert code == 0, [(r["row_id"], r["status"], r["reason"]) for r in results]
    return results, pl.read_parquet(ideas).to_dicts()


@pytest.mark.slow
async def test_agents_to_published_posts(sim: SimServer, tmp_path: Path) -> None:
    results, ideas = await journey(sim, tmp_path)
    assert len(ideas) == 6 and len({i["agent_id"] for i in ideas}) == 3
    assert sorted(r["row_id"] for r in results) == sorted(i["row_id"] for i in ideas)
    assert all(r["status"] == "completed" for r in results)
    assert all(r["post_id"] for r in results)
    # every post id is one the simulator's publish jobs handed out, one per idea
    jobs = [j for j in sim.world.user_jobs.values() if j.user_job_type == "publish_content"]
    assert sorted(str(j.post_id) for j in jobs) == sorted(str(r["post_id"]) for r in results)
    by_agent = {str(j.agent_id) for j in jobs}
    assert by_agent == {i["agent_id"] for i in ideas}
    assert all(j.parsed["schedule_type"] == "scheduled" for j in jobs)


@pytest.mark.slow
async def test_ideas_end_posted(sim: SimServer, tmp_path: Path) -> None:
    _, ideas = await journey(sim, tmp_path)
    statuses = {sim.world.ideas[int(i["idea_id"])]["status"] for i in ideas}
    assert statuses == {"posted"}
