"""Step 2 in bulk: idea runs for many agents, research, train_social — into tables.

``genbatch ideas`` starts one agent run per agent (or per row of a table
with a per-agent ``message``), waits for every run on the engine's poll hub
(one scheduler, no task sleeping per run), reads each conversation and
writes **one row per idea** with every field the reference documents.  The
table is a ``genbatch run`` input as it stands:

* ``row_id`` = ``idea-<idea id>``: stable, so rerunning ``run`` resumes;
* ``template`` from the idea's ``video_type`` (:mod:`video_types`, overridable);
* ``hook`` and ``script`` (= ``full_script``) fill every default recipe;
* ``idea_id`` lets the run move the idea's status along with the row
  (:mod:`genbatch.engine.idea_status`).

Nested fields (``selected_assets``, ``project_manifest``,
``inspiration_sources``) are Parquet lists/structs and JSON text in the
CSV.  A nested value Parquet cannot hold losslessly (a key whose type
changes between ideas, an empty object) is written as JSON text in Parquet
too — checked value by value, never silently coerced.

The same run machinery serves refinement (``--refine`` with the
conversation), lasting preferences (``--remember``, a message that starts
``remember:``), approvals (runs that stop in ``awaiting_approval``),
standalone research, and ``train_social`` scraping jobs from a table.
"""

from __future__ import annotations

import asyncio
import json
import math
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal, TypeVar

import polars as pl
import pydantic

from genbatch._constants import (
    ENGINE_IDEA_ROW_PREFIX,
    ENGINE_IDEAS_CONCURRENCY,
    ENGINE_REMEMBER_PREFIX,
    ENGINE_RESEARCH_POLL_SEED_SECONDS,
    ENGINE_RUN_MAX_APPROVALS,
    ENGINE_RUN_MAX_WAIT,
    ENGINE_RUN_WATCH_ATTEMPTS,
)
from genbatch.agents.video_types import template_for
from genbatch.client import GenClient
from genbatch.client import assumptions as A
from genbatch.client.models import AgentRun, Idea, TrainSocialData, UserJob
from genbatch.engine.limits import ConcurrencyCap
from genbatch.engine.poller import PollHub
from genbatch.engine.table import TableError, read_frame
from genbatch.errors import APIError, APIStatusError, AuthenticationError, GenError

__all__ = [
    "DOCUMENTED_IDEA_FIELDS",
    "IDEA_COLUMNS",
    "NESTED_IDEA_FIELDS",
    "IdeaRequest",
    "IdeasReport",
    "ResearchOutcome",
    "RunOutcome",
    "TableData",
    "TrainOutcome",
    "TrainSpec",
    "Waiter",
    "approve_runs",
    "build_ideas_table",
    "generate_ideas",
    "read_frame",
    "read_ideas",
    "read_requests_table",
    "read_train_table",
    "remember_message",
    "research",
    "research_seeds",
    "research_table",
    "run_message",
    "runs_table",
    "train",
    "train_table",
]

T = TypeVar("T")

# --------------------------------------------------------------------------
# Waiting: every run and job on the one poll hub
# --------------------------------------------------------------------------
_RUN_END: Final = A.RUN_DONE | A.RUN_FAILED
_JOB_END: Final = A.USER_JOB_DONE | A.USER_JOB_FAILED


@dataclass(frozen=True, slots=True)
class Waiter:
    """Waits for agent runs and user jobs through a shared :class:`PollHub`.

    ``max_wait`` bounds one wait (a run still going after it is reported, not
    abandoned: its id is in the report).  A poll that failed after the
    client's own retries is watched again a few times — the run is probably
    fine while the API flaps.
    """

    client: GenClient
    hub: PollHub
    max_wait: float = ENGINE_RUN_MAX_WAIT

    async def run(self, run_id: str, kind: str = "agent_run") -> AgentRun:
        return await self._watch(kind, run_id, self.client.runs.get, lambda r: r.status in _RUN_END)

    async def user_job(self, job_id: str, agent_id: str, kind: str) -> UserJob:
        async def fetch(jid: str) -> UserJob:
            return await self.client.user_jobs.get(jid, agent_id)

        return await self._watch(kind, job_id, fetch, lambda j: j.status in _JOB_END)

    async def _watch(
        self,
        kind: str,
        job_id: str,
        fetch: Callable[[str], Awaitable[T]],
        done: Callable[[T], bool],
    ) -> T:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.max_wait
        elapsed = 0.0
        for attempt in range(ENGINE_RUN_WATCH_ATTEMPTS):
            future = self.hub.watch(kind, job_id, fetch, done=done, elapsed=elapsed)
            try:
                return await asyncio.wait_for(future, max(0.0, deadline - loop.time()))
            except TimeoutError:
                raise _StillRunning(kind, job_id, self.max_wait) from None
            except AuthenticationError:
                raise
            except APIError:
                if attempt + 1 >= ENGINE_RUN_WATCH_ATTEMPTS:
                    raise
                elapsed = self.hub.estimate(kind)  # look again soon, learn nothing
        raise AssertionError("unreachable")  # pragma: no cover


class _StillRunning(GenError):
    def __init__(self, kind: str, job_id: str, waited: float) -> None:
        super().__init__(f"{kind} {job_id} still running after {waited:g}s; check it later")


# --------------------------------------------------------------------------
# One agent run, start to end
# --------------------------------------------------------------------------
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
    waiter: Waiter,
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
        started = await waiter.client.runs.start(
            agent_id,
            message,
            conversation_id=conversation_id,
            # Ours, so an ambiguous failure is retried on the same key.
            idempotency_key=uuid.uuid4().hex,
        )
        out.run_id = started.key
        out.conversation_id = started.conversation_id or conversation_id
        await _finish(waiter, out, approve=approve)
    except AuthenticationError:
        raise
    except GenError as exc:
        out.fail(exc)
    return out


async def _finish(waiter: Waiter, out: RunOutcome, *, approve: bool) -> None:
    """Wait for ``out.run_id`` to end, answering approval requests when ``approve``."""
    assert out.run_id is not None
    run = await waiter.run(out.run_id)
    for _ in range(ENGINE_RUN_MAX_APPROVALS):
        if run.status != "awaiting_approval" or not approve:
            break
        await waiter.client.runs.approve(out.run_id, approved=True)
        out.approved = True
        run = await waiter.run(out.run_id)
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


async def approve_runs(waiter: Waiter, run_ids: Sequence[str]) -> list[RunOutcome]:
    """Approve runs that are waiting for approval and wait for them to finish."""

    async def one(run_id: str) -> RunOutcome:
        out = RunOutcome("approve", "", "", run_id=run_id)
        try:
            run = await waiter.client.runs.get(run_id)
            out.agent_id = str((run.model_extra or {}).get("agent_id") or "")
            out.conversation_id = run.conversation_id
            out.message = str((run.model_extra or {}).get("message") or "")
            if run.status != "awaiting_approval":
                out.status, out.error_code = "failed", "not_awaiting_approval"
                out.reason = (
                    f"run {run_id} is {run.status}; only a run awaiting approval can be approved"
                )
                return out
            await _finish(waiter, out, approve=True)
        except AuthenticationError:
            raise
        except GenError as exc:
            out.fail(exc)
        return out

    return list(await asyncio.gather(*(one(r) for r in run_ids)))


# --------------------------------------------------------------------------
# Ideas for many agents
# --------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class IdeaRequest:
    """One run to start: for an agent, or in a conversation (refinement)."""

    agent_id: str | None
    message: str
    conversation_id: str | None = None


def read_requests_table(path: Path | str, default_message: str) -> list[IdeaRequest]:
    """Requests from a table with ``agent_id`` (and optional ``message``, ``conversation_id``).

    Other columns are ignored, so ``genbatch agents apply``'s result table
    works as is (its rows that failed without an agent are skipped).  Any
    other row with neither an agent nor a conversation is an error.
    """
    path = Path(path)
    frame = read_frame(path)
    if "agent_id" not in frame.columns and "conversation_id" not in frame.columns:
        raise TableError(f"{path}: needs an 'agent_id' column (optional: message, conversation_id)")
    out: list[IdeaRequest] = []
    for number, rec in enumerate(frame.iter_rows(named=True), start=1):
        agent = _text(rec.get("agent_id"))
        conv = _text(rec.get("conversation_id"))
        if agent is None and conv is None:
            if _text(rec.get("status")) in ("failed", "planned"):
                continue  # an agents-apply result row: that agent does not exist
            raise TableError(f"{path}: row {number} has no agent_id")
        out.append(IdeaRequest(agent, _text(rec.get("message")) or default_message, conv))
    if not out:
        raise TableError(f"{path}: no row names an agent")
    return out


def _text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    return text or None


def remember_message(text: str) -> str:
    """A preference message: the reference's ``remember:`` prefix, added when missing."""
    text = text.strip()
    if text.lower().startswith(ENGINE_REMEMBER_PREFIX):
        return text
    return f"{ENGINE_REMEMBER_PREFIX} {text}"


@dataclass(slots=True)
class IdeasReport:
    runs: list[RunOutcome]
    #: Ideas as read from the conversations (documented fields + provenance).
    ideas: list[dict[str, Any]]
    #: Ideas left out because they were rejected (e.g. "drop idea 5").
    rejected: int = 0

    @property
    def ok(self) -> bool:
        return all(r.status == "completed" for r in self.runs)


async def generate_ideas(
    waiter: Waiter,
    requests: Sequence[IdeaRequest],
    *,
    remember: str | None = None,
    ideas: bool = True,
    approve: bool = False,
    concurrency: int = ENGINE_IDEAS_CONCURRENCY,
) -> IdeasReport:
    """Per request: the preference run (``remember``), then the idea/refine run.

    Requests run concurrently (``concurrency`` at once); each agent's own
    runs go in order, since a preference applies to the runs after it.
    A refine request without ``agent_id`` takes the conversation's agent.
    """
    cap = ConcurrencyCap(max(1, concurrency), "agent-runs")
    prefs_done: dict[str, asyncio.Task[RunOutcome]] = {}

    async def preference(agent_id: str) -> RunOutcome:
        # One preference run per agent, however many requests name it.
        task = prefs_done.get(agent_id)
        if task is None:
            assert remember is not None
            task = asyncio.ensure_future(
                run_message(waiter, agent_id, remember_message(remember), kind="remember")
            )
            prefs_done[agent_id] = task
        return await task

    async def one(req: IdeaRequest) -> tuple[list[RunOutcome], list[dict[str, Any]], int]:
        async with cap.slot():
            outcomes: list[RunOutcome] = []
            agent_id = req.agent_id
            try:
                if agent_id is None:
                    assert req.conversation_id is not None
                    conv = await waiter.client.conversations.get(req.conversation_id)
                    agent_id = conv.agent_id or ""
            except AuthenticationError:
                raise
            except GenError as exc:
                out = RunOutcome("refine", "", req.message, conversation_id=req.conversation_id)
                out.fail(exc)
                return [out], [], 0
            if remember is not None:
                pref = await preference(agent_id)
                outcomes.append(pref)
                if pref.status != "completed":
                    return outcomes, [], 0
            if not ideas:
                return outcomes, [], 0
            kind: RunKind = "refine" if req.conversation_id else "ideas"
            out = await run_message(
                waiter,
                agent_id,
                req.message,
                kind=kind,
                conversation_id=req.conversation_id,
                approve=approve,
            )
            outcomes.append(out)
            if out.status != "completed" or not out.conversation_id:
                return outcomes, [], 0
            try:
                found, rejected = await read_ideas(
                    waiter.client, out.conversation_id, agent_id=agent_id, run_id=out.run_id
                )
            except AuthenticationError:
                raise
            except GenError as exc:
                out.fail(exc)
                out.reason = f"run completed but its ideas could not be read: {out.reason}"
                return outcomes, [], 0
            out.ideas = len(found)
            return outcomes, found, rejected

    results = await asyncio.gather(*(one(r) for r in requests))
    runs: list[RunOutcome] = []
    seen_runs: set[int] = set()
    by_key: dict[str, dict[str, Any]] = {}
    rejected = 0
    for outcomes, found, dropped in results:
        for o in outcomes:
            if id(o) not in seen_runs:  # a shared preference run is reported once
                seen_runs.add(id(o))
                runs.append(o)
        for idea in found:
            by_key[_idea_key(idea)] = idea  # the same conversation asked twice: once
        rejected += dropped
    return IdeasReport(runs, list(by_key.values()), rejected)


def _idea_key(idea: Mapping[str, Any]) -> str:
    return str(idea.get("idea_id") or f"{idea.get('conversation_id')}#{idea.get('position')}")


async def read_ideas(
    client: GenClient, conversation_id: str, *, agent_id: str, run_id: str | None
) -> tuple[list[dict[str, Any]], int]:
    """The conversation's live ideas (latest version of each, rejected ones left out).

    A refinement answers with the ideas it changed, so one idea appears in
    several messages; the last version wins.  Returns ``(ideas, rejected)``.
    """
    latest: dict[str, Idea] = {}
    order: list[str] = []
    for n, idea in enumerate(await client.conversations.ideas(conversation_id)):
        key = idea.id or f"#{n}"
        if key not in latest:
            order.append(key)
        latest[key] = idea
    out: list[dict[str, Any]] = []
    rejected = 0
    for position, key in enumerate(order, start=1):
        idea = latest[key]
        if idea.status == "rejected":
            rejected += 1
            continue
        data = idea.model_dump(mode="json")
        extra = idea.model_extra or {}
        data["idea_id"] = idea.id
        data["agent_id"] = str(extra.get("agent_id") or agent_id)
        data["conversation_id"] = str(extra.get("conversation_id") or conversation_id)
        data["run_id"] = str(extra["run_id"]) if extra.get("run_id") is not None else run_id
        data["position"] = position
        out.append(data)
    return out, rejected


# --------------------------------------------------------------------------
# The ideas table (a `genbatch run` input)
# --------------------------------------------------------------------------
#: The fields the reference documents for an idea (Step 2), in its order.
DOCUMENTED_IDEA_FIELDS: Final = (
    "title",
    "hook",
    "full_script",
    "video_type",
    "video_type_id",
    "estimated_duration",
    "aspect_ratio",
    "selected_assets",
    "project_manifest",
    "inspiration_sources",
    "rationale",
)
NESTED_IDEA_FIELDS: Final = ("selected_assets", "project_manifest", "inspiration_sources")
#: Column order of the ideas table: run's reserved/recipe columns first.
IDEA_COLUMNS: Final = (
    "row_id",
    "agent_id",
    "template",
    "idea_id",
    "hook",
    "script",
    *(f for f in DOCUMENTED_IDEA_FIELDS if f != "hook"),
    "conversation_id",
    "run_id",
    "idea_status",
)
#: Always text, whatever the server sent (ids are opaque strings).
_TEXT_COLUMNS: Final = frozenset(
    {"row_id", "agent_id", "template", "idea_id", "conversation_id", "run_id", "publish_at"}
)


@dataclass(frozen=True, slots=True)
class TableData:
    """A table ready to write: typed frame for Parquet, plain rows for CSV."""

    frame: pl.DataFrame
    #: Same rows, nested values as JSON text.
    csv_rows: list[dict[str, Any]]

    @classmethod
    def from_records(
        cls, records: Sequence[Mapping[str, Any]], columns: Sequence[str]
    ) -> TableData:
        frame = pl.DataFrame([_column(name, [r.get(name) for r in records]) for name in columns])
        csv_rows = [{name: _csv_value(r.get(name)) for name in columns} for r in records]
        return cls(frame, csv_rows)


def _column(name: str, values: list[Any]) -> pl.Series:
    """A column whose values come back from Parquet as they went in, or as text."""
    if name in _TEXT_COLUMNS:
        return pl.Series(name, [None if v is None else str(v) for v in values], dtype=pl.String)
    try:
        series = pl.Series(name, values, strict=False)
    except (pl.exceptions.PolarsError, TypeError, ValueError, OverflowError):
        series = None
    if (
        series is not None
        and not _has_empty_struct(series.dtype)
        and all(_lossless(v, b) for v, b in zip(values, series.to_list(), strict=True))
    ):
        return series
    # Mixed shapes: keep every value exact as JSON text (scalars as text).
    return pl.Series(name, [_as_text(v) for v in values], dtype=pl.String)


def _as_text(value: Any) -> str | None:
    if value is None:
        return None
    text = _csv_value(value)
    return text if isinstance(text, str) else str(text)


def _has_empty_struct(dtype: Any) -> bool:
    if isinstance(dtype, pl.Struct):
        return not dtype.fields or any(_has_empty_struct(f.dtype) for f in dtype.fields)
    if isinstance(dtype, pl.List | pl.Array):
        return _has_empty_struct(dtype.inner)
    return False


def _lossless(original: Any, back: Any) -> bool:
    """Did a value survive the trip into a typed column? (Null-filled extra keys are fine.)"""
    if original is None:
        return back is None
    if isinstance(original, Mapping):
        return (
            isinstance(back, Mapping)
            and all(_lossless(v, back.get(k)) for k, v in original.items())
            and all(v is None for k, v in back.items() if k not in original)
        )
    if isinstance(original, list | tuple):
        return (
            isinstance(back, list | tuple)
            and len(original) == len(back)
            and all(_lossless(o, b) for o, b in zip(original, back, strict=True))
        )
    if isinstance(original, bool) or isinstance(back, bool):
        return original is back
    if isinstance(original, int | float):
        return isinstance(back, int | float) and float(original) == float(back)
    return type(original) is type(back) and bool(original == back)


def _csv_value(value: Any) -> Any:
    if isinstance(value, Mapping | list | tuple):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, bool):
        return "true" if value else "false"  # as JSON and spreadsheets spell it
    return value


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def idea_row_id(idea: Mapping[str, Any]) -> str:
    """``idea-<id>``; without an id, the conversation and position (still stable)."""
    if idea.get("idea_id"):
        return f"{ENGINE_IDEA_ROW_PREFIX}{idea['idea_id']}"
    return f"{ENGINE_IDEA_ROW_PREFIX}{idea.get('conversation_id')}-{idea.get('position')}"


def build_ideas_table(
    ideas: Iterable[Mapping[str, Any]],
    *,
    overrides: Mapping[str, str] | None = None,
    template: str | None = None,
    publish_at: str | None = None,
) -> TableData:
    """One row per idea, every documented field, ready for ``genbatch run``.

    ``template`` forces one template for every row; else the idea's video
    type picks it (``overrides`` first).  ``publish_at`` (ISO 8601 with a
    timezone) adds the column that makes ``run`` publish (scheduled).
    """
    records = []
    for idea in ideas:
        rec: dict[str, Any] = {name: idea.get(name) for name in DOCUMENTED_IDEA_FIELDS}
        rec.update(
            row_id=idea_row_id(idea),
            agent_id=idea.get("agent_id"),
            idea_id=idea.get("idea_id"),
            conversation_id=idea.get("conversation_id"),
            run_id=idea.get("run_id"),
            idea_status=idea.get("status"),
            script=idea.get("full_script"),
            template=template
            or template_for(idea.get("video_type"), _int(idea.get("video_type_id")), overrides),
        )
        if publish_at is not None:
            rec["publish_at"] = publish_at
        records.append(rec)
    columns = [*IDEA_COLUMNS, *(["publish_at"] if publish_at is not None else [])]
    return TableData.from_records(records, columns)


def runs_table(runs: Sequence[RunOutcome]) -> TableData:
    cols = ("kind", "agent_id", "run_id", "conversation_id", "status", "reason", "error_code")
    return TableData.from_records(
        [r.record() for r in runs], (*cols, "approved", "ideas", "message")
    )


# --------------------------------------------------------------------------
# Standalone research
# --------------------------------------------------------------------------
Depth = Literal["quick", "default", "deep"]


@dataclass(slots=True)
class ResearchOutcome:
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
    waiter: Waiter,
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
                started = await waiter.client.research.start(
                    agent_id, topic, depth, idempotency_key=uuid.uuid4().hex
                )
                out.run_id, out.conversation_id = started.key, started.conversation_id
                run = await waiter.run(started.key, kind)
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


# --------------------------------------------------------------------------
# train_social in bulk
# --------------------------------------------------------------------------
TRAIN_COLUMNS: Final = tuple(TrainSocialData.model_fields)
_TRAIN_INTS: Final = frozenset({"days", "max_results"})
_BOOL_TEXT: Final = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}


@dataclass(frozen=True, slots=True)
class TrainSpec:
    row: int
    agent_id: str | None
    data: Mapping[str, Any]
    problems: tuple[str, ...] = ()


def read_train_table(path: Path | str, default_agent: str | None = None) -> list[TrainSpec]:
    """Sources to scrape: ``agent_id`` + the train_social fields, one job per row.

    Every row is checked with the reference's platform/type list before
    anything is sent; an unknown column fails the table (a typo like
    ``max_result`` would otherwise be silently dropped).
    """
    path = Path(path)
    frame = read_frame(path)
    frame.columns = [c.strip() for c in frame.columns]
    allowed = {"agent_id", *TRAIN_COLUMNS}
    unknown = [c for c in frame.columns if c not in allowed]
    if unknown:
        raise TableError(
            f"{path}: unknown column(s) {', '.join(map(repr, unknown))}; "
            f"expected agent_id, {', '.join(TRAIN_COLUMNS)}"
        )
    if "agent_id" not in frame.columns and default_agent is None:
        raise TableError(f"{path}: no 'agent_id' column; add one or pass --agent ID")
    specs: list[TrainSpec] = []
    seen: dict[str, int] = {}
    for number, rec in enumerate(frame.iter_rows(named=True), start=1):
        agent = _text(rec.get("agent_id")) or default_agent
        problems: list[str] = []
        data: dict[str, Any] = {}
        for name in TRAIN_COLUMNS:
            value = rec.get(name)
            if isinstance(value, str):
                value = value.strip() or None
            if value is None or (isinstance(value, float) and math.isnan(value)):
                continue
            if name in _TRAIN_INTS and isinstance(value, str):
                value = int(value) if value.isdigit() else value
            if name == "monitoring" and isinstance(value, str):
                value = _BOOL_TEXT.get(value.lower(), value)
            data[name] = value
        body: dict[str, Any] = {}
        try:
            body = TrainSocialData.model_validate(data).to_body()
        except pydantic.ValidationError as exc:
            for err in exc.errors():
                loc = ".".join(str(p) for p in err["loc"]) or "row"
                problems.append(f"{loc}: {err['msg'].removeprefix('Value error, ')}")
        if agent is None:
            problems.append("agent_id: is empty and no --agent default was given")
        key = json.dumps([agent, body], sort_keys=True)
        if not problems and key in seen:
            problems.append(f"duplicate of row {seen[key]} (same agent and source)")
        seen.setdefault(key, number)
        # An invalid row keeps what it said, so the report can show it.
        specs.append(TrainSpec(number, agent, body if not problems else data, tuple(problems)))
    if not specs:
        raise TableError(f"{path}: the table has no rows")
    return specs


@dataclass(slots=True)
class TrainOutcome:
    spec: TrainSpec
    user_job_id: str | None = None
    #: completed | failed | submitted (``wait=False``)
    status: str = "failed"
    reason: str | None = None
    error_code: str | None = None
    result: Any = None

    def record(self) -> dict[str, Any]:
        d = self.spec.data
        return {
            "row": self.spec.row,
            "agent_id": self.spec.agent_id,
            **{name: d.get(name) for name in TRAIN_COLUMNS},
            "user_job_id": self.user_job_id,
            "status": self.status,
            "reason": self.reason,
            "error_code": self.error_code,
            "result": json.dumps(self.result, ensure_ascii=False, default=str)
            if self.result is not None
            else None,
        }


async def train(
    waiter: Waiter,
    specs: Sequence[TrainSpec],
    *,
    wait: bool = True,
    concurrency: int = ENGINE_IDEAS_CONCURRENCY,
) -> list[TrainOutcome]:
    """One ``train_social`` user job per valid row; wait for each unless ``wait=False``."""
    cap = ConcurrencyCap(max(1, concurrency), "train")

    async def one(spec: TrainSpec) -> TrainOutcome:
        out = TrainOutcome(spec)
        if spec.problems or spec.agent_id is None:
            out.reason, out.error_code = "; ".join(spec.problems), "validation_error"
            return out
        async with cap.slot():
            try:
                created = await waiter.client.user_jobs.train_social(
                    spec.agent_id, spec.data, idempotency_key=uuid.uuid4().hex
                )
                out.user_job_id = created.user_job_id
                if not wait:
                    out.status = "submitted"
                    return out
                job = await waiter.user_job(created.user_job_id, spec.agent_id, "train_social")
                out.result = job.result
                if job.status in A.USER_JOB_DONE:
                    out.status = "completed"
                else:
                    out.reason = f"train_social job {job.id} ended {job.status}" + (
                        f": {job.error}" if job.error else ""
                    )
            except AuthenticationError:
                raise
            except APIStatusError as exc:
                out.error_code = exc.error_code or str(exc.status)
                out.reason = exc.server_message or str(exc)
            except GenError as exc:
                out.reason = str(exc)
        return out

    return list(await asyncio.gather(*(one(s) for s in specs)))


def train_table(outcomes: Sequence[TrainOutcome]) -> TableData:
    cols = (
        "row",
        "agent_id",
        *TRAIN_COLUMNS,
        "user_job_id",
        "status",
        "reason",
        "error_code",
        "result",
    )
    return TableData.from_records([o.record() for o in outcomes], cols)
