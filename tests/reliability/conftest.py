"""Fixtures of the reliability matrix, and the hook that records each case.

* ``sims(...)``     — a simulator as its own process (pooled across cases: reset and
  reconfigured for each; terminated at the end of the session);
* ``proxies(sim)``  — a fault proxy in front of it (CDN and storage URLs rewritten
  through it, so downloads and PUTs meet the toxics too);
* ``case``          — the case's work dir, its runs (``case.run``: ``genbatch run``
  as a subprocess with the canary key), its invariant checks (``case.check``)
  and its line in tests/RELIABILITY.md.

Every test here is marked ``reliability`` and declares ``@pytest.mark.case(id,
fault=..., how=...)``; the hook writes (fault, how injected, invariants
checked, result) for every case to the JSON file :mod:`report` turns into
tests/RELIABILITY.md.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from faultproxy import ProxyThread
from harness import Case, SimPool, SimProc, front

#: Where the case records go (report.py reads the same default).
RESULTS_JSON = Path(
    os.environ.get(
        "GENBATCH_RELIABILITY_JSON",
        str(Path(tempfile.gettempdir()) / "genbatch-reliability.json"),
    )
)
_RECORDS: list[dict[str, Any]] = []
_DESELECTED: list[str] = []
_CASE_KEY = pytest.StashKey[Case]()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "case(id, fault, how): a reliability case and its line in RELIABILITY.md"
    )


@pytest.fixture(scope="session")
def sim_logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Simulator stderr goes here — outside every case's work dir (I6 snapshots it)."""
    return tmp_path_factory.mktemp("sim-logs")


@pytest.fixture(scope="session")
def sim_pool(sim_logs: Path) -> Iterator[SimPool]:
    pool = SimPool(sim_logs)
    yield pool
    pool.close()


@pytest.fixture
def sims(sim_pool: SimPool) -> Iterator[Callable[..., SimProc]]:
    """A simulator process (pooled, reset, configured by keyword) for this case."""
    yield sim_pool.take
    sim_pool.give_back()


@pytest.fixture
def proxies() -> Iterator[Callable[..., ProxyThread]]:
    made: list[ProxyThread] = []

    def make(sim: SimProc, *, rewrite: bool = True, seed: int = 0) -> ProxyThread:
        proxy = ProxyThread(("127.0.0.1", sim.port), rewrite_upstream=rewrite, seed=seed)
        front(proxy.url, sim)
        made.append(proxy)
        return proxy

    yield make
    for proxy in made:
        proxy.close()


@pytest.fixture
def case(request: pytest.FixtureRequest, tmp_path: Path) -> Case:
    work = tmp_path / "work"
    work.mkdir()
    c = Case(work=work)
    marker = request.node.get_closest_marker("case")
    if marker is not None:
        c.case = str(marker.args[0]) if marker.args else ""
        c.fault = marker.kwargs.get("fault", "")
        c.how = marker.kwargs.get("how", "")
    request.node.stash[_CASE_KEY] = c
    return c


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()  # type: ignore[attr-defined]
    marker = item.get_closest_marker("case")
    if marker is None:
        return
    if report.when == "setup" and report.passed:
        return
    if report.when == "teardown" and report.passed:
        return
    xfail = getattr(report, "wasxfail", None)
    if xfail is not None:
        result = f"xfail (known bug): {xfail}"
    elif report.skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        result = f"skipped: {reason.removeprefix('Skipped: ')}"
    elif report.passed:
        result = "pass"
    else:
        result = f"FAIL ({report.when})"
    c = item.stash.get(_CASE_KEY, None)
    rec = (
        c.record()
        if c is not None
        else {
            "case": str(marker.args[0]) if marker.args else "",
            "fault": marker.kwargs.get("fault", ""),
            "how": marker.kwargs.get("how", ""),
            "invariants": [],
            "notes": [],
        }
    )
    excinfo = call.excinfo
    if excinfo is not None and excinfo.typename == "InvariantError":
        broken = str(excinfo.value).split(":", 1)[0]
        rec["invariants"] = sorted({*rec["invariants"], f"{broken} violated"})
    rec.update(nodeid=item.nodeid, result=result, seconds=round(report.duration, 2))
    _RECORDS[:] = [r for r in _RECORDS if r["nodeid"] != item.nodeid]
    _RECORDS.append(rec)


def pytest_deselected(items: list[pytest.Item]) -> None:
    _DESELECTED.extend(i.nodeid for i in items if i.get_closest_marker("case") is not None)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not _RECORDS:
        return
    payload = {
        "generated": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "cases": _RECORDS,
        # Cases collected but not run (-k, -m): a report from this run is partial.
        "deselected": _DESELECTED,
    }
    RESULTS_JSON.write_text(json.dumps(payload, indent=2, ensure_ascii=False))
