"""Standalone research in bulk: ``POST /v1/research`` per agent and topic, into a table.

Each (agent, topic) is one research run, waited for on the engine's poll
hub like any agent run.  Research takes much longer at ``deep`` than at
``quick``, so each depth is its own poll kind with its own seed
(:func:`research_seeds`): the hub learns three durations, not one blur.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from genbatch.agents.defaults import ENGINE_IDEAS_CONCURRENCY
from genbatch.agents.runs import RunOutcome
from genbatch.agents.tables import TableData
from genbatch.engine.limits import ConcurrencyCap
from genbatch.engine.watch import HubWatcher
from genbatch.errors import AuthenticationError, GenError

#: Poll-hub seed (seconds at time scale 1) per research depth: the vendor's
#: published durations (about 30 s, 2 min, 5 min; docs/dialect.md §4).
ENGINE_RESEARCH_POLL_SEED_SECONDS: Final[dict[str, float]] = {
    "quick": 30.0,
    "default": 120.0,
    "deep": 300.0,
}

__all__ = ["Depth", "ResearchOutcome", "research", "research_seeds", "research_table"]

Depth = Literal["quick", "default", "deep"]


@dataclass(slots=True)
class ResearchOutcome:
    """One (agent, topic) research run; one line of the research table."""

    agent_id: str
    topic: str
    depth: str
    run: RunOutcome

    def record(self) -> dict[str, Any]:
        result = self.run.result if isinstance(self.run.result, Mapping) else {}
        return {
            "agent_id": self.agent_id,
            "topic": self.topic,
            "depth": self.depth,
            "run_id": self.run.run_id,
            "conversation_id": self.run.conversation_id,
            "status": self.run.status,
            "reason": self.run.reason,
            "error_code": self.run.error_code,
            "summary": result.get("summary"),
            "findings": result.get("findings"),
        }


async def research(
    watcher: HubWatcher,
    agent_ids: Sequence[str],
    topics: Sequence[str],
    depth: Depth = "default",
    *,
    concurrency: int = ENGINE_IDEAS_CONCURRENCY,
) -> list[ResearchOutcome]:
    """``POST /v1/research`` for every (agent, topic); wait; keep findings and summary."""
    cap = ConcurrencyCap(max(1, concurrency), "research")
    kind = f"research:{depth}"

    async def one(agent_id: str, topic: str) -> ResearchOutcome:
        out = RunOutcome("research", agent_id, topic)
        async with cap.slot():
            try:
                started = await watcher.client.research.start(
                    agent_id, topic, depth, idempotency_key=uuid.uuid4().hex
                )
                out.run_id, out.conversation_id = started.key, started.conversation_id
                run = await watcher.run(started.key, kind)
                out.result, out.status = run.result, run.status
                if run.status != "completed":
                    out.status = "failed"
                    out.reason = f"research run {started.key} ended {run.status}"
            except AuthenticationError:
                raise
            except GenError as exc:
                out.fail(exc)
        return ResearchOutcome(agent_id, topic, depth, out)

    return list(await asyncio.gather(*(one(a, t) for a in agent_ids for t in topics)))


def research_seeds() -> dict[str, float]:
    """Poll-hub seeds for research runs, one kind per depth."""
    return {f"research:{d}": s for d, s in ENGINE_RESEARCH_POLL_SEED_SECONDS.items()}


def research_table(outcomes: Sequence[ResearchOutcome]) -> TableData:
    """The research table: each run with its summary and findings."""
    cols = (
        "agent_id",
        "topic",
        "depth",
        "run_id",
        "conversation_id",
        "status",
        "reason",
        "error_code",
        "summary",
        "findings",
    )
    return TableData.from_records([o.record() for o in outcomes], cols)
