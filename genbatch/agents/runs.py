"""Agent runs, one at a time: start, wait, approve; one line each in the runs report.

Every agent command that talks to an agent (ideas, refinement, lasting
preferences, approvals) goes through :func:`run_message`: start the run with
our own idempotency key (an ambiguous failure is retried on the same key),
wait for it on the engine's poll hub (:class:`HubWatcher`), answer approval
requests when allowed.  A run that failed, timed out or was refused is an
outcome, never an exception, so one bad agent never stops a batch; only a
401 raises (nothing else would work either).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from genbatch.agents.tables import TableData
from genbatch.client import assumptions as A
from genbatch.client.models import AgentRun
from genbatch.engine.watch import HubWatcher
from genbatch.errors import APIStatusError, AuthenticationError, GenError

#: Times one run may ask for approval again after --approve answered it.
ENGINE_RUN_MAX_APPROVALS: Final = 3

__all__ = ["RunKind", "RunOutcome", "approve_runs", "run_message", "runs_table"]

#: Why a run was started (the ``kind`` column of the runs report).
RunKind = Literal["ideas", "refine", "remember", "research", "approve"]


@dataclass(slots=True)
class RunOutcome:
    """One agent run; one line of the ``idea_runs`` report."""

    kind: str
    agent_id: str
    message: str
    run_id: str | None = None
    conversation_id: str | None = None
    #: completed | failed | awaiting_approval
    status: str = "failed"
    reason: str | None = None
    error_code: str | None = None
    approved: bool | None = None
    ideas: int = 0
    result: Any = None

    def record(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "agent_id": self.agent_id,
            "run_id": self.run_id,
            "conversation_id": self.conversation_id,
            "status": self.status,
            "reason": self.reason,
            "error_code": self.error_code,
            "approved": self.approved,
            "ideas": self.ideas,
            "message": self.message,
        }

    def fail(self, exc: GenError) -> None:
        self.status = "failed"
        if isinstance(exc, APIStatusError):
            self.error_code = exc.error_code or str(exc.status)
            self.reason = exc.server_message or str(exc)
        else:
            self.reason = str(exc)


def _pending_action(run: AgentRun) -> str:
    action = (run.model_extra or {}).get("pending_action")
    if isinstance(action, Mapping):
        what = action.get("type") or "act"
        detail = action.get("description")
        return f"{what}: {detail}" if detail else str(what)
    return "take an action"


async def run_message(
    watcher: HubWatcher,
    agent_id: str,
    message: str,
    *,
    kind: RunKind = "ideas",
    conversation_id: str | None = None,
    approve: bool = False,
) -> RunOutcome:
    """Start one run, wait for it, approve it when asked and allowed.

    Never raises for a run that failed, timed out or was refused: the
    outcome says so (an :class:`AuthenticationError` does raise — nothing
    else would work either).
    """
    out = RunOutcome(kind, agent_id, message, conversation_id=conversation_id)
    try:
        started = await watcher.client.runs.start(
            agent_id,
            message,
            conversation_id=conversation_id,
            # Ours, so an ambiguous failure is retried on the same key.
            idempotency_key=uuid.uuid4().hex,
        )
        out.run_id = started.key
        out.conversation_id = started.conversation_id or conversation_id
        await _finish(watcher, out, approve=approve)
    except AuthenticationError:
        raise
    except GenError as exc:
        out.fail(exc)
    return out


async def _finish(watcher: HubWatcher, out: RunOutcome, *, approve: bool) -> None:
    """Wait for ``out.run_id`` to end, answering approval requests when ``approve``."""
    assert out.run_id is not None
    run = await watcher.run(out.run_id)
    for _ in range(ENGINE_RUN_MAX_APPROVALS):
        if run.status != "awaiting_approval" or not approve:
            break
        await watcher.client.runs.approve(out.run_id, approved=True)
        out.approved = True
        run = await watcher.run(out.run_id)
    out.conversation_id = run.conversation_id or out.conversation_id
    out.result = run.result
    if run.status in A.RUN_FAILED:
        out.status = "failed"
        out.reason = f"run {out.run_id} ended {run.status}" + (
            f": {run.error}" if run.error else ""
        )
    elif run.status == "awaiting_approval":
        out.status = "awaiting_approval"
        out.reason = (
            f"the run asks approval to {_pending_action(run)}; approve it with "
            f"`genbatch ideas --approve-run {out.run_id}` (or rerun with --approve)"
        )
    else:
        out.status = "completed"


async def approve_runs(watcher: HubWatcher, run_ids: Sequence[str]) -> list[RunOutcome]:
    """Approve runs that are waiting for approval and wait for them to finish."""

    async def one(run_id: str) -> RunOutcome:
        out = RunOutcome("approve", "", "", run_id=run_id)
        try:
            run = await watcher.client.runs.get(run_id)
            out.agent_id = str((run.model_extra or {}).get("agent_id") or "")
            out.conversation_id = run.conversation_id
            out.message = str((run.model_extra or {}).get("message") or "")
            if run.status != "awaiting_approval":
                out.status, out.error_code = "failed", "not_awaiting_approval"
                out.reason = (
                    f"run {run_id} is {run.status}; only a run awaiting approval can be approved"
                )
                return out
            await _finish(watcher, out, approve=True)
        except AuthenticationError:
            raise
        except GenError as exc:
            out.fail(exc)
        return out

    return list(await asyncio.gather(*(one(r) for r in run_ids)))


def runs_table(runs: Sequence[RunOutcome]) -> TableData:
    """The runs report (``idea_runs``): one line per run, whatever its kind."""
    cols = ("kind", "agent_id", "run_id", "conversation_id", "status", "reason", "error_code")
    return TableData.from_records(
        [r.record() for r in runs], (*cols, "approved", "ideas", "message")
    )
