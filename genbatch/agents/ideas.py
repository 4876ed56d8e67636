"""Step 2 in bulk: idea runs for many agents, and the ideas table ``genbatch run`` reads.

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
``inspiration_sources``) are Parquet lists/structs and JSON text in the CSV
(:mod:`genbatch.agents.tables` says how).  The same runs serve refinement
(``--refine`` with the conversation) and lasting preferences
(``--remember``, a message that starts ``remember:``); one run is
:mod:`genbatch.agents.runs`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from genbatch.agents.defaults import ENGINE_IDEAS_CONCURRENCY
from genbatch.agents.runs import RunKind, RunOutcome, run_message
from genbatch.agents.tables import TableData, cell_text
from genbatch.agents.video_types import template_for
from genbatch.client import GenClient
from genbatch.client.models import Idea
from genbatch.engine.limits import ConcurrencyCap
from genbatch.engine.table import TableError, read_frame
from genbatch.engine.watch import HubWatcher
from genbatch.errors import AuthenticationError, GenError

#: A persistent preference is a run message starting with this (reference, Step 2).
ENGINE_REMEMBER_PREFIX: Final = "remember:"
#: row_id of an idea in the ideas table: this prefix + the idea id (stable across reruns).
ENGINE_IDEA_ROW_PREFIX: Final = "idea-"

__all__ = [
    "DOCUMENTED_IDEA_FIELDS",
    "IDEA_COLUMNS",
    "NESTED_IDEA_FIELDS",
    "IdeaRequest",
    "IdeasReport",
    "build_ideas_table",
    "generate_ideas",
    "idea_row_id",
    "read_ideas",
    "read_requests_table",
    "remember_message",
]


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
        agent = cell_text(rec.get("agent_id"))
        conv = cell_text(rec.get("conversation_id"))
        if agent is None and conv is None:
            if cell_text(rec.get("status")) in ("failed", "planned"):
                continue  # an agents-apply result row: that agent does not exist
            raise TableError(f"{path}: row {number} has no agent_id")
        out.append(IdeaRequest(agent, cell_text(rec.get("message")) or default_message, conv))
    if not out:
        raise TableError(f"{path}: no row names an agent")
    return out


def remember_message(text: str) -> str:
    """A preference message: the reference's ``remember:`` prefix, added when missing."""
    text = text.strip()
    if text.lower().startswith(ENGINE_REMEMBER_PREFIX):
        return text
    return f"{ENGINE_REMEMBER_PREFIX} {text}"


@dataclass(slots=True)
class IdeasReport:
    """What :func:`generate_ideas` did: every run, and the ideas they produced."""

    runs: list[RunOutcome]
    #: Ideas as read from the conversations (documented fields + provenance).
    ideas: list[dict[str, Any]]
    #: Ideas left out because they were rejected (e.g. "drop idea 5").
    rejected: int = 0

    @property
    def ok(self) -> bool:
        return all(r.status == "completed" for r in self.runs)


async def generate_ideas(
    watcher: HubWatcher,
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
                run_message(watcher, agent_id, remember_message(remember), kind="remember")
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
                    conv = await watcher.client.conversations.get(req.conversation_id)
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
                watcher,
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
                    watcher.client, out.conversation_id, agent_id=agent_id, run_id=out.run_id
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
