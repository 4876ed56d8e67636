"""The bench's options without running one: what `genbatch run` is told, the flags, the report.

`genbatch run` gets no ``--sim-time-scale`` ever and, unless told, no
``--rate`` (it discovers the limit).  A simulator may have no rate limit at
all: the lower bound's rate part is then "n/a".  The report is built here from
a synthetic journal (:mod:`benchhelp`) and a hand-made summary, no processes.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from benchhelp import JOBS, ledger_for, write_run

from genbatch.bench.analysis import BenchError
from genbatch.bench.report import build_report
from genbatch.bench.run import (
    ENGINE_BENCH_RATE,
    ENGINE_BENCH_TEMPLATE,
    BenchOptions,
    bench_sim,
    client_argv,
    synthetic_table,
)
from genbatch.cli import bench as bench_cli
from genbatch.sim.config import SimConfig


def argv_of(opts: BenchOptions) -> list[str]:
    return client_argv(opts, Path("t.csv"), Path("out"), "http://api", "http://agent")


def flag(argv: list[str], name: str) -> str | None:
    return argv[argv.index(name) + 1] if name in argv else None


def test_untold_by_default_and_never_a_time_scale() -> None:
    opts = BenchOptions()
    assert opts.told is False and opts.run_rate() is None
    argv = argv_of(opts)
    assert "--rate" not in argv
    assert not any("time-scale" in a for a in argv)
    assert flag(argv, "--base-url") == "http://api" and flag(argv, "--agent-url") == "http://agent"


def test_told_passes_the_simulators_limit() -> None:
    opts = BenchOptions(sim=bench_sim(rate=25.0), told=True)
    assert opts.run_rate() == 25.0
    argv = argv_of(opts)
    assert flag(argv, "--rate") == "25.0"
    assert not any("time-scale" in a for a in argv)


def test_client_rate_is_told_instead() -> None:
    for told in (False, True):
        opts = BenchOptions(sim=bench_sim(rate=25.0), told=told, client_rate=7.5)
        assert flag(argv_of(opts), "--rate") == "7.5"
    opts = BenchOptions(max_concurrency=3)
    assert flag(argv_of(opts), "--max-concurrency") == "3"


def test_a_simulator_without_a_limit() -> None:
    sim = bench_sim(rate=None)
    assert isinstance(sim, SimConfig) and sim.rate is None
    assert "--rate" not in argv_of(BenchOptions(sim=sim))  # untold: fine
    assert flag(argv_of(BenchOptions(sim=sim, told=True, client_rate=9.0)), "--rate") == "9.0"
    with pytest.raises(BenchError, match="no rate limit to tell"):
        argv_of(BenchOptions(sim=sim, told=True))


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="genbatch")
    bench_cli.register(parser.add_subparsers())
    return parser.parse_args(["bench", *argv])


def test_cli_flags() -> None:
    args = parse()
    assert args.told is False and args.client_rate is None and args.rate == ENGINE_BENCH_RATE
    args = parse("--told", "--rate", "30", "--client-rate", "12")
    assert (args.told, args.rate, args.client_rate) == (True, 30.0, 12.0)
    assert parse("--rate", "none").rate is None
    with pytest.raises(SystemExit):
        parse("--rate", "0")
    with pytest.raises(SystemExit):
        parse("--sim-time-scale", "0.01")


def bench_dir(tmp_path: Path, *, told: float | None) -> tuple[Path, Path]:
    """A finished "bench": the synthetic run plus a table of its rows for the template."""
    out = tmp_path / "out"
    rate = (
        {"final": told, "source": "told", "ceiling": told}
        if told is not None
        else {"final": 48.0, "source": "discovered", "ceiling": 200.0}
    )
    write_run(out, timings=True, rate=rate, told=told)
    table = synthetic_table(tmp_path / "t.csv", len(JOBS), ENGINE_BENCH_TEMPLATE)
    with table.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    for row, rid in zip(rows, JOBS, strict=True):
        row["row_id"] = rid
    with table.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return out, table


def report_for(tmp_path: Path, spec: SimConfig, told: float | None) -> Any:
    out, table = bench_dir(tmp_path, told=told)
    ledger = ledger_for(0.0)
    ledger["config"]["rate"] = spec.rate
    summary = {
        "seconds": 45.0,
        "requests": 30,
        "rate_limited": 0,
        "counts": {"completed": 2},
        "exit_code": 0,
        "credits": 5.0,
        "rate": {"final": 48.0, "source": "discovered", "ceiling": 200.0}
        if told is None
        else {"final": told, "source": "told", "ceiling": told},
    }
    return build_report(
        spec=spec,
        rows=len(JOBS),
        template=ENGINE_BENCH_TEMPLATE,
        max_concurrency=None,
        client_rate=told,
        out=out,
        table=table,
        summary=summary,
        ledger=ledger,
        usage=SimpleNamespace(ru_utime=1.0, ru_stime=0.5, ru_maxrss=102_400),
        startup=0.25,
        wall=46.0,
    )


#: The slowest row's chain of GEN's jobs in the synthetic run (ledger_for(0)):
#: r1's broll (28 - 2.25) then its render (44 - 31.25).
CRITICAL = (28.0 - 2.25) + (44.0 - 31.25)


def test_report_with_no_rate_limit(tmp_path: Path) -> None:
    report = report_for(tmp_path, bench_sim(rate=None), told=None)
    lb = report.lower_bound
    assert lb["rate_bound_s"] is None and lb["rate"] is None
    assert lb["critical_path_s"] == CRITICAL and lb["bound_s"] == CRITICAL
    assert lb["which"] == "critical path"
    assert lb["ratio"] == pytest.approx(45.0 / CRITICAL, abs=1e-4)
    assert report.rows_per_hour["rate_bound"] is None
    assert report.rows_per_hour["binding"] == "rows in flight"
    assert report.options["told"] is False and report.options["rate"] is None
    assert report.rate == {"final": 48.0, "source": "discovered", "ceiling": 200.0}
    assert report.analysis.rate_limit is None
    text = report.render()
    assert "sim rate no limit" in text
    assert "bound by requests: n/a (no rate limit)" in text
    assert "rate limit n/a (no limit)" in text
    assert "rate: untold (discovered 48/s; ceiling 200/s)" in text
    assert report.to_json()["lower_bound"]["rate_bound_s"] is None


def test_report_told(tmp_path: Path) -> None:
    spec = bench_sim(rate=40.0, burst=10)
    report = report_for(tmp_path, spec, told=40.0)
    lb = report.lower_bound
    by_hand = max(0, lb["required_requests"] - 10) / 40.0
    assert lb["rate_bound_s"] == pytest.approx(by_hand, abs=1e-3)
    assert lb["bound_s"] == pytest.approx(max(lb["rate_bound_s"], CRITICAL), abs=1e-3)
    assert report.options["told"] is True and report.options["client_rate"] == 40.0
    text = report.render()
    assert "sim rate 40/s burst 10" in text and "rate: told 40/s" in text
