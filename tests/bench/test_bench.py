"""`genbatch bench` against a simulator process: its figures agree with the sim's ledger.

One small bench (20 rows, time scale 0.003) runs through the real command
line — `python -m genbatch bench --json` starts `genbatch sim` and `genbatch
run` as processes of their own — and every figure is checked against what
the simulator recorded (kept next to the journal as ``bench_ledger.json``)
and against the run's own files.  Then `genbatch bench --from` reads that
output dir.  No timed assertions: times are only checked for consistency.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from genbatch.bench.analysis import ENGINE_BENCH_LEDGER_FILE, analyze, api_requests
from genbatch.bench.stats import percentile
from genbatch.engine.pipeline import ENGINE_VIDEOS_DIR

#: A simulator process and a whole bench run: outside `make check`.
pytestmark = pytest.mark.slow

ROWS = 20
SCALE = 0.003
RATE = 400.0
BURST = 50
#: vo-broll: clone + fill + 2 x (generate + 1 poll) + render + 1 poll, and the
#: preflight's agent + organization reads.
REQUESTS_PER_ROW = 8
GENERATIONS_PER_ROW = 3  # voiceover, broll, render
ENV = {k: v for k, v in os.environ.items() if k != "GEN_API_KEY"}


def genbatch(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "genbatch", *args],
        capture_output=True,
        text=True,
        timeout=110,
        env=ENV,
        check=False,
    )


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    out = tmp_path_factory.mktemp("bench") / "out"
    proc = genbatch(
        "bench",
        "--rows",
        str(ROWS),
        "--rate",
        str(RATE),
        "--burst",
        str(BURST),
        "--time-scale",
        str(SCALE),
        "--seed",
        "3",
        "--out",
        str(out),
        "--json",
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout), out


def ledger_of(out: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((out / ENGINE_BENCH_LEDGER_FILE).read_text())
    return data


def test_every_row_made_its_video(bench: tuple[dict[str, Any], Path]) -> None:
    report, out = bench
    assert report["rows"]["completed"] == ROWS
    # Untold: `genbatch run` got no --rate and found the limit itself.
    assert report["options"]["told"] is False and report["options"]["client_rate"] is None
    assert report["client"]["exit_code"] == 0
    assert len(list((out / ENGINE_VIDEOS_DIR).glob("*.mp4"))) == ROWS


def test_request_counts_equal_the_ledger(bench: tuple[dict[str, Any], Path]) -> None:
    report, out = bench
    ledger = ledger_of(out)
    by_route = {k: v for k, v in ledger["requests"]["by_route"].items() if "/_sim/" not in k}
    req = report["requests"]
    assert req["by_route"] == by_route
    assert req["total"] == sum(by_route.values()) == req["client_reported"]
    assert req["api"] == api_requests(by_route)
    # Each row's MP4 and its thumbnail.
    assert req["cdn"] == by_route["GET /cdn/{folder}/{name}"] == 2 * ROWS
    assert sum(req["by_status"].values()) == req["total"]
    assert report["rate_limited"]["ledger"] == ledger["requests"]["by_status"].get("429", 0)
    assert report["rate_limited"]["client_reported"] == report["rate_limited"]["ledger"]
    # Exactly the work of the recipe, once: no generation paid twice.
    assert by_route["POST /v1/templates/spreadsheets/{slug}/clone"] == ROWS
    assert by_route["POST /v1/vidsheet/{id}/cells/{cell_id}/generate"] == 2 * ROWS
    assert by_route["POST /v1/vidsheet/{id}/cells/{cell_id}/render"] == ROWS


def test_polls_per_generation_come_from_the_ledger(bench: tuple[dict[str, Any], Path]) -> None:
    report, out = bench
    ledger = ledger_of(out)
    polls = ledger["requests"]["by_route"]["GET /v1/generations/{id}"]
    generations = len(ledger["generations"])
    assert generations == GENERATIONS_PER_ROW * ROWS
    assert report["polls"]["polls"] == polls
    assert report["polls"]["generations"] == generations
    assert report["polls"]["per_generation"] == pytest.approx(polls / generations, abs=1e-4)
    # The poll hub's own count agrees with what the server saw.
    assert sum(k["polls"] for k in report["polls"]["hub"].values()) == polls
    assert report["polls"]["per_generation"] >= 1.0  # every job is seen done at least once


def test_detection_delay_joins_journal_and_ledger(bench: tuple[dict[str, Any], Path]) -> None:
    report, out = bench
    d = report["detection_delay"]
    assert d["jobs"] == GENERATIONS_PER_ROW * ROWS
    assert 0.0 <= d["p50_s"] <= d["p95_s"]
    assert set(d["by_kind"]) == {"speech_from_text", "video_from_text", "render"}
    # Recompute the median independently from the saved ledger and the journal.
    ledger = {str(g["id"]): g for g in ledger_of(out)["generations"]}
    with sqlite3.connect(out / "journal.sqlite") as db:
        found = db.execute(
            "SELECT remote_id, finished_at FROM steps WHERE status = 'completed' "
            "AND (step LIKE 'generate:%' OR step = 'render')"
        ).fetchall()
    delays = [max(0.0, fin - ledger[rid]["completed_at"]) for rid, fin in found]
    assert len(delays) == d["jobs"]
    assert d["p50_s"] == pytest.approx(percentile(delays, 0.5), abs=1e-3)


def test_lower_bound_and_rates_are_consistent(bench: tuple[dict[str, Any], Path]) -> None:
    report, _ = bench
    lb = report["lower_bound"]
    assert lb["required_requests"] == REQUESTS_PER_ROW * ROWS + 2
    assert lb["rate_bound_s"] == pytest.approx((lb["required_requests"] - BURST) / RATE, abs=1e-3)
    assert lb["bound_s"] == max(lb["rate_bound_s"], lb["critical_path_s"])
    assert lb["critical_path_s"] > 0  # at least one video and one render
    assert report["makespan_s"] >= lb["critical_path_s"]
    assert lb["ratio"] == pytest.approx(report["makespan_s"] / lb["bound_s"], rel=1e-3)
    # The bench's API requests cover at least what the plan needs.
    assert report["requests"]["api"] >= lb["required_requests"]
    c = report["client"]
    assert c["cpu_s"] > 0 and c["peak_rss_mb"] > 0 and c["cpu_us_per_request"] is not None
    rh = report["rows_per_hour"]
    assert rh["real_time"] == min(rh["rate_bound"], rh["concurrency_bound"])
    assert rh["api_requests_per_row"] == pytest.approx(report["requests"]["api"] / ROWS, rel=1e-3)


def test_from_analyses_the_bench_output(bench: tuple[dict[str, Any], Path]) -> None:
    _, out = bench
    proc = genbatch("bench", "--from", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    a = json.loads(proc.stdout)
    assert a["rows"]["completed"] == ROWS
    steps = a["steps"]
    assert set(steps) == {
        "clone",
        "fill",
        "generate:voiceover",
        "generate:broll",
        "render",
        "download",
    }
    for name, t in steps.items():
        assert t["completed"] == ROWS, name
        assert t["total"]["p50"] <= t["total"]["p95"]
    for name in ("generate:voiceover", "generate:broll", "render"):
        assert {"ours", "send", "gen", "gen_job", "detect"} <= set(steps[name])
    assert {"request"} <= set(steps["fill"]) and {"request"} <= set(steps["download"])
    assert a["rate_limit"] == RATE
    assert a["api_requests"] > 0 and a["achieved_rate"] > 0
    assert a["utilization"] == pytest.approx(a["achieved_rate"] / RATE, rel=1e-3)
    assert a["peak_rows_in_flight"] >= 1
    assert a["bottleneck"]
    assert a["journal_gaps"]
    # Our time vs GEN's, per job: GEN's side exact from the ledger the bench left.
    split = a["split"]
    assert split["all"]["jobs"] == GENERATIONS_PER_ROW * ROWS
    assert split["all"]["source"] == "ledger"
    assert set(split["steps"]) == {"generate:voiceover", "generate:broll", "render"}
    text = genbatch("bench", "--from", str(out))
    assert text.returncode == 0
    assert "bottleneck:" in text.stdout and "generate:broll" in text.stdout


def test_from_works_without_a_ledger(bench: tuple[dict[str, Any], Path]) -> None:
    """A real run has no simulator ledger: the journal and run.log still say a lot."""
    _, out = bench
    a = analyze(out, ledger={})
    assert a.detection is None
    assert a.api_requests is not None and a.api_requests > 0
    broll = a.steps["generate:broll"]
    assert broll.gen and not broll.gen_job  # waiting on GEN, not split without GEN's times


def test_from_refuses_a_dir_without_a_journal(tmp_path: Path) -> None:
    proc = genbatch("bench", "--from", str(tmp_path))
    assert proc.returncode == 2
    assert "journal" in proc.stderr
