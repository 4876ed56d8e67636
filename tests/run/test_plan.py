"""`genbatch plan`: credits by each card's model and duration, time from rate and
latency, and `--check` reading the key, agents, templates and balance."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from runhelp import SECRET_KEY, ledger, run_table, vo_table

from genbatch.cli import main
from genbatch.engine.plan import StartError


def _recipe(tmp_path: Path, model: str, seconds: int) -> Path:
    """tiktok-vo-broll's default recipe with its b-roll card's model and duration."""
    text = (resources.files("genbatch") / "recipes" / "tiktok-vo-broll.toml").read_text()
    assert 'model = "veo_3_fast"' in text and "duration = 5" in text
    path = tmp_path / f"{model}-{seconds}.toml"
    path.write_text(
        text.replace('model = "veo_3_fast"', f'model = "{model}"').replace(
            "duration = 5", f"duration = {seconds}"
        )
    )
    return path


def _plan(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, object]]:
    code = main(["plan", *argv, "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_credits_follow_each_cards_model_and_duration(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    table = vo_table(tmp_path / "t.csv", 2)
    _, slow = _plan(capsys, str(table), "--recipe", str(_recipe(tmp_path, "veo_3", 8)))
    _, fast = _plan(capsys, str(table), "--recipe", str(_recipe(tmp_path, "veo_3_fast", 5)))
    # pricing.toml: veo_3 60/s, veo_3_fast 30/s; voiceover 15 and render 50 per row.
    assert slow["credits"] == 2 * (15 + 60 * 8 + 50)
    assert fast["credits"] == 2 * (15 + 30 * 5 + 50)


def test_time_adds_the_last_rows_own_jobs_to_the_rate_bound(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    table = vo_table(tmp_path / "t.csv", 40)
    _, report = _plan(capsys, str(table), "--template", "tiktok-vo-broll", "--rate", "10")
    # vo-broll: voiceover, then b-roll (needs nothing of it? one wave each way),
    # then a render: at least a video's and a render's typical latencies.
    assert report["lower_bound_seconds"] == report["requests"] / 10  # type: ignore[operator]
    assert report["row_seconds"] >= 90 + 40  # type: ignore[operator]
    assert report["estimate_seconds"] == pytest.approx(
        report["lower_bound_seconds"] + report["row_seconds"],  # type: ignore[operator]
        abs=0.2,
    )
    # With --sim the jobs run at the simulator's speed (x0.01 by default).
    _, sim = _plan(capsys, str(table), "--template", "tiktok-vo-broll", "--sim")
    assert sim["row_seconds"] == pytest.approx(report["row_seconds"] * 0.01, abs=0.1)  # type: ignore[operator]


def test_plan_sends_nothing_without_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    table = vo_table(tmp_path / "t.csv", 3)
    code = main(["plan", str(table), "--template", "tiktok-vo-broll"])
    out = capsys.readouterr().out
    assert code == 0 and "nothing was sent" in out
    assert all(len(line) <= 80 for line in out.splitlines())


def test_check_reads_the_key_agent_template_and_balance(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    table = vo_table(tmp_path / "t.csv", 3)
    code, report = _plan(capsys, str(table), "--template", "tiktok-vo-broll", "--sim", "--check")
    assert code == 0
    checked = report["checked"]
    assert isinstance(checked, dict)
    assert checked["templates"] == ["tiktok-vo-broll"] and len(checked["agents"]) == 1
    assert checked["errors"] == [] and all(b > 0 for b in checked["balances"].values())


def test_check_stops_a_wrong_agent_with_the_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    table = vo_table(tmp_path / "t.csv", 3)
    code = main(
        ["plan", str(table), "--template", "tiktok-vo-broll", "--sim", "--check", "--agent", "999"]
    )
    err = capsys.readouterr().err
    assert code == 2
    # One line says what is wrong and the fix (--sim may first say where its world is).
    said = [line for line in err.splitlines() if "agent 999" in line]
    assert len(said) == 1 and said[0].startswith("genbatch: agent 999") and "--agent" in said[0]


def test_check_that_cannot_reach_the_api_is_not_a_pass(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GEN_API_KEY", "gen-test-key")
    table = vo_table(tmp_path / "t.csv", 1)
    code = main(
        [
            "plan",
            str(table),
            "--template",
            "tiktok-vo-broll",
            "--agent",
            "1",
            "--check",
            "--base-url",
            "http://127.0.0.1:9",  # discard: nothing listens
        ]
    )
    out = capsys.readouterr().out
    assert code == 2 and "could not check" in out
    assert "gen-test-key" not in out


async def test_a_run_on_an_empty_workspace_stops_before_any_paid_call(
    sim_factory: Any, tmp_path: Path
) -> None:
    sim = await sim_factory(api_keys=(SECRET_KEY,), credits=0)
    table = vo_table(tmp_path / "t.csv", 3)
    with pytest.raises(StartError, match=r"no credits left \(balance 0\): top it up"):
        await run_table(sim, table, tmp_path / "o", template="tiktok-vo-broll")
    book = await ledger(sim.url)
    assert not [r for r in book["requests"]["by_route"] if r.startswith("POST")]
