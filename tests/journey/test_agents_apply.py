"""`genbatch agents apply` against the simulator: local rules, read-compare-write, 207."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from journeyhelp import AGENT_CREATE, CORE_PATCH, cli, count, target, write_csv

from genbatch._constants import SIM_DEMO_AGENT_ID
from genbatch.agents.agents_table import parse_agent_row
from genbatch.agents.apply import KEYWORD_MIRROR_NOTE
from genbatch.client import GenClient
from genbatch.sim.serve import SimServer

REPO = Path(__file__).resolve().parents[2]


async def new_agent(gen: GenClient, name: str) -> str:
    return (await gen.agents.create({"name": name})).id


def core(sim: SimServer, agent_id: str | int) -> dict[str, Any]:
    return dict(sim.world.agents[int(agent_id)].core)


def results(out: Path, stem: str = "agents_results") -> list[dict[str, Any]]:
    return pl.read_parquet(out / f"{stem}.parquet").to_dicts()


async def test_unknown_column_refuses_the_table_before_any_request(
    sim: SimServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    table = write_csv(
        tmp_path / "a.csv",
        [{"agent_id": SIM_DEMO_AGENT_ID, "brand_name": "X", "tone_of_voice": "warm"}],
    )
    code = await cli("agents", "apply", table, "--out", tmp_path / "o", *target(sim))
    err = capsys.readouterr().err
    assert code == 2
    assert "'tone_of_voice'" in err and "unknown fields" in err and "Traceback" not in err
    assert (await count(sim, "GET /v1/agents/{agent_id}/core")) == 0
    assert (await count(sim, CORE_PATCH)) == 0


async def test_description_and_personality_limits_fail_only_their_rows(
    sim: SimServer, gen: GenClient, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b, c = [await new_agent(gen, n) for n in ("A", "B", "C")]
    table = write_csv(
        tmp_path / "a.csv",
        [
            {"agent_id": a, "description": "d" * 501},
            {"agent_id": b, "personality": "p" * 20_001},
            # exactly at the limits: fine
            {"agent_id": c, "description": "d" * 500, "personality": "p" * 20_000},
        ],
    )
    out = tmp_path / "o"
    code = await cli("agents", "apply", table, "--out", out, *target(sim))
    text = capsys.readouterr().out
    assert code == 1
    rows = {r["row"]: r for r in results(out)}
    assert rows[1]["action"] == "invalid" and "description: 501 characters" in rows[1]["reason"]
    assert "the limit is 500" in rows[1]["reason"] and "personality" in rows[1]["reason"]
    assert rows[2]["action"] == "invalid" and "the limit is 20,000" in rows[2]["reason"]
    assert rows[3]["action"] == "updated" and rows[3]["status"] == "completed"
    assert "row 1: agent" in text and "invalid" in text
    # only the valid row reached the API
    assert (await count(sim, CORE_PATCH)) == 1
    assert core(sim, a)["description"] == "" and core(sim, c)["description"] == "d" * 500


def test_row_rules_are_checked_locally() -> None:
    bad = parse_agent_row(
        1,
        {
            "agent_id": "7",
            "shortform": "maybe",
            "keywords": '["a", ',
            "monitored": json.dumps([{"handle": "x", "item_type": "creator"}]),
            "linked_accounts": json.dumps([{"url": "u", "platform": "tiktok", "extra": 1}]),
        },
    )
    joined = " | ".join(bad.problems)
    assert "shortform: 'maybe' is not true or false" in joined
    assert "keywords: is not valid JSON" in joined
    assert "monitored.0.item_type" in joined  # the reference's item types only
    assert "linked_accounts.0.extra" in joined  # unknown fields inside objects too
    ok = parse_agent_row(
        2,
        {
            "agent_id": 8.0,  # a Parquet float id
            "shortform": "Yes",
            "keywords": "#tacos, streetfood ,",
            "research_topics": '["new trucks", {"topic": "salsa"}]',
            "default_user_voice": "21m00Tcm4TlvDq8ikWAM",
            "brand_name": "  Santiago  ",
            "goal": None,
        },
    )
    assert ok.problems == () and ok.agent_id == "8"
    assert ok.fields == {
        "brand_name": "Santiago",
        "shortform": True,
        "keywords": ["#tacos", "streetfood"],
        "research_topics": [{"topic": "new trucks"}, {"topic": "salsa"}],
        "default_user_voice": {"voice_id": "21m00Tcm4TlvDq8ikWAM"},
    }
    # creating needs a name
    assert "brand_name" in parse_agent_row(3, {"description": "x"}).problems[0]


async def test_rerun_sends_no_patch_and_create_reuses_agents_by_name(
    sim: SimServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    table = REPO / "inputs" / "agents.csv"
    out = tmp_path / "o"
    assert await cli("agents", "apply", table, "--create", "--out", out, *target(sim)) == 0
    first = results(out)
    assert [r["action"] for r in first] == ["created"] * 3
    assert (await count(sim, AGENT_CREATE), await count(sim, CORE_PATCH)) == (3, 3)
    santiago = core(sim, first[0]["agent_id"])
    assert santiago["brand_name"] == "Santiago Tacos"
    assert santiago["linked_accounts"] == [
        {"url": "https://tiktok.com/@santiago_sa", "platform": "tiktok"}
    ]
    capsys.readouterr()

    assert await cli("agents", "apply", table, "--create", "--out", out, *target(sim)) == 0
    again = results(out)
    assert [r["action"] for r in again] == ["unchanged"] * 3
    assert [r["agent_id"] for r in again] == [r["agent_id"] for r in first]
    # the ledger: no new agent, no PATCH on the rerun
    assert (await count(sim, AGENT_CREATE), await count(sim, CORE_PATCH)) == (3, 3)
    assert "3 agents: unchanged 3" in capsys.readouterr().out


async def test_dry_run_prints_the_diff_and_sends_nothing(
    sim: SimServer, gen: GenClient, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    agent = await new_agent(gen, "Lumen")
    rows = [
        {"agent_id": agent, "description": "Plain-words skincare.", "target_platforms": ["tiktok"]}
    ]
    table = write_csv(tmp_path / "a.csv", rows)
    out = tmp_path / "o"
    # The real results of an earlier apply (another agent): the next step's input.
    other = await new_agent(gen, "Other")
    real = write_csv(tmp_path / "r.csv", [{"agent_id": other, "description": "Other words."}])
    assert await cli("agents", "apply", real, "--out", out, *target(sim)) == 0
    capsys.readouterr()
    kept = (out / "agents_results.csv").read_bytes()
    code = await cli("agents", "apply", table, "--dry-run", "--out", out, *target(sim))
    text = capsys.readouterr().out
    assert code == 0
    assert 'description: "" -> "Plain-words skincare."' in text
    assert 'target_platforms: [] -> ["tiktok"]' in text and "nothing was sent" in text
    assert "agents_plan.csv" in text
    assert results(out, "agents_plan")[0]["action"] == "would_update"
    assert results(out, "agents_plan")[0]["status"] == "planned"
    # A dry run writes nothing a later step reads: agents_results is as it was.
    assert (out / "agents_results.csv").read_bytes() == kept
    assert await count(sim, CORE_PATCH) == 1  # the other agent's, before
    assert core(sim, agent)["description"] == ""
    # dry-run create: no POST either (the two so far made `agent` and `other` above)
    new = write_csv(tmp_path / "n.csv", [{"brand_name": "Brand New"}])
    assert (
        await cli("agents", "apply", new, "--create", "--dry-run", "--out", out, *target(sim)) == 0
    )
    assert results(out, "agents_plan")[0]["action"] == "would_create"
    assert await count(sim, AGENT_CREATE) == 2

    assert await cli("agents", "apply", table, "--out", out, *target(sim)) == 0
    assert await count(sim, CORE_PATCH) == 2
    assert core(sim, agent)["description"] == "Plain-words skincare."


async def test_keywords_without_monitored_are_mirrored_and_explained(
    sim: SimServer, gen: GenClient, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    agent = await new_agent(gen, "Taco")
    table = write_csv(tmp_path / "a.csv", [{"agent_id": agent, "keywords": ["#tacotok", "salsa"]}])
    out = tmp_path / "o"
    assert await cli("agents", "apply", table, "--out", out, *target(sim)) == 0
    assert KEYWORD_MIRROR_NOTE in capsys.readouterr().out
    assert KEYWORD_MIRROR_NOTE in results(out)[0]["notes"]
    assert core(sim, agent)["monitored"] == [
        {"handle": "tacotok", "item_type": "keyword"},
        {"handle": "salsa", "item_type": "keyword"},
    ]
    # rerun: "#tacotok" is the stored "tacotok" — nothing to send
    assert await cli("agents", "apply", table, "--out", out, *target(sim)) == 0
    assert results(out)[0]["action"] == "unchanged"
    assert await count(sim, CORE_PATCH) == 1


async def test_keywords_with_monitored_send_monitored_along(
    sim: SimServer, gen: GenClient, tmp_path: Path
) -> None:
    agent = await new_agent(gen, "Trail")
    monitored = [{"handle": "hiking", "item_type": "hashtag"}]
    await gen.core.update(agent, {"monitored": monitored, "keywords": ["old"]})
    assert core(sim, agent)["monitored"] == monitored
    table = write_csv(
        tmp_path / "a.csv", [{"agent_id": agent, "keywords": ["gear"], "monitored": monitored}]
    )
    out = tmp_path / "o"
    assert await cli("agents", "apply", table, "--out", out, *target(sim)) == 0
    row = results(out)[0]
    assert row["changed_fields"] == "keywords" and row["sent_fields"] == "keywords,monitored"
    assert row["notes"] is None
    # without monitored in the PATCH, GEN would have mirrored "gear" into it
    assert core(sim, agent)["monitored"] == monitored
    assert core(sim, agent)["keywords"] == ["gear"]


async def test_multi_status_is_reported_per_failed_section(
    sim: SimServer, gen: GenClient, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    agent = await new_agent(gen, "Partial")
    rows = [
        {
            "agent_id": agent,
            "description": "Applied fine.",
            "target_platforms": ["tiktok", "myspace"],
            "default_user_voice": {"voice_id": "v_not_in_library"},
        }
    ]
    out = tmp_path / "o"
    code = await cli(
        "agents", "apply", write_csv(tmp_path / "a.csv", rows), "--out", out, *target(sim)
    )
    text = capsys.readouterr().out
    assert code == 1
    row = results(out)[0]
    assert row["action"] == "partial" and row["status"] == "failed"
    assert row["error_code"] == "multi_status"
    failed = json.loads(row["failed_sections"])
    assert set(failed) == {"target_platforms", "default_user_voice"}
    assert "myspace" in failed["target_platforms"]
    assert "applied: description" in row["reason"]
    assert "FAILED default_user_voice" in text
    assert core(sim, agent)["description"] == "Applied fine."
    assert core(sim, agent)["target_platforms"] == []


async def test_parquet_lists_and_structs(sim: SimServer, gen: GenClient, tmp_path: Path) -> None:
    agent = await new_agent(gen, "Parquet")
    frame = pl.DataFrame(
        {
            "agent_id": [int(agent)],
            "shortform": [False],
            "keywords": [["streetfood", "foodtruck"]],
            "monitored": [
                [
                    {"handle": "https://tiktok.com/@keithlee", "item_type": "account"},
                    {"handle": "sanantonioeats", "item_type": "hashtag"},
                ]
            ],
            "default_user_voice": [{"voice_id": "21m00Tcm4TlvDq8ikWAM", "source": "public"}],
        }
    )
    table = tmp_path / "a.parquet"
    frame.write_parquet(table)
    out = tmp_path / "o"
    assert await cli("agents", "apply", table, "--out", out, *target(sim)) == 0
    got = core(sim, agent)
    assert got["shortform"] is False and got["keywords"] == ["streetfood", "foodtruck"]
    assert got["monitored"][1] == {"handle": "sanantonioeats", "item_type": "hashtag"}
    assert await cli("agents", "apply", table, "--out", out, *target(sim)) == 0
    assert results(out)[0]["action"] == "unchanged" and await count(sim, CORE_PATCH) == 1


async def test_row_without_agent_id_needs_create(
    sim: SimServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    table = write_csv(tmp_path / "a.csv", [{"brand_name": "Nobody"}])
    out = tmp_path / "o"
    assert await cli("agents", "apply", table, "--out", out, *target(sim)) == 1
    assert "pass --create" in results(out)[0]["reason"]
    assert await count(sim, AGENT_CREATE) == 0


async def test_a_refused_key_is_exit_2_without_traceback(
    sim: SimServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("GEN_API_KEY", "not-a-key-at-all")
    table = write_csv(tmp_path / "a.csv", [{"agent_id": SIM_DEMO_AGENT_ID, "goal": "growth"}])
    assert await cli("agents", "apply", table, "--out", tmp_path / "o", *target(sim)) == 2
    err = capsys.readouterr().err
    assert "401" in err and "Traceback" not in err and "not-a-key-at-all" not in err
    monkeypatch.delenv("GEN_API_KEY")
    assert await cli("agents", "apply", table, "--out", tmp_path / "o", *target(sim)) == 2
    assert "no API key" in capsys.readouterr().err


async def test_max_concurrency_is_the_option_name_here_too(
    sim: SimServer, gen: GenClient, tmp_path: Path
) -> None:
    # One name across commands (run, bench and agents): --concurrency stays an alias.
    agent = await new_agent(gen, "Named")
    table = write_csv(tmp_path / "a.csv", [{"agent_id": agent, "description": "D."}])
    for flag in ("--max-concurrency", "--concurrency"):
        args = ("agents", "apply", table, "--dry-run", flag, "2", "--out", tmp_path / "o")
        assert await cli(*args, *target(sim)) == 0
