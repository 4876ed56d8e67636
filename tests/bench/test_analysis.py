"""`genbatch bench --from` on a synthetic journal: our time split from GEN's, by hand.

A journal written with the Journal API (and a fake clock) plus a run.log, no
simulator (:mod:`benchhelp`): every figure of the split is computed here by
hand and compared.  The same work written the old way (no ``sent_at``/``done_*``,
or a journal file from before those columns) gives "n/a".
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from benchhelp import T0, by_step, completion, ledger_for, p, write_run

from genbatch.bench.analysis import (
    ENGINE_BENCH_DETECT_TARGET,
    ENGINE_BENCH_LEDGER_FILE,
    GAP_BRACKET,
    GAP_NO_DONE,
    GAP_NO_SENT_AT,
    analyze,
    rate_line,
    split_step,
)
from genbatch.cli import bench as bench_cli
from genbatch.engine.journal import ENGINE_JOURNAL_FILE, Journal, StepRecord
from genbatch.engine.limits import ENGINE_RATE_DEFAULT
from genbatch.engine.progress import ENGINE_RUN_LOG


@pytest.fixture
def timed(tmp_path: Path) -> Path:
    out = tmp_path / "timed"
    write_run(out, timings=True, rate={"final": 42.5, "source": "discovered", "ceiling": 200.0})
    return out


@pytest.fixture
def old(tmp_path: Path) -> Path:
    out = tmp_path / "old"
    write_run(out, timings=False, rate=None)
    return out


def test_split_of_one_step_by_hand() -> None:
    base = StepRecord(
        row_id="r",
        step="render",
        attempt=1,
        idempotency_key="k",
        status="completed",
        remote_id="1",
        started_at=100.0,
        intent_at=101.0,
        remote_at=103.0,
        finished_at=120.0,
        credits=0.0,
        error_code=None,
        result=None,
        sent_at=102.5,
        done_after=110.0,
        done_by=116.0,
    )
    s = split_step(base)
    assert s.gate == 1.5 and s.basis == "bracket" and s.bracket == 6.0
    assert s.completion == 113.0 and s.gen == 10.5 and s.detect == 7.0
    assert s.share == pytest.approx(7.0 / 10.5)

    exact = split_step(replace(base, done_at=111.0))
    assert (exact.basis, exact.completion, exact.bracket) == ("exact", 111.0, None)
    assert (exact.gen, exact.detect) == (8.5, 9.0)
    poll = split_step(replace(base, done_after=None))
    assert (poll.basis, poll.completion, poll.detect) == ("poll", 116.0, 4.0)
    none = split_step(replace(base, sent_at=None, done_after=None, done_by=None))
    assert none == type(none)(None, None, None, None, None, None)
    assert none.share is None


def test_split_figures_come_out_as_computed_by_hand(timed: Path) -> None:
    a = analyze(timed, ledger={})
    assert set(a.split) == {"generate:voiceover", "generate:broll", "render"}
    every: dict[str, list[float]] = {"gate": [], "gen": [], "detect": [], "share": []}
    for step, jobs in by_step().items():
        gate = [j.sent - j.intent for j in jobs]
        gen = [completion(j) - j.sent for j in jobs]
        detect = [j.finished - completion(j) for j in jobs]
        share = [d / g for d, g in zip(detect, gen, strict=True)]
        for k, v in zip(every, (gate, gen, detect, share), strict=True):
            every[k] += v
        got = a.split[step].to_json()
        assert got["source"] == "journal" and got["jobs"] == len(jobs)
        assert got["gate_s"] == {"p50": p(gate, 0.5), "p90": p(gate, 0.9)}, step
        assert got["gen_s"] == {"p50": p(gen, 0.5), "p90": p(gen, 0.9)}, step
        assert got["detect_s"] == {"p50": p(detect, 0.5), "p90": p(detect, 0.9)}, step
        assert got["detect_share_p50"] == p(share, 0.5), step
        brackets = [
            j.done_by - j.done_after
            for j in jobs
            if j.done_at is None and j.done_after is not None and j.done_by is not None
        ]
        assert got["bracket_s"] == (
            {"p50": p(brackets, 0.5), "p90": p(brackets, 0.9)} if brackets else None
        )
        assert got["vs_ledger"] is None
    # voiceover r1 by hand: gate 0.5, completion 10.5, GEN 9.0, detection 1.5 (± 0.5).
    vo = a.split["generate:voiceover"]
    assert vo.gate[0] == 0.5 and vo.gen[0] == 9.0 and vo.detect[0] == 1.5
    assert a.split["generate:broll"].basis == {"exact": 1, "bracket": 1}
    assert a.split["render"].basis == {"poll": 1}
    whole = a.split_json()
    assert whole["all"]["jobs"] == 5
    assert whole["all"]["detect_share_p50"] == p(every["share"], 0.5)
    assert whole["all"]["basis"] == {"exact": 1, "bracket": 3, "poll": 1}
    assert whole["target_share"] == ENGINE_BENCH_DETECT_TARGET
    assert whole["target_met"] is (p(every["share"], 0.5) <= ENGINE_BENCH_DETECT_TARGET)
    # Detection's share of the wait on GEN, from the same estimates.
    assert a.detect_share == pytest.approx(
        sum(every["detect"]) / (sum(every["detect"]) + sum(every["gen"]))
    )
    assert a.detection is None  # the ledger's exact view stays ledger-only
    assert GAP_NO_SENT_AT not in a.gaps and GAP_NO_DONE not in a.gaps
    assert GAP_BRACKET in a.gaps  # three jobs bracketed, one seen by its poll only
    text = a.render()
    assert "our time vs GEN's" in text and "estimated from the journal" in text
    assert "target <= 10%" in text
    assert "rate: untold (discovered 42.5/s; ceiling 200/s)" in text
    assert json.dumps(a.to_json())  # JSON all the way down


def test_an_old_journal_says_n_a(old: Path) -> None:
    a = analyze(old, ledger={})
    assert set(a.split) == {"generate:voiceover", "generate:broll", "render"}
    for t in [*a.split.values(), a.split_all]:
        got = t.to_json()
        assert got["source"] is None
        assert got["gate_s"] is got["gen_s"] is got["detect_s"] is got["bracket_s"] is None
        assert got["detect_share_p50"] is None and got["basis"] == {}
    assert a.split_json()["target_met"] is None
    assert a.detect_share is None
    assert GAP_NO_SENT_AT in a.gaps and GAP_NO_DONE in a.gaps and GAP_BRACKET not in a.gaps
    text = a.render()
    assert "n/a" in text and "target <= 10% n/a" in text
    # The rest of the analysis is as before: the wait on GEN is still measured.
    assert a.steps["generate:broll"].gen and a.rows["completed"] == 2
    assert "rate: untold (discovered rate not reported)" in text


def test_with_a_ledger_it_is_exact_and_checks_the_journal(timed: Path) -> None:
    shift = 0.125
    a = analyze(timed, ledger=ledger_for(shift))
    for step, jobs in by_step().items():
        got = a.split[step].to_json()
        assert got["source"] == "ledger"
        gen = [completion(j) - shift - (j.sent + 0.25) for j in jobs]
        detect = [j.finished - (completion(j) - shift) for j in jobs]
        assert got["gen_s"] == {"p50": p(gen, 0.5), "p90": p(gen, 0.9)}, step
        assert got["detect_s"] == {"p50": p(detect, 0.5), "p90": p(detect, 0.9)}, step
        # The gate wait is the journal's own, ledger or not.
        assert got["gate_s"]["p50"] == p([j.sent - j.intent for j in jobs], 0.5)
        check = got["vs_ledger"]
        assert check["jobs"] == len(jobs)
        assert check["abs_error_s"] == {"p50": shift, "p90": shift}
        assert check["bias_s"] == shift
    # Every bracketed job's ledger completion lies inside its bracket.
    assert a.split_all.vs_ledger() == {
        "jobs": 5,
        "abs_error_s": {"p50": shift, "p90": shift},
        "bias_s": shift,
        "inside_bracket": 1.0,
    }
    assert a.rate_limit == 40.0 and a.rate_limit_source == "the simulator's limit"
    text = a.render()
    assert "exact from the simulator ledger" in text and "journal vs ledger" in text
    assert "100% of GEN's completions inside the poll bracket" in text


def test_a_ledger_without_a_limit_leaves_the_rate_n_a(timed: Path) -> None:
    ledger = ledger_for(0.0)
    ledger["config"]["rate"] = None
    a = analyze(timed, ledger=ledger)
    assert a.rate_limit is None and a.utilization is None
    assert "no rate limit" in a.rate_limit_source
    assert "achieved" in a.render()


@pytest.mark.parametrize(
    ("told", "rate", "line"),
    [
        (40.0, None, "rate: told 40/s"),
        (40.0, {"final": 40.0, "source": "told", "ceiling": 40.0}, "rate: told 40/s"),
        (40.0, {"final": 30.0, "source": "told"}, "rate: told 40/s (ended at 30/s)"),
        (
            None,
            {"final": 48.0, "source": "discovered", "ceiling": 200.0},
            "rate: untold (discovered 48/s; ceiling 200/s)",
        ),
        (
            None,
            {"final": 50.0, "source": "header", "ceiling": 200.0},
            "rate: untold (discovered 50/s, published in the server's rate headers; ceiling 200/s)",
        ),
        (
            None,
            {"final": 200.0, "source": "ceiling", "ceiling": 200.0},
            "rate: untold (discovered 200/s, the ceiling: no limit seen)",
        ),
        (
            None,
            {"final": 12.0, "source": "probing", "ceiling": 200.0},
            "rate: untold (discovered 12/s, still probing; ceiling 200/s)",
        ),
        (None, None, "rate: untold (discovered rate not reported)"),
    ],
)
def test_rate_line(told: float | None, rate: dict[str, Any] | None, line: str) -> None:
    assert rate_line(told, rate) == line


def _steps(out: Path) -> Iterator[StepRecord]:
    with Journal.open(out, read_only=True) as j:
        for r in j.rows():
            yield from j.steps(r.row_id).values()


def test_the_synthetic_journal_has_what_the_test_wrote(timed: Path, old: Path) -> None:
    new = {s.remote_id: s for s in _steps(timed) if s.remote_id}
    assert new["11"].sent_at == T0 + 1.5 and new["11"].done_after == T0 + 10.0
    assert new["12"].done_at == T0 + 28.0 and new["13"].done_after is None
    assert all(s.sent_at is None and s.done_by is None for s in _steps(old))


def test_a_journal_file_from_before_the_columns_says_n_a(old: Path, tmp_path: Path) -> None:
    """A journal written by the old schema (no timing columns at all) reads as NULLs.

    ``--from`` opens it read-only: the file is not migrated behind the user's back.
    """
    legacy = tmp_path / "legacy"
    shutil.copytree(old, legacy)
    with sqlite3.connect(legacy / ENGINE_JOURNAL_FILE) as db:
        for column in ("sent_at", "done_after", "done_by", "done_at"):
            db.execute(f"ALTER TABLE steps DROP COLUMN {column}")
        columns = [r[1] for r in db.execute("PRAGMA table_info(steps)")]
    assert "sent_at" not in columns
    a = analyze(legacy, ledger={})
    assert a.split_all.jobs == 5 and a.split_all.source is None
    assert a.split_json()["target_met"] is None and a.detect_share is None
    assert GAP_NO_SENT_AT in a.gaps and GAP_NO_DONE in a.gaps
    assert a.to_json()["steps"] == analyze(old, ledger={}).to_json()["steps"]
    with sqlite3.connect(legacy / ENGINE_JOURNAL_FILE) as db:
        assert [r[1] for r in db.execute("PRAGMA table_info(steps)")] == columns
    # With a ledger GEN's side is still exact; only the gate wait stays n/a.
    exact = analyze(legacy, ledger=ledger_for(0.0)).split_all.to_json()
    assert exact["source"] == "ledger" and exact["gen_s"] is not None
    assert exact["gate_s"] is None and exact["vs_ledger"] is None


def test_a_told_run_says_so(tmp_path: Path) -> None:
    out = tmp_path / "told"
    write_run(out, timings=True, rate={"final": 40.0, "source": "told", "ceiling": 40.0}, told=40.0)
    a = analyze(out, ledger={})
    assert a.rate_told == 40.0 and a.rate_limit == 40.0
    assert a.rate_limit_source == "--rate of the run"
    assert "rate: told 40/s\n" in a.render()


def bench(*argv: str) -> int:
    """``genbatch bench ARGV`` through the command's own parser, in process."""
    parser = argparse.ArgumentParser(prog="genbatch")
    bench_cli.register(parser.add_subparsers())
    args = parser.parse_args(["bench", *argv])
    code: int = args.func(args)
    return code


def test_bench_from_prints_the_split(timed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert bench("--from", str(timed)) == 0
    text = capsys.readouterr().out
    vo = [line for line in text.splitlines() if line.startswith("generate:voiceover")]
    assert len(vo) == 2  # the step table and the split table
    # The split row by hand: gate 0.5/1.5 -> p50 1.0; GEN 9.0/10.0; detection 1.5/2.0.
    gate = [j.sent - j.intent for j in by_step()["generate:voiceover"]]
    assert f"{p(gate, 0.5):.3f} / {p(gate, 0.9):.3f}" in vo[1]
    assert "our time vs GEN's per job" in text and "estimated from the journal" in text
    assert "median detection delay" in text and "target <= 10%" in text
    assert "rate: untold (discovered 42.5/s; ceiling 200/s)" in text
    assert "journal gaps" in text and "bottleneck:" in text

    assert bench("--from", str(timed), "--json") == 0
    data = json.loads(capsys.readouterr().out)
    assert data["split"]["all"]["jobs"] == 5 and data["split"]["all"]["source"] == "journal"
    assert data["rate"] == {"final": 42.5, "source": "discovered", "ceiling": 200.0}


def test_bench_from_reads_the_ledger_a_bench_left(
    timed: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (timed / ENGINE_BENCH_LEDGER_FILE).write_text(json.dumps(ledger_for(0.25)))
    assert bench("--from", str(timed)) == 0
    text = capsys.readouterr().out
    assert "exact from the simulator ledger" in text
    assert "journal vs ledger: completion estimate off by p50 0.250 s" in text


def test_bench_from_an_old_journal_prints_n_a(
    old: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert bench("--from", str(old)) == 0
    text = capsys.readouterr().out
    assert "target <= 10% n/a" in text
    assert GAP_NO_SENT_AT in text and GAP_NO_DONE in text


def test_the_rate_limit_when_nothing_says_it(old: Path) -> None:
    """Untold, no ledger: a summary without a rate object is a run from before
    discovery (it ran at the engine's default); no summary at all: unknown."""
    a = analyze(old, ledger={})
    assert a.rate_limit == ENGINE_RATE_DEFAULT and a.rate_limit_source.startswith("engine default")
    log = old / ENGINE_RUN_LOG
    kept = [line for line in log.read_text().splitlines(True) if '"summary"' not in line]
    log.write_text("".join(kept))
    a = analyze(old, ledger={})
    assert a.rate_limit is None and a.utilization is None
    assert a.rate_limit_source.startswith("unknown")
    assert "requests: unknown" in a.render()
