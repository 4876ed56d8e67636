"""Case 16: Hypothesis draws sequences of faults, kills and resumes.

Each example is a fresh output dir and a reset simulator; each step either
arms a fault (a simulator ``--faults`` spec or a fault-proxy toxic), runs
``genbatch run`` to its end, or runs it and SIGKILLs it at a drawn point.
After every step I1–I6 are checked (their weak forms right after a kill);
the machine's teardown turns the faults off and runs once more, after which
every row must be terminal and everything reconciled.

Budget: a handful of examples of a few steps each (``derandomize`` so CI
replays the same sequences; no example database written into the repo).
For a deeper hunt: ``GENBATCH_RELIABILITY_EXAMPLES=40 pytest --timeout=900 ...``
(random sequences; the default 120 s per-test timeout would cut it short).
"""

from __future__ import annotations

import os
import urllib.request
from typing import Any

import pytest
from faultproxy import ProxyThread
from harness import Case, ProxyFactory, SimFactory, SimProc, vo_table
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, rule, run_state_machine_as_test
from invariants import snapshot

pytestmark = pytest.mark.reliability

GENERATE = rb"^POST /v1/vidsheet/\d+/cells/\d+/(generate|render)[ ?]"
_500 = (
    b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\n"
    b"Content-Length: 2\r\nConnection: close\r\n\r\n{}"
)
SIM_FAULTS = (
    "500:0.1,503:0.05",
    "reset:0.08,reset_after:0.08",
    "gen_fail:0.3",
    "truncate:0.4",
    "429:0.05@1",
    "slow:0.2@0.2",
)
TOXICS: dict[str, dict[str, Any]] = {
    "reset-after-paid-post": {"kind": "reset_peer", "match": GENERATE, "toxicity": 0.4},
    "500-after-paid-post": {
        "kind": "respond",
        "match": GENERATE,
        "toxicity": 0.4,
        "response": _500,
    },
    "cut-cdn-body": {
        "kind": "limit_data",
        "match": rb"^GET /cdn/",
        "nbytes": 1200,
        "toxicity": 0.5,
    },
}
KILLS = (
    "clone_intent",
    "generate:voiceover:intent",
    "generate:broll:submitted",
    "render:intent",
    "render:submitted",
    "download:start",
)


@pytest.mark.case(
    "16",
    fault="random sequences of faults, kills and resumes",
    how="Hypothesis RuleBasedStateMachine: sim fault specs, proxy toxics, SIGKILL at "
    "journal milestones, reruns; I1–I6 after every step",
)
def test_random_faults_kills_and_resumes(
    case: Case, sims: SimFactory, proxies: ProxyFactory
) -> None:
    sim: SimProc = sims(seed=16, fresh=True)  # its fault dice replay with derandomize
    proxy: ProxyThread = proxies(sim, seed=16)
    examples: list[int] = []

    class Machine(RuleBasedStateMachine):
        @initialize()
        def fresh(self) -> None:
            urllib.request.urlopen(  # back to the seeded start: a clean ledger
                urllib.request.Request(sim.url + "/_sim/reset", data=b"", method="POST"),
                timeout=10,
            ).close()
            sim.config(faults="")
            proxy.clear()
            examples.append(len(examples))
            self.work = case.work / f"ex{len(examples)}"
            self.work.mkdir()
            self.table, self.ids = vo_table(self.work / "t.csv", 3)
            self.out = self.work / "out"
            self.steps: list[str] = []
            # I6 per example: nothing beside this example's out dir may change.
            self.before = case.before = snapshot(self.work, self.out)

        def _run(self, **kw: Any) -> Any:
            res = case.run(self.table, self.out, proxy.url, cwd=self.work, **kw)
            return res

        def _check(self, final: bool) -> None:
            sim.config(faults="")  # the checks read the CDN themselves
            proxy.clear()
            case.check(
                self.out,
                sim.ledger(wait_idle=5.0 if final else 0.0),
                self.ids,
                final=final,
                fetch=sim.fetch if final else None,
                before=self.before,
            )

        @rule(
            spec=st.sampled_from(SIM_FAULTS),
            toxic=st.sampled_from(sorted(TOXICS)),
            kill=st.sampled_from((None, *KILLS)),
        )
        def step(self, spec: str, toxic: str, kill: str | None) -> None:
            """Arm a sim fault and a proxy toxic, then run (to the end, or to a SIGKILL)."""
            self.steps.append(f"[{spec} + {toxic}" + (f" kill@{kill}]" if kill else "]"))
            sim.config(faults=spec)
            params = dict(TOXICS[toxic])
            proxy.add(params.pop("kind"), **params)
            res = self._run(halt_at=kill) if kill else self._run()
            if res.killed:
                self._check(final=False)
            else:  # ran to the end (or every row was already past the kill point)
                assert res.rc in (0, 1), (self.steps, res.stderr[-2000:])
                self._check(final=True)

        def teardown(self) -> None:
            if not hasattr(self, "out"):
                return
            sim.config(faults="")
            proxy.clear()
            res = self._run()
            assert res.rc == 0, (self.steps, res.stderr[-2000:])
            self._check(final=True)
            case.note(" → ".join([*self.steps, "clean rerun"]))

    run_state_machine_as_test(
        Machine,
        settings=settings(
            max_examples=int(os.environ.get("GENBATCH_RELIABILITY_EXAMPLES", "3")),
            stateful_step_count=3,
            deadline=None,
            derandomize=not os.environ.get("GENBATCH_RELIABILITY_EXAMPLES"),
            database=None,
            suppress_health_check=list(HealthCheck),
        ),
    )
    assert examples
