"""`genbatch ideas | research | train` against the simulator, and the ideas table as a run input."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from journeyhelp import RUN_START, USER_JOBS, cli, count, target, write_csv

from genbatch.agents.ideas import DOCUMENTED_IDEA_FIELDS, IDEA_COLUMNS, read_ideas
from genbatch.agents.runs import run_message
from genbatch.agents.tables import TableData
from genbatch.agents.video_types import template_for
from genbatch.client import GenClient
from genbatch.engine.idea_status import IDEA_STATUS_ON, advance_idea
from genbatch.engine.recipe import Recipe, default_recipe_slugs
from genbatch.engine.table import InputRow, Table
from genbatch.engine.watch import HubWatcher
from genbatch.sim.serve import SimServer


async def agents(gen: GenClient, *names: str) -> list[str]:
    out = []
    for name in names:
        agent = await gen.agents.create({"name": name})
        await gen.core.update(agent.id, {"keywords": [name.lower()]})
        out.append(agent.id)
    return out


def no_nulls(value: Any) -> Any:
    """Parquet gives every struct key to every element; compare what was set."""
    if isinstance(value, dict):
        return {k: no_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [no_nulls(v) for v in value]
    return value


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


async def test_ideas_for_three_agents_every_documented_field(
    sim: SimServer, gen: GenClient, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b, c = await agents(gen, "Tacos", "Skincare", "Trails")
    out = tmp_path / "ideas.parquet"
    code = await cli(
        "ideas", "--agents", f"{a},{b}", "--agents", c,
        "--message", "Generate 2 content ideas", "--out", out, *target(sim),
    )  # fmt: skip
    assert code == 0, capsys.readouterr()
    frame = pl.read_parquet(out)
    assert frame.columns == list(IDEA_COLUMNS)
    assert frame.height == 6
    assert sorted(set(frame["agent_id"])) == sorted([a, b, c])
    schema = frame.schema
    assert isinstance(schema["selected_assets"], pl.List)
    assert isinstance(schema["selected_assets"].inner, pl.Struct)
    assert isinstance(schema["project_manifest"], pl.Struct)
    assert isinstance(schema["inspiration_sources"], pl.List)
    assert schema["video_type_id"] == pl.Int64
    csv_rows = {r["row_id"]: r for r in read_csv(tmp_path / "ideas.csv")}
    for row in frame.to_dicts():
        truth = sim.world.ideas[int(row["idea_id"])]
        assert row["row_id"] == f"idea-{row['idea_id']}"
        assert row["agent_id"] == str(truth["agent_id"])
        assert row["conversation_id"] == str(truth["conversation_id"])
        assert row["template"] == template_for(truth["video_type"], truth["video_type_id"])
        assert row["script"] == truth["full_script"] and row["idea_status"] == "generated"
        for name in DOCUMENTED_IDEA_FIELDS:
            assert truth[name] is not None, name
            assert no_nulls(row[name]) == no_nulls(truth[name]), name  # Parquet round trip
        text = csv_rows[row["row_id"]]
        for name in ("selected_assets", "project_manifest", "inspiration_sources"):
            assert json.loads(text[name]) == truth[name], name  # JSON cells, exact
        assert text["hook"] == truth["hook"]
    runs = read_csv(tmp_path / "idea_runs.csv")
    assert [r["status"] for r in runs] == ["completed"] * 3
    assert sorted(r["ideas"] for r in runs) == ["2", "2", "2"]


async def test_the_ideas_table_is_a_run_input(
    sim: SimServer, gen: GenClient, tmp_path: Path
) -> None:
    (a,) = await agents(gen, "Tacos")
    out = tmp_path / "ideas"
    when = "2099-01-01T12:00:00Z"
    code = await cli(
        "ideas", "--agents", a, "--message", "Generate 8 content ideas",
        "--publish-at", when, "--out", out, *target(sim),
    )  # fmt: skip
    assert code == 0
    for name in ("ideas.parquet", "ideas.csv"):
        table = Table.open(out / name, known_templates=default_recipe_slugs())
        assert table.row_count == 8
        rows = list(table)
        assert all(isinstance(r, InputRow) for r in rows), [str(r) for r in rows]
        for row in rows:
            assert isinstance(row, InputRow)
            assert row.idea_id and row.template and row.publish_at is not None
            assert row.variables["hook"] and row.variables["script"]
            recipe = Recipe.default(row.template)
            recipe.check_columns(table.placeholder_columns)
            plan = recipe.plan_row(row.placeholders())  # no network: what run would do
            assert plan.publish is not None and plan.publish.description.startswith(
                row.variables["hook"]
            )


async def test_a_table_gives_each_agent_its_own_message(
    sim: SimServer, gen: GenClient, tmp_path: Path
) -> None:
    a, b = await agents(gen, "One", "Two")
    requests = write_csv(
        tmp_path / "req.csv",
        [
            {"agent_id": a, "message": "Generate 1 content ideas about salsa"},
            {"agent_id": b, "message": "Generate 3 content ideas, under 15s"},
        ],
    )
    out = tmp_path / "o"
    assert await cli("ideas", "--table", requests, "--out", out, *target(sim)) == 0
    frame = pl.read_parquet(out / "ideas.parquet")
    assert frame.filter(pl.col("agent_id") == a).height == 1
    per_b = frame.filter(pl.col("agent_id") == b)
    assert per_b.height == 3 and all(d <= 15 for d in per_b["estimated_duration"])


async def test_refine_a_conversation_and_leave_out_dropped_ideas(
    sim: SimServer,
    gen: GenClient,
    waiter: HubWatcher,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (a,) = await agents(gen, "Tacos")
    first = await run_message(waiter, a, "Generate 3 content ideas")
    assert first.status == "completed" and first.conversation_id
    before, _ = await read_ideas(gen, first.conversation_id, agent_id=a, run_id=first.run_id)
    out = tmp_path / "o"
    code = await cli(
        "ideas", "--refine", "Make idea 1 hook punchier. Drop idea 2.",
        "--conversation", first.conversation_id, "--out", out, *target(sim),
    )  # fmt: skip
    assert code == 0
    assert "1 rejected idea(s) left out" in capsys.readouterr().out
    after = {r["idea_id"]: r for r in pl.read_parquet(out / "ideas.parquet").to_dicts()}
    assert set(after) == {before[0]["idea_id"], before[2]["idea_id"]}
    refined = after[before[0]["idea_id"]]
    assert refined["hook"] != before[0]["hook"] and refined["hook"].endswith("!")
    assert refined["script"].startswith(refined["hook"])
    runs = read_csv(out / "idea_runs.csv")
    assert runs[0]["kind"] == "refine" and runs[0]["agent_id"] == a
    assert runs[0]["conversation_id"] == first.conversation_id


async def test_remember_goes_first_and_shapes_the_ideas(
    sim: SimServer, gen: GenClient, tmp_path: Path
) -> None:
    (a,) = await agents(gen, "Tacos")
    out = tmp_path / "o"
    code = await cli(
        "ideas", "--agents", a, "--remember", "always use statement hooks, never questions",
        "--message", "Generate 12 content ideas", "--out", out, *target(sim),
    )  # fmt: skip
    assert code == 0
    assert sim.world.agents[int(a)].preferences == ["always use statement hooks, never questions"]
    runs = read_csv(out / "idea_runs.csv")
    assert [r["kind"] for r in runs] == ["remember", "ideas"]
    assert runs[0]["message"] == "remember: always use statement hooks, never questions"
    hooks = pl.read_parquet(out / "ideas.parquet")["hook"].to_list()
    assert len(hooks) == 12 and not any(h.endswith("?") for h in hooks)

    # preference only: one more run, no idea run
    starts = await count(sim, RUN_START)
    assert await cli(
        "ideas", "--agents", a, "--remember", "remember: target women 25-34", "--no-ideas",
        "--out", tmp_path / "p", *target(sim),
    ) == 0  # fmt: skip
    assert await count(sim, RUN_START) == starts + 1
    assert not (tmp_path / "p" / "ideas.parquet").exists()
    assert sim.world.agents[int(a)].preferences[-1] == "target women 25-34"


async def test_runs_that_ask_for_approval(
    sim: SimServer, gen: GenClient, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (a,) = await agents(gen, "Tacos")
    out = tmp_path / "o"
    ask = ["--agents", a, "--message", "publish the taco video to tiktok", *target(sim)]
    assert await cli("ideas", *ask, "--out", out) == 1
    run = read_csv(out / "idea_runs.csv")[0]
    assert run["status"] == "awaiting_approval"
    assert f"--approve-run {run['run_id']}" in run["reason"] and "publish" in run["reason"]
    assert "awaiting_approval" in capsys.readouterr().out

    code = await cli("ideas", "--approve-run", run["run_id"], "--out", out, *target(sim))
    assert code == 0
    done = read_csv(out / "idea_runs.csv")[0]
    assert (done["kind"], done["status"], done["approved"]) == ("approve", "completed", "true")
    result = sim.world.runs[int(run["run_id"])].result
    # approved and answered; the agent had no rendered video to publish, and says so
    assert result is not None and result["action"]["approved"] is True
    assert result["executed"] is False and result["reason"]
    # approving it again: it is no longer waiting
    assert await cli("ideas", "--approve-run", run["run_id"], "--out", out, *target(sim)) == 1

    assert await cli("ideas", *ask, "--approve", "--out", out) == 0
    auto = read_csv(out / "idea_runs.csv")[0]
    assert (auto["status"], auto["approved"]) == ("completed", "true")


async def test_research_topics_and_depth(sim: SimServer, gen: GenClient, tmp_path: Path) -> None:
    a, b = await agents(gen, "Lumen", "Trail")
    out = tmp_path / "r"
    code = await cli(
        "research", "--agents", f"{a},{b}", "--topic", "tariffs on beauty imports 2026",
        "--topic", "sunscreen filters", "--depth", "quick", "--out", out, *target(sim),
    )  # fmt: skip
    assert code == 0
    frame = pl.read_parquet(out / "research.parquet")
    assert frame.height == 4 and set(frame["status"]) == {"completed"}
    assert isinstance(frame.schema["findings"], pl.List)
    row = frame.filter(pl.col("agent_id") == a).to_dicts()[0]
    assert row["depth"] == "quick" and len(row["findings"]) == 3  # quick: 3 findings
    assert row["topic"] in row["summary"] or "tariffs" in row["summary"]
    text = read_csv(out / "research.csv")[0]
    assert len(json.loads(text["findings"])) == 3


async def test_train_social_from_a_table_of_sources(
    sim: SimServer, gen: GenClient, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (a,) = await agents(gen, "Tacos")
    sources = write_csv(
        tmp_path / "sources.csv",
        [
            {"agent_id": a, "platform": "tiktok", "type": "hashtag", "value": "streetfood",
             "days": "7", "max_results": "50", "monitoring": "false"},
            {"agent_id": a, "platform": "instagram", "type": "keyword", "value": "tacos"},
            {"agent_id": a, "platform": "youtube", "type": "username", "value": "x",
             "days": "soon"},
            {"agent_id": a, "platform": "tiktok", "type": "hashtag", "value": "streetfood",
             "days": "7", "max_results": "50", "monitoring": "false"},
            {"agent_id": "", "platform": "youtube", "type": "keyword", "value": "food trucks",
             "monitoring": "yes"},
        ],
    )  # fmt: skip
    out = tmp_path / "t"
    assert await cli("train", sources, "--agent", a, "--out", out, *target(sim)) == 1
    rows = read_csv(out / "train_results.csv")
    # the monitoring row's job stays active (first scrape in), as a monitoring job does
    assert [r["status"] for r in rows] == ["completed", "failed", "failed", "failed", "monitoring"]
    assert "instagram does not support type 'keyword'" in rows[1]["reason"]
    assert rows[2]["reason"].startswith("days:")
    assert rows[3]["reason"] == "duplicate of row 1 (same agent and source)"
    assert rows[4]["agent_id"] == a and rows[4]["monitoring"] == "true"
    # only the two valid rows were sent
    assert await count(sim, USER_JOBS) == 2
    job = sim.world.user_jobs[int(rows[0]["user_job_id"])]
    assert job.user_job_type == "train_social" and job.parsed["max_results"] == 50
    bad = write_csv(tmp_path / "bad.csv", [{"agent_id": a, "platform": "tiktok", "max_result": 5}])
    assert await cli("train", bad, "--out", out, *target(sim)) == 2
    assert "'max_result'" in capsys.readouterr().err


async def test_idea_status_moves_with_the_row(
    sim: SimServer, gen: GenClient, waiter: HubWatcher
) -> None:
    (a,) = await agents(gen, "Tacos")
    run = await run_message(waiter, a, "Generate 1 content ideas")
    assert run.conversation_id
    (idea,), _ = await read_ideas(gen, run.conversation_id, agent_id=a, run_id=run.run_id)
    iid = idea["idea_id"]
    seen = []
    status = "generated"
    for event in ("started", "rendered", "publishing", "posted"):
        status = await advance_idea(gen, iid, IDEA_STATUS_ON[event], current=status)
        seen.append(sim.world.ideas[int(iid)]["status"])
    assert seen == ["approve_to_create", "ready_for_review", "approved_to_post", "posted"]
    # a resumed row re-announcing an earlier event does not move the idea back
    puts = await count(sim, "PUT /v1/agent/ideas/{id:\\d+}/status/{status}")
    assert await advance_idea(gen, iid, "approve_to_create", current=status) == "posted"
    assert await count(sim, "PUT /v1/agent/ideas/{id:\\d+}/status/{status}") == puts
    assert sim.world.ideas[int(iid)]["status"] == "posted"


def test_values_parquet_cannot_hold_exactly_become_json_text(tmp_path: Path) -> None:
    records = [
        {"n": 1, "mixed": {"x": 1}, "empty": {}, "ok": [{"a": 1}]},
        {"n": 2, "mixed": {"x": "one"}, "empty": {}, "ok": [{"a": 2.5, "b": "y"}]},
    ]
    table = TableData.from_records(records, ("n", "mixed", "empty", "ok"))
    assert table.frame.schema["mixed"] == pl.String  # would have coerced 1 to "1"
    assert table.frame.schema["empty"] == pl.String  # Parquet cannot hold an empty struct
    assert isinstance(table.frame.schema["ok"], pl.List)
    parquet, csv_path = table.write(tmp_path, "t")
    back = pl.read_parquet(parquet).to_dicts()
    assert [json.loads(r["mixed"]) for r in back] == [{"x": 1}, {"x": "one"}]
    assert back[1]["ok"] == [{"a": 2.5, "b": "y"}] and back[0]["ok"] == [{"a": 1.0, "b": None}]
    assert json.loads(read_csv(csv_path)[1]["ok"]) == [{"a": 2.5, "b": "y"}]


async def test_agents_results_feed_ideas_and_failed_rows_are_skipped(
    sim: SimServer, gen: GenClient, tmp_path: Path
) -> None:
    (a,) = await agents(gen, "Tacos")
    results = write_csv(
        tmp_path / "agents_results.csv",
        [
            {"row": 1, "agent_id": a, "action": "unchanged", "status": "completed"},
            {"row": 2, "agent_id": "", "action": "invalid", "status": "failed"},
        ],
    )
    out = tmp_path / "o"
    code = await cli("ideas", "--table", results, "--message", "Generate 1 content ideas",
                     "--out", out, *target(sim))  # fmt: skip
    assert code == 0
    assert pl.read_parquet(out / "ideas.parquet")["agent_id"].to_list() == [a]


async def test_in_process_sim_and_output_guards(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "o"
    code = await cli("ideas", "--sim", "--sim-time-scale", "0.002", "--message",
                     "Generate 2 content ideas", "--out", out, "--json")  # fmt: skip
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ideas"] == 2 and report["runs"][0]["status"] == "completed"
    # a symlink planted where a table goes: refused, exit 2, nothing written through it
    target_file = tmp_path / "elsewhere.parquet"
    (out / "ideas.parquet").unlink()
    (out / "ideas.parquet").symlink_to(target_file)
    code = await cli("ideas", "--sim", "--sim-time-scale", "0.002", "--out", out)
    assert code == 2 and "symlink" in capsys.readouterr().err
    assert not target_file.exists()
    # flags that cannot work
    assert await cli("ideas", "--refine", "punchier", "--sim") == 2
    assert "--refine needs --conversation" in capsys.readouterr().err
    assert await cli("ideas", "--sim", "--template-map", "hologram=x", "--out", out) == 2
    assert await cli("ideas", "--sim", "--publish-at", "2020-01-01T00:00:00Z") == 2
    assert "in the past" in capsys.readouterr().err
