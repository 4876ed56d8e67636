"""Processes and tables for the reliability cases: a simulator as its own
process, ``genbatch run`` as a subprocess (killable at a known point), small
tables, and the per-case record that becomes tests/RELIABILITY.md.

Everything here is synchronous on purpose: a case drives real processes and
a :class:`~faultproxy.ProxyThread`, so it needs no event loop of its own,
and Hypothesis' stateful machines (plain methods) can use the same helpers.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from faultproxy import ProxyThread
from invariants import (
    Snapshot,
    check_invariants,
    check_leaks_and_outside,
    get_ledger,
    snapshot,
)

from genbatch._constants import SIM_DEMO_AGENT_ID
from genbatch.sim.config import SimConfig
from genbatch.sim.launch import SimProcess

REPO = Path(__file__).resolve().parents[2]
#: The conftest fixtures ``sims`` and ``proxies`` (for annotations).
SimFactory = Callable[..., "SimProc"]
ProxyFactory = Callable[..., "ProxyThread"]
HERE = Path(__file__).resolve().parent
PYTHON = sys.executable
#: A key nobody would type: if it shows up in any file or output, it leaked (I5).
CANARY_KEY = "gbcanary-RELIAB1LITY-9f27c4e1b3a8d605"
#: Simulator job latencies x0.002: a 90 s video takes ~0.2 s.
SCALE = 0.002
AGENT = str(SIM_DEMO_AGENT_ID)
TEMPLATE = "tiktok-vo-broll"
HALT_MARK = "GENBATCH-TEST-HALT"
#: The agent host's base URL for each API host root a case may pass to
#: :func:`run_genbatch`: a simulator's own, or a fault proxy's in front of it
#: (registered by :func:`front`).  The agent host is another port of the same
#: simulator; cases fault the API host only, so agent calls go to it directly.
AGENT_HOSTS: dict[str, str] = {}


# --------------------------------------------------------------------------
# The simulator, as its own process
# --------------------------------------------------------------------------
class SimProc:
    """A simulator process (:mod:`genbatch.sim.launch`) with the helpers the cases use."""

    def __init__(self, process: SimProcess) -> None:
        self.process = process
        AGENT_HOSTS[process.url] = process.agent_url

    @property
    def url(self) -> str:
        """The API host's root (admin API, CDN)."""
        return self.process.url

    @property
    def api_url(self) -> str:
        return self.process.api_url

    @property
    def agent_url(self) -> str:
        return self.process.agent_url

    @property
    def port(self) -> int:
        return self.process.port

    @property
    def log(self) -> Path | None:
        return self.process.log

    @property
    def running(self) -> bool:
        return self.process.running

    def ledger(self, wait_idle: float = 5.0) -> dict[str, Any]:
        return get_ledger(self.url, wait_idle=wait_idle)

    def config(self, **body: Any) -> dict[str, Any]:
        return self.process.config(**body)

    def reset(self) -> None:
        """Back to the seeded start (``POST /_sim/reset``): a clean ledger and world."""
        self.process.reset()

    def fetch(self, url: str) -> bytes:
        with urllib.request.urlopen(url, timeout=10) as resp:
            data: bytes = resp.read()
            return data

    def stop(self) -> None:
        self.process.stop()


def start_sim(
    log_dir: Path,
    *,
    seed: int = 1,
    faults: str = "",
    credits: float = 100_000.0,
    rate: float = 1000.0,
    burst: int = 1000,
    time_scale: float = SCALE,
) -> SimProc:
    """``python -m genbatch sim`` on a free port; returns once it printed its URL.

    Its output goes to a log in ``log_dir``; stopping it sends SIGTERM, then
    SIGKILL after 5 s.
    """
    spec = SimConfig(
        time_scale=time_scale, seed=seed, api_keys=(CANARY_KEY,), rate=rate, burst=burst,
        credits=credits, faults=faults,
    )  # fmt: skip
    log = log_dir / f"sim-{seed}-{time.monotonic_ns()}.log"
    process = SimProcess(spec, log=log, cwd=REPO, stop_signal=signal.SIGTERM, stop_timeout=5)
    return SimProc(process.start())


class SimPool:
    """Simulator processes reused across cases: each hand-out is reset and reconfigured.

    Starting and stopping a process costs ~1 s; ~45 cases would spend a third
    of the suite's budget on it.  ``POST /_sim/reset`` gives a clean world
    and ledger; rate, burst, balance, faults and time scale are set afresh.
    (The fault dice are not re-seeded by a reset, so a case's fault sequence
    depends on what ran before it — the cases assert properties, not draws.)
    """

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.idle: list[SimProc] = []
        self.busy: list[SimProc] = []
        self.dedicated: list[SimProc] = []

    def take(
        self,
        *,
        seed: int = 1,
        faults: str = "",
        credits: float = 100_000.0,
        rate: float = 1000.0,
        burst: int = 1000,
        time_scale: float = SCALE,
        fresh: bool = False,
    ) -> SimProc:
        """A reset, configured simulator; ``fresh``: its own process started with ``seed``
        (for cases whose sim-side fault draws must replay exactly)."""
        if fresh:
            sim = start_sim(
                self.log_dir, seed=seed, faults=faults, credits=credits, rate=rate, burst=burst,
                time_scale=time_scale,
            )  # fmt: skip
            self.dedicated.append(sim)
            return sim
        while self.idle:
            sim = self.idle.pop()
            if sim.running:
                break
        else:
            sim = start_sim(self.log_dir)
        sim.reset()
        sim.config(rate=rate, burst=burst, balance=credits, faults=faults, time_scale=time_scale)
        self.busy.append(sim)
        return sim

    def give_back(self) -> None:
        for sim in self.dedicated:
            sim.stop()
        self.dedicated.clear()
        for sim in self.busy:
            if sim.running:
                try:
                    sim.config(faults="")
                except OSError:
                    sim.stop()
                    continue
                self.idle.append(sim)
        self.busy.clear()

    def close(self) -> None:
        self.give_back()
        for sim in self.idle + self.busy:
            sim.process.request_stop()  # all at once, then wait for each
        for sim in self.idle + self.busy:
            sim.stop()


def front(proxy_url: str, sim: SimProc) -> None:
    """Record that ``proxy_url`` fronts ``sim``'s API host (its agent host: ``sim``'s own)."""
    AGENT_HOSTS[proxy_url] = sim.agent_url


# --------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------
def write_table(path: Path, header: Sequence[str], rows: Iterable[Sequence[object]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


def _soon(seconds: float) -> str:
    """A publish time ``seconds`` ahead (a post goes out on the wall clock, as on GEN)."""
    return datetime.fromtimestamp(time.time() + seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def vo_table(
    path: Path, n: int, prefix: str = "r", *, publish: bool = False
) -> tuple[Path, list[str]]:
    """``n`` rows for tiktok-vo-broll (two generations and a render each; a publish too)."""
    ids = [f"{prefix}{i:02d}" for i in range(n)]
    header = ["row_id", "hook", "script"] + (["publish_at"] if publish else [])
    rows = [
        [rid, f"Hook {rid}: cold brew in 60s", f"Script {rid}. Grind, steep, strain."]
        + ([_soon(15 + i)] if publish else [])  # after the kill and the rerun
        for i, rid in enumerate(ids)
    ]
    write_table(path, header, rows)
    return path, ids


# --------------------------------------------------------------------------
# genbatch run, as a subprocess
# --------------------------------------------------------------------------
@dataclass
class RunResult:
    rc: int | None
    stdout: str
    stderr: str
    killed: bool
    seconds: float

    @property
    def summary(self) -> dict[str, Any] | None:
        try:
            data: dict[str, Any] = json.loads(self.stdout)
            return data
        except ValueError:
            return None

    @property
    def outputs(self) -> list[str]:
        return [self.stdout, self.stderr]


def run_genbatch(
    table: Path,
    out: Path,
    base_url: str,
    *args: str,
    key: str = CANARY_KEY,
    halt_at: str | None = None,
    kill_when: Callable[[], bool] | None = None,
    on_halt: Callable[[], None] | None = None,
    timeouts: tuple[float, float] | None = None,
    backoff_scale: float | None = None,
    stop_signal: int = signal.SIGKILL,
    timeout: float = 60.0,
    template: str | None = TEMPLATE,
    cwd: Path | None = None,
    agent_url: str | None = None,
) -> RunResult:
    """Run ``genbatch run`` to its end, or SIGKILL it at ``halt_at`` / when ``kill_when()``.

    ``halt_at``: a journal milestone (launch.py's GENBATCH_TEST_HALT_AT hook
    parks the process there; we kill it the moment it says so — after
    ``on_halt()`` when given, e.g. to try a second process meanwhile).
    ``stop_signal``: what "kill" sends (SIGINT: a user's ^C; the exit code is kept).
    ``timeouts``: (request, transfer stall) seconds, ``backoff_scale``: the client's
    retry backoff x this — both run through launch.py.
    ``base_url``: the API host's root (a simulator's or a proxy's); the agent
    host is ``agent_url``, by default the one :data:`AGENT_HOSTS` records for it.
    """
    patched = timeouts is not None or backoff_scale is not None or bool(halt_at)
    cmd = [PYTHON, str(HERE / "launch.py")] if patched else [PYTHON, "-m", "genbatch"]
    cmd += [
        "run", str(table), "--out", str(out), "--base-url", base_url + "/v1",
        "--agent-url", agent_url or AGENT_HOSTS[base_url], "--agent", AGENT,
        "--rate", "200", "--json",
    ]  # fmt: skip
    if template:
        cmd += ["--template", template]
    cmd += list(args)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GEN_", "GENBATCH_"))}
    env["GEN_API_KEY"] = key
    env["PYTHONPATH"] = str(REPO)
    if halt_at:
        env["GENBATCH_TEST_HALT_AT"] = halt_at
    if timeouts:
        env["GB_RELIABILITY_API_TIMEOUT"] = str(timeouts[0])
        env["GB_RELIABILITY_STALL_TIMEOUT"] = str(timeouts[1])
    if backoff_scale is not None:
        env["GB_RELIABILITY_BACKOFF_SCALE"] = str(backoff_scale)
    started = time.monotonic()
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=cwd or table.parent,
    )
    out_lines: list[str] = []
    err_lines: list[str] = []
    halted = threading.Event()

    def pump(stream: Any, sink: list[str], watch: bool) -> None:
        for line in stream:
            sink.append(line)
            if watch and HALT_MARK in line:
                halted.set()

    threads = [
        threading.Thread(target=pump, args=(proc.stdout, out_lines, False), daemon=True),
        threading.Thread(target=pump, args=(proc.stderr, err_lines, True), daemon=True),
    ]
    for t in threads:
        t.start()
    killed = False
    deadline = started + timeout
    while proc.poll() is None:
        if halted.is_set() or (kill_when is not None and kill_when()):
            if halted.is_set() and on_halt is not None:
                on_halt()
            proc.send_signal(stop_signal)
            killed = True
            break
        if time.monotonic() > deadline:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            for t in threads:
                t.join(timeout=2)
            raise AssertionError(
                f"genbatch run did not finish in {timeout}s: {''.join(err_lines)[-2000:]}"
            )
        time.sleep(0.005)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise AssertionError(f"genbatch ignored signal {stop_signal}") from None
    for t in threads:
        t.join(timeout=5)
    return RunResult(
        None if killed and stop_signal == signal.SIGKILL else proc.returncode,
        "".join(out_lines),
        "".join(err_lines),
        killed,
        time.monotonic() - started,
    )


# --------------------------------------------------------------------------
# One reliability case: its runs, its checks, its line in RELIABILITY.md
# --------------------------------------------------------------------------
@dataclass
class Case:
    """What a case did, for the report; ``check`` runs the invariants and records them."""

    work: Path
    case: str = ""
    fault: str = ""
    how: str = ""
    invariants: set[str] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    before: Snapshot | None = None

    def table(self, n: int, prefix: str = "r", **kw: Any) -> tuple[Path, list[str]]:
        return vo_table(self.work / f"{prefix}-table.csv", n, prefix, **kw)

    def out(self, name: str = "out") -> Path:
        return self.work / name

    def freeze(self, out: Path) -> None:
        """Snapshot everything beside ``out`` (before the first run) for I6."""
        self.before = snapshot(self.work, out)

    def run(self, table: Path, out: Path, base_url: str, *args: str, **kw: Any) -> RunResult:
        if self.before is None:
            self.freeze(out)
        res = run_genbatch(table, out, base_url, *args, **kw)
        self.outputs += res.outputs
        return res

    def check(
        self,
        out: Path,
        ledger: dict[str, Any],
        rows: Iterable[str],
        **kw: Any,
    ) -> tuple[str, ...]:
        checked = check_invariants(
            out,
            ledger,
            rows,
            [CANARY_KEY, *kw.pop("secrets_extra", ())],
            outputs=kw.pop("outputs", self.outputs),
            before=kw.pop("before", self.before),
            **kw,
        )
        self.invariants.update(checked)
        return checked

    def check_outputs_only(self, out: Path | None = None) -> tuple[str, ...]:
        """I5/I6 for a run refused before it started (no journal, no table)."""
        checked = check_leaks_and_outside(
            out or self.out(), [CANARY_KEY], self.outputs, self.before
        )
        self.invariants.update(checked)
        return checked

    def note(self, text: str) -> None:
        self.notes.append(text)

    def record(self) -> dict[str, Any]:
        return {
            "case": self.case,
            "fault": self.fault,
            "how": self.how,
            "invariants": sorted(self.invariants),
            "notes": self.notes,
        }
