"""The command line: exit codes, the one-line refusals, plan/status/templates, 401 mid-run."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from runhelp import (
    AGENT,
    SECRET_KEY,
    check_invariants,
    ledger,
    results,
    run_table,
    vo_table,
    write_csv,
)

from genbatch.cli import main
from genbatch.engine.journal import Journal
from genbatch.engine.plan import StartError


def test_no_key_and_no_sim_says_how_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("GEN_API_KEY", raising=False)
    table = vo_table(tmp_path / "t.csv", 1)
    code = main(["run", str(table), "--template", "tiktok-vo-broll", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1
    assert "GEN_API_KEY" in err and "--sim" in err
    assert not (tmp_path / "o").exists()


def test_sim_time_scale_is_refused_without_sim(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # A time scale would be a fact about the server that only a rehearsal knows:
    # against any --base-url genbatch learns latencies itself.
    monkeypatch.setenv("GEN_API_KEY", SECRET_KEY)
    table = vo_table(tmp_path / "t.csv", 1)
    args = ["run", str(table), "--template", "tiktok-vo-broll", "--out", str(tmp_path / "o")]
    code = main([*args, "--base-url", "http://127.0.0.1:9/v1", "--sim-time-scale", "0.01"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert "--sim-time-scale" in err and "--sim" in err
    assert SECRET_KEY not in err
    assert not (tmp_path / "o").exists()


def test_sim_flag_runs_with_limit_and_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("GEN_API_KEY", raising=False)
    table = vo_table(tmp_path / "t.csv", 4)
    out = tmp_path / "o"
    code = main(
        [
            "run",
            str(table),
            "--template",
            "tiktok-vo-broll",
            "--sim",
            "--sim-time-scale",
            "0.002",
            "--out",
            str(out),
            "--limit",
            "2",
            "--json",
        ]
    )
    summary = json.loads(capsys.readouterr().out)
    assert code == 0  # every attempted row completed; two were left out by --limit
    assert summary["counts"] == {"completed": 2, "failed": 0, "skipped": 2, "pending": 0}
    rows = results(out)
    assert [r["status"] for r in rows] == ["completed", "completed", "skipped", "skipped"]
    assert rows[3]["reason"] == "not attempted (--limit 2)"
    # which template and recipe made each video
    assert (rows[0]["template"], rows[0]["recipe"]) == ("tiktok-vo-broll", "default")

    assert main(["status", str(out), "--json"]) == 1
    status = json.loads(capsys.readouterr().out)
    assert status["counts"]["completed"] == 2 and status["counts"]["skipped"] == 2
    assert status["credits"] == summary["credits"] > 0


def test_plan_estimates_without_spending(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    table = write_csv(
        tmp_path / "t.csv",
        ["row_id", "template", "hook", "script"],
        [
            ["a", "tiktok-vo-broll", "h", "s"],
            ["b", "tiktok-text-driven", "h", "s"],
            ["c", "tiktok-vo-broll", "h", ""],
        ],
    )
    code = main(["plan", str(table), "--agent", "1000", "--rate", "2", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 1  # one invalid row
    assert report["valid"] == 2 and report["invalid"][0]["row_id"] == "c"
    # Published typical costs (pricing.toml): vo-broll = voiceover 15 + 5 s of
    # veo_3_fast at 30/s + render 50; text-driven = Gemini image 5 + render 50.
    assert report["credits"] == (15 + 150 + 50) + (5 + 50)
    # clone + fill + 2 per generation/render: 1+1+6 and 1+1+4.
    assert report["requests"] == 14
    assert report["lower_bound_seconds"] == 7.0


def test_plan_refuses_a_bad_table_with_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    table = write_csv(tmp_path / "t.csv", ["hook"], [["h"]])
    assert main(["plan", str(table), "--template", "tiktok-vo-broll"]) == 2
    err = capsys.readouterr().err
    assert "row_id" in err and len(err.strip().splitlines()) == 1


def test_status_of_a_dir_without_a_journal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["status", str(tmp_path)]) == 2
    assert "no journal" in capsys.readouterr().err


def test_templates_lists_the_starters_with_their_recipes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["templates", "--sim", "--json"]) == 0
    found = {t["slug"]: t for t in json.loads(capsys.readouterr().out)}
    assert len(found) == 7
    assert all(t["default_recipe"] for t in found.values())
    assert "narrated_vo" in found["tiktok-vo-broll"]["tags"]
    assert found["tiktok-vo-broll"]["columns"] == ["hook", "script"]


@pytest.mark.slow  # a CLI subprocess
def test_templates_piped_shows_whole_slugs_and_their_columns() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "genbatch", "templates", "--sim"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "tiktok-talking-avatar" in {line.split()[0] for line in lines if line[:1] != " "}
    assert "…" not in done.stdout
    assert "    columns: row_id, hook, script" in lines
    assert all(len(line) <= 80 for line in lines)


async def test_refused_key_at_start_is_exit_2(sim_factory, tmp_path: Path) -> None:
    sim = await sim_factory(api_keys=(SECRET_KEY,))
    table = vo_table(tmp_path / "t.csv", 2)
    with pytest.raises(StartError, match="401"):
        await run_table(
            sim,
            table,
            tmp_path / "o",
            template="tiktok-vo-broll",
            api_key="gb-wrong-key-0000000000",
        )
    assert (await ledger(sim.url))["generations"] == []
    # run.log says why the run never started (and never the key)
    log = (tmp_path / "o" / "run.log").read_text()
    events = [json.loads(line)["event"] for line in log.splitlines()]
    assert events[:2] == ["start", "refused"] and "401" in log
    assert "gb-wrong-key-0000000000" not in log


async def test_key_revoked_mid_run_aborts_with_rows_pending_then_resumes(
    sim_factory, tmp_path: Path
) -> None:
    sim = await sim_factory(api_keys=(SECRET_KEY,))
    table = vo_table(tmp_path / "t.csv", 8)
    out = tmp_path / "o"

    async def revoke(row_id: str, what: str) -> None:
        if what == "generate:broll:intent":
            sim.world.keys.pop(SECRET_KEY, None)

    summary = await run_table(
        sim, table, out, template="tiktok-vo-broll", milestone=revoke, max_concurrency=4
    )
    assert summary.exit_code == 2 and summary.aborted and "401" in summary.aborted
    rows = results(out)
    assert {r["status"] for r in rows} <= {"pending", "completed"}
    assert any(r["status"] == "pending" for r in rows)
    assert all("rerun" in r["reason"] for r in rows if r["status"] == "pending")

    sim.world.keys[SECRET_KEY] = 1
    again = await run_table(sim, table, out, template="tiktok-vo-broll")
    assert again.exit_code == 0, again.to_json()
    check_invariants(await ledger(sim.url), out, table)


@pytest.mark.slow  # waits on the wall clock or a subprocess
def test_a_closed_pipe_ends_status_quietly(tmp_path: Path) -> None:
    # 2,000 rows left out by --limit 0: status lists each, far more than a pipe holds.
    table = vo_table(tmp_path / "t.csv", 2000)
    out = tmp_path / "o"
    run = [sys.executable, "-m", "genbatch", "run", str(table), "--template", "tiktok-vo-broll"]
    done = subprocess.run(
        [*run, "--sim", "--sim-time-scale", "0.002", "--out", str(out), "--limit", "0", "--quiet"],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    # `genbatch status OUT --json | head -c 10`: the reader leaves after 10 bytes.
    status = subprocess.Popen(
        [sys.executable, "-m", "genbatch", "status", str(out), "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert status.stdout is not None and status.stderr is not None
    assert status.stdout.read(10)
    status.stdout.close()
    err = status.stderr.read()
    status.wait(timeout=60)
    assert b"Traceback" not in err and b"BrokenPipe" not in err, err
    assert status.returncode == 141  # the pipe did break (128 + SIGPIPE), and quietly


def test_an_out_dir_holding_someone_elses_results_is_refused_untouched(tmp_path: Path) -> None:
    # `--out unrelated/`, where unrelated/ holds the user's own results.csv and
    # videos/a1.mp4: refused before anything is written, both left as they were.
    table = vo_table(tmp_path / "t.csv", 1)
    out = tmp_path / "unrelated"
    (out / "videos").mkdir(parents=True)
    mine = {out / "results.csv": b"row_id,verdict\na1,mine\n", out / "videos" / "a1.mp4": b"\0\1"}
    for path, data in mine.items():
        path.write_bytes(data)
    run = [sys.executable, "-m", "genbatch", "run", str(table), "--template", "tiktok-vo-broll"]
    done = subprocess.run(
        [*run, "--sim", "--sim-time-scale", "0.002", "--out", str(out), "--quiet"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "results.csv" in done.stderr and "videos/" in done.stderr and "--out" in done.stderr
    assert "Traceback" not in done.stderr
    assert {p: p.read_bytes() for p in mine} == mine
    assert sorted(p.name for p in out.iterdir()) == ["results.csv", "videos"]


def test_status_tells_a_live_run_from_an_interrupted_one(tmp_path: Path) -> None:
    out = tmp_path / "o"
    status = [sys.executable, "-m", "genbatch", "status", str(out)]

    def ask(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*status, *extra], capture_output=True, text=True, timeout=60, check=False
        )

    journal = Journal.open(out)  # this process holds the run's lock, as a live run does
    journal.add_rows(["a", "b"])
    journal.start_row("a")
    journal.flush()
    live = json.loads(ask("--json").stdout)
    assert live["state"] == "live" and live["pid"] == os.getpid()
    assert [r["status"] for r in live["rows"]] == ["running"]
    journal.close()  # the process is gone: its lock with it

    after = json.loads(ask("--json").stdout)
    assert after["state"] == "interrupted" and after["pid"] is None
    assert [(r["row_id"], r["status"]) for r in after["rows"]] == [("a", "interrupted")]
    text = ask().stdout
    assert "interrupted" in text and "rerun" in text and "live" not in text


@pytest.mark.slow  # a simulator process and a CLI subprocess
def test_a_wrong_agent_stops_the_run_before_any_paid_call(tmp_path: Path) -> None:
    from genbatch.sim.config import SimConfig
    from genbatch.sim.launch import SimProcess

    table = vo_table(tmp_path / "t.csv", 3)
    out = tmp_path / "o"
    spec = SimConfig(time_scale=0.002, rate=500.0, burst=500, api_keys=(SECRET_KEY,), seed=5)
    with SimProcess(spec, log=tmp_path / "sim.log") as sim:
        done = subprocess.run(
            [
                *(sys.executable, "-m", "genbatch", "run", str(table)),
                *("--template", "tiktok-vo-broll", "--agent", "999999", "--out", str(out)),
                *("--base-url", sim.api_url, "--agent-url", sim.agent_url, "--quiet"),
            ],
            env={**os.environ, "GEN_API_KEY": SECRET_KEY},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        book = sim.ledger()
    assert done.returncode == 2, done.stderr
    assert "999999" in done.stderr and "--agent" in done.stderr
    assert "Traceback" not in done.stderr and SECRET_KEY not in done.stderr
    routes = book["requests"]["by_route"]
    assert not [r for r in routes if r.startswith("POST")], routes  # nothing cloned or bought
    assert book["generations"] == []


@pytest.mark.slow  # three CLI subprocesses
def test_two_tables_with_one_name_never_share_a_run(tmp_path: Path) -> None:
    # week1/ideas.csv, then week2/ideas.csv (row a1 with a new hook), default --out.
    def table(folder: str, hook: str) -> Path:
        return write_csv(
            tmp_path / folder / "ideas.csv", ["row_id", "hook", "script"], [["a1", hook, "S."]]
        )

    first, second = table("week1", "Old hook"), table("week2", "New hook")

    def run(t: Path, *extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                *(sys.executable, "-m", "genbatch", "run", str(t), "--template"),
                *("tiktok-vo-broll", "--sim", "--sim-time-scale", "0.002", "--quiet", *extra),
            ],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    assert run(first).returncode == 0
    assert run(second).returncode == 0  # its own output dir, not week1's resumed
    outs = sorted(p.name for p in (tmp_path / "outputs").iterdir())
    assert len(outs) == 2 and outs[0] == "ideas" and outs[1].startswith("ideas-"), outs
    for name, t in zip(outs, (first, second), strict=True):
        rows = results(tmp_path / "outputs" / name)
        assert [(r["row_id"], r["status"]) for r in rows] == [("a1", "completed")]
        with Journal.open(tmp_path / "outputs" / name, read_only=True) as j:
            assert j.meta["table"] == str(t.resolve())
    # Told to resume week1's dir with week2's table: refused, nothing mixed.
    mixed = run(second, "--out", str(tmp_path / "outputs" / "ideas"))
    assert mixed.returncode == 2
    assert "holds the run of" in mixed.stderr and "--out" in mixed.stderr


@pytest.mark.slow  # four CLI subprocesses
def test_a_changed_row_or_template_is_redone_and_the_old_video_kept(tmp_path: Path) -> None:
    table = tmp_path / "t.csv"
    out = tmp_path / "o"

    def write(hook_a1: str) -> None:
        write_csv(table, ["row_id", "hook", "script"], [["a1", hook_a1, "S."], ["a2", "Two", "S."]])

    def run(template: str) -> dict[str, Any]:
        done = subprocess.run(
            [
                *(sys.executable, "-m", "genbatch", "run", str(table), "--template", template),
                *("--sim", "--sim-time-scale", "0.002", "--out", str(out), "--json"),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        summary: dict[str, Any] = json.loads(done.stdout)
        return summary

    def shas() -> dict[str, str]:
        return {r["row_id"]: r["sha256"] for r in results(out)}

    write("Old hook")
    assert run("tiktok-vo-broll")["identity"] == {"kept": 0, "redone": 0, "resumed": 0, "new": 2}
    first = shas()
    assert run("tiktok-vo-broll")["identity"]["kept"] == 2  # unchanged: nothing redone

    write("New hook")  # a1 changed
    again = run("tiktok-vo-broll")
    assert again["identity"] == {"kept": 1, "redone": 1, "resumed": 0, "new": 0}
    second = shas()
    assert second["a2"] == first["a2"] and second["a1"] != first["a1"]
    videos = out / "videos"
    kept = videos / "a1.v1.mp4"  # the earlier video, under a versioned name
    assert hashlib.sha256(kept.read_bytes()).hexdigest() == first["a1"]
    assert hashlib.sha256((videos / "a1.mp4").read_bytes()).hexdigest() == second["a1"]

    # Another template for the same table: every row's recipe changed.
    other = run("tiktok-text-driven")
    assert other["identity"]["redone"] == 2 and other["identity"]["kept"] == 0
    assert sorted(p.name for p in videos.glob("*.mp4")) == [
        "a1.mp4",
        "a1.v1.mp4",
        "a1.v2.mp4",
        "a2.mp4",
        "a2.v1.mp4",
    ]


@pytest.mark.slow  # two CLI subprocesses
def test_fresh_never_overwrites_an_earlier_runs_video(tmp_path: Path) -> None:
    table = vo_table(tmp_path / "t.csv", 1)
    out = tmp_path / "o"
    cmd = [
        *(sys.executable, "-m", "genbatch", "run", str(table), "--template", "tiktok-vo-broll"),
        *("--sim", "--sim-time-scale", "0.002", "--out", str(out), "--quiet"),
    ]
    assert subprocess.run(cmd, capture_output=True, timeout=120, check=False).returncode == 0
    video = out / "videos" / "r00.mp4"
    earlier = video.read_bytes()
    again = subprocess.run([*cmd, "--fresh"], capture_output=True, timeout=120, check=False)
    assert again.returncode == 0, again.stderr
    assert (out / "videos" / "r00.v1.mp4").read_bytes() == earlier  # kept, renamed
    row = results(out)[0]
    assert hashlib.sha256(video.read_bytes()).hexdigest() == row["sha256"]  # the new one


def test_the_hint_after_a_run_names_the_fix_per_reason() -> None:
    from genbatch.cli.run import hints

    assert hints({"max_credits": 3, "http_503": 1, "invalid_row": 1, "agent_not_found": 2}) == [
        "3 rows: raise --max-credits, then rerun",
        "1 row: fix those rows or the recipe (a rerun alone will not change them)",
        "2 rows: check the agent or template the reason names, then rerun",
        "1 row: rerun the same command to retry them",
    ]


def test_a_budget_too_small_says_raise_max_credits_not_rerun(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("GEN_API_KEY", raising=False)
    table = vo_table(tmp_path / "t.csv", 2)
    code = main(
        [
            *("run", str(table), "--template", "tiktok-vo-broll", "--sim"),
            *("--sim-time-scale", "0.002", "--out", str(tmp_path / "o"), "--max-credits", "1"),
        ]
    )
    text = capsys.readouterr().out
    assert code == 1
    assert "2 rows: raise --max-credits, then rerun" in text
    assert "retry" not in text


async def test_an_unknown_agent_in_the_agent_id_column_stops_the_run_first(
    sim_factory: Any, tmp_path: Path
) -> None:
    sim = await sim_factory(api_keys=(SECRET_KEY,))
    rows = [["a1", AGENT, "Hook", "S."], ["a2", "424242", "Hook", "S."]]
    table = write_csv(tmp_path / "t.csv", ["row_id", "agent_id", "hook", "script"], rows)
    with pytest.raises(StartError, match=r"agent 424242 .*agent_id column"):
        await run_table(sim, table, tmp_path / "o", template="tiktok-vo-broll", agent=None)
    book = await ledger(sim.url)
    assert not [r for r in book["requests"]["by_route"] if r.startswith("POST")]
    assert book["generations"] == []


def test_plan_needs_no_agent_it_sends_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    table = vo_table(tmp_path / "t.csv", 3)  # no agent_id column, no --agent
    assert main(["plan", str(table), "--template", "tiktok-vo-broll", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["valid"] == 3 and report["invalid"] == [] and report["credits"] > 0


def test_an_unknown_option_shows_the_commands_own_usage(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for argv, usage in (
        (["plan", "t.csv", "--bogus"], "usage: genbatch plan"),
        (["agents", "apply", "a.csv", "--bogus"], "usage: genbatch agents apply"),
    ):
        with pytest.raises(SystemExit) as stop:
            main(argv)
        err = capsys.readouterr().err
        assert stop.value.code == 2
        assert err.startswith(usage) and "unrecognized arguments: --bogus" in err


def test_counts_and_durations_read_as_a_person_reads_them() -> None:
    from genbatch.cli.text import count, duration

    assert [count(1, "row"), count(0, "row"), count(160000, "row")] == [
        "1 row",
        "0 rows",
        "160,000 rows",
    ]
    assert [duration(45), duration(720), duration(160000), duration(7200)] == [
        "45 s",
        "12 min",
        "44 h 27 min",
        "2 h",
    ]


def test_plan_prints_one_row_and_big_numbers_readably(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    table = vo_table(tmp_path / "t.csv", 1)
    assert main(["plan", str(table), "--template", "tiktok-vo-broll"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("1 row: 1 valid, 0 invalid")
    assert "e+" not in text and "at least" in text


def test_every_command_says_what_it_does_and_where_the_key_comes_from() -> None:
    import argparse

    from genbatch.cli import build_parser

    seen: dict[str, argparse.ArgumentParser] = {}

    def walk(parser: argparse.ArgumentParser, name: str) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub, child in action.choices.items():
                    seen[f"{name} {sub}"] = child
                    walk(child, f"{name} {sub}")

    walk(build_parser(), "genbatch")
    assert len(seen) >= 12
    assert [n for n, p in seen.items() if not p.description] == []
    for name in ("genbatch run", "genbatch templates", "genbatch agents apply"):
        assert "GEN_API_KEY" in seen[name].format_help(), name
