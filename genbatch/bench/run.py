"""Throughput as a feature: run a synthetic batch against a simulator and say where the time went.

:func:`run_bench` starts ``genbatch sim`` as its own process
(:mod:`genbatch.sim.launch`: rate limit, burst, time scale, faults), writes a
synthetic table (:func:`synthetic_table`), runs it through ``genbatch run``
as a *subprocess* (so ``os.wait4`` gives that process's own CPU time and peak
RSS, nothing of ours or the simulator's), keeps the simulator's ledger next
to the journal, and joins them into a :class:`~genbatch.bench.report.BenchReport`
(:mod:`genbatch.bench.report`), whose analysis is
:func:`genbatch.bench.analysis.analyze` — which works on any finished run.

``genbatch run`` is told nothing of the simulator it runs against: not its
time scale (the engine learns job latencies), and by default not its rate
limit either (``BenchOptions.told``: pass ``--rate``; otherwise the run
discovers the limit, and its summary says what it found).
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Final

from genbatch._constants import CLIENT_ENV_API_KEY, SIM_DEMO_AGENT_ID, SIM_DEMO_API_KEY
from genbatch.bench.analysis import ENGINE_BENCH_LEDGER_FILE, BenchError, trim_ledger
from genbatch.sim.config import SIM_DEFAULT_BURST, SIM_DEFAULT_RATE, SimConfig
from genbatch.sim.launch import SimLaunchError, SimProcess

if TYPE_CHECKING:
    from genbatch.bench.report import BenchReport

#: `genbatch bench` defaults: a synthetic table of this many rows through this
#: starter template's default recipe, against a simulator process with the
#: simulator's own default rate/burst and a time scale that keeps 1,000 rows
#: to a few minutes (a 90 s video takes 0.9 s).
ENGINE_BENCH_ROWS: Final = 1_000
ENGINE_BENCH_TEMPLATE: Final = "tiktok-vo-broll"
ENGINE_BENCH_RATE: Final = SIM_DEFAULT_RATE
ENGINE_BENCH_BURST: Final = SIM_DEFAULT_BURST
ENGINE_BENCH_TIME_SCALE: Final = 0.01
#: Starting balance of the bench simulator: credits must never be the limit.
ENGINE_BENCH_CREDITS: Final = 1e12
#: Where a bench writes when --out is not given: outputs/bench/<timestamp>/.
ENGINE_BENCH_OUT_ROOT: Final = "outputs/bench"
#: Files a bench leaves in its output dir next to the run's own.
ENGINE_BENCH_TABLE_FILE: Final = "bench_table.csv"
ENGINE_BENCH_REPORT_FILE: Final = "bench.json"
ENGINE_BENCH_SIM_LOG: Final = "bench_sim.log"
#: Seconds to wait for the simulator process to print its address.
ENGINE_BENCH_SIM_START_TIMEOUT: Final = 30.0

__all__ = ["BenchOptions", "bench_sim", "client_argv", "run_bench", "synthetic_table"]


def bench_sim(
    *,
    rate: float | None = ENGINE_BENCH_RATE,
    burst: int = ENGINE_BENCH_BURST,
    time_scale: float = ENGINE_BENCH_TIME_SCALE,
    faults: str = "",
    seed: int = 0,
    credits: float = ENGINE_BENCH_CREDITS,
) -> SimConfig:
    """The bench's simulator: a free loopback port, the demo key, credits that never run out.

    ``rate`` None: a simulator with no rate limit.
    """
    try:
        return SimConfig(
            rate=rate, burst=burst, time_scale=time_scale, faults=faults, seed=seed, credits=credits
        )
    except ValueError as exc:
        raise BenchError(f"simulator: {exc}") from None


@dataclass(frozen=True, slots=True)
class BenchOptions:
    """One bench: how many rows of which template, against which simulator, into which dir."""

    rows: int = ENGINE_BENCH_ROWS
    sim: SimConfig = field(default_factory=bench_sim)
    template: str = ENGINE_BENCH_TEMPLATE
    out_dir: Path | None = None
    #: Tell genbatch the simulator's limit (``--rate``).  False (default): the
    #: run gets no ``--rate`` and discovers the limit itself.
    told: bool = False
    #: The ``--rate`` to tell genbatch instead of the simulator's limit (implies told).
    client_rate: float | None = None
    max_concurrency: int | None = None

    def run_rate(self) -> float | None:
        """The ``--rate`` ``genbatch run`` gets, or None (untold: no ``--rate``)."""
        if self.client_rate is not None:
            return self.client_rate
        if not self.told:
            return None
        if self.sim.rate is None:
            raise BenchError(
                "--told: the simulator has no rate limit to tell (give --client-rate R)"
            )
        return self.sim.rate


# --------------------------------------------------------------------------
# Synthetic table
# --------------------------------------------------------------------------
def synthetic_table(path: Path, rows: int, template: str) -> Path:
    """``rows`` distinct rows with every column the template's default recipe uses."""
    from genbatch.engine.recipe import Recipe  # pydantic and polars: not for --help

    recipe = Recipe.default(template)
    columns = recipe.columns()
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["row_id", *columns])
        width = max(5, len(str(rows)))
        for i in range(rows):
            w.writerow(
                [f"bench-{i:0{width}d}"]
                + [f"{name.replace('_', ' ').capitalize()} for bench row {i}." for name in columns]
            )
    return path


# --------------------------------------------------------------------------
# The bench
# --------------------------------------------------------------------------
def _default_out() -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return Path(ENGINE_BENCH_OUT_ROOT) / f"{stamp}-{os.getpid()}"


def _wait_child(proc: subprocess.Popen[bytes]) -> tuple[int, Any]:
    """Reap exactly this child and return (exit code, its rusage)."""
    _, status, usage = os.wait4(proc.pid, 0)
    code = os.waitstatus_to_exitcode(status)
    proc.returncode = code
    return code, usage


def _startup_cpu() -> float:
    """CPU seconds an interpreter needs just to import `genbatch run`'s modules."""
    proc = subprocess.Popen(
        [sys.executable, "-c", "import genbatch.cli as c; c.build_parser()"],
        stdin=subprocess.DEVNULL,
    )
    _, usage = _wait_child(proc)
    return float(usage.ru_utime + usage.ru_stime)


def _simulator(spec: SimConfig, log: Path) -> SimProcess:
    """The bench's simulator process, started (a launch failure is a :class:`BenchError`)."""
    sim = SimProcess(spec, log=log, start_timeout=ENGINE_BENCH_SIM_START_TIMEOUT)
    try:
        return sim.start()
    except SimLaunchError as exc:
        raise BenchError(str(exc)) from None


def client_argv(
    opts: BenchOptions, table: Path, out: Path, api_url: str, agent_url: str
) -> list[str]:
    """The ``genbatch run`` command line of a bench against the simulator at these URLs.

    Nothing of the simulator's own numbers: no time scale ever, and a
    ``--rate`` only when the bench is told (:meth:`BenchOptions.run_rate`).
    """
    argv = [
        sys.executable,
        "-m",
        "genbatch",
        "run",
        str(table),
        "--template",
        opts.template,
        "--agent",
        str(SIM_DEMO_AGENT_ID),
        "--base-url",
        api_url,
        "--agent-url",
        agent_url,
        "--out",
        str(out),
        "--fresh",
        "--quiet",
        "--json",
    ]
    rate = opts.run_rate()
    if rate is not None:  # told; an untold run discovers the limit
        argv += ["--rate", repr(rate)]
    if opts.max_concurrency is not None:
        argv += ["--max-concurrency", str(opts.max_concurrency)]
    return argv


def run_bench(opts: BenchOptions, log: IO[str] | None = None) -> BenchReport:
    """Run one bench end to end (blocking); see the module docstring."""
    from genbatch.bench.report import build_report  # the engine's planner: not for --help

    spec = opts.sim
    client_rate = opts.run_rate()
    out = (opts.out_dir or _default_out()).resolve()
    out.mkdir(parents=True, exist_ok=True)
    table = synthetic_table(out / ENGINE_BENCH_TABLE_FILE, opts.rows, opts.template)

    def say(msg: str) -> None:
        if log is not None:
            print(msg, file=log, flush=True)

    startup = _startup_cpu()
    with _simulator(spec, out / ENGINE_BENCH_SIM_LOG) as sim:
        say(
            f"bench: simulator at {sim.api_url} (api) and {sim.agent_url} (agent); "
            f"running {opts.rows} rows through genbatch run"
        )
        argv = client_argv(opts, table, out, sim.api_url, sim.agent_url)
        env = {**os.environ, CLIENT_ENV_API_KEY: SIM_DEMO_API_KEY}
        with (
            (out / "bench_run.json").open("wb") as stdout,
            (out / "bench_run.err").open("wb") as stderr,
        ):
            t0 = time.monotonic()
            proc = subprocess.Popen(  # noqa: S603 - our interpreter, our arguments
                argv, stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL, env=env
            )
            code, usage = _wait_child(proc)
            wall = time.monotonic() - t0
        try:
            summary: dict[str, Any] = json.loads((out / "bench_run.json").read_text())
        except ValueError:
            err = (out / "bench_run.err").read_text(errors="replace")[-2000:]
            raise BenchError(f"genbatch run exited {code} without a summary:\n{err}") from None
        full = sim.ledger()
    ledger = trim_ledger(full)
    (out / ENGINE_BENCH_LEDGER_FILE).write_text(json.dumps(ledger))
    report = build_report(
        spec=spec,
        rows=opts.rows,
        template=opts.template,
        max_concurrency=opts.max_concurrency,
        client_rate=client_rate,
        out=out,
        table=table,
        summary=summary,
        ledger=ledger,
        usage=usage,
        startup=startup,
        wall=wall,
    )
    (out / ENGINE_BENCH_REPORT_FILE).write_text(json.dumps(report.to_json(), indent=2))
    return report
