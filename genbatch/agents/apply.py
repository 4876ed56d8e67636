"""``genbatch agents apply``: Agent Core for many agents from one table, idempotently.

The table (one row per agent, columns are Agent Core fields) is read and
checked by :mod:`genbatch.agents.agents_table` before any connection, so a
typo costs nothing.  This module applies it, in a way that is safe to rerun
every night:

* **Read, compare, write.**  Each agent's core is read, compared field by
  field with what the row asks for, and only the fields that differ are
  PATCHed.  An unchanged agent gets no PATCH at all; ``--dry-run`` stops
  after the compare and reports the diff.
* **Create by name, once.**  With ``--create`` a row without ``agent_id``
  reuses the agent of its ``brand_name`` in the workspace, so a rerun
  creates nothing.
* **Explain the surprising rule.**  ``keywords`` sent without ``monitored``
  makes GEN mirror the keywords into ``monitored`` as ``item_type=keyword``.
  When the row gives both, ``monitored`` rides along with a ``keywords``
  change so the mirroring cannot overwrite it; when it gives only keywords,
  the result says the mirroring will happen.

A ``207 Multi-Status`` (some sections applied, some not) fails the row and
names every failed section with the server's reason, and what did apply.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import polars as pl

from genbatch.agents.agents_table import CORE_FIELDS, AgentSpec
from genbatch.agents.defaults import ENGINE_AGENTS_CONCURRENCY
from genbatch.client import GenClient
from genbatch.engine.limits import ConcurrencyCap
from genbatch.errors import APIStatusError, AuthenticationError, GenError

#: Characters of an old/new value shown per field in a printed diff.
ENGINE_DIFF_VALUE_CHARS: Final = 72

__all__ = [
    "KEYWORD_MIRROR_NOTE",
    "AgentOutcome",
    "ApplyReport",
    "FieldChange",
    "apply_agents",
    "diff_core",
]

#: A result's note when GEN will mirror the sent keywords into ``monitored``.
KEYWORD_MIRROR_NOTE: Final = (
    "keywords sent without monitored: GEN mirrors them into monitored as "
    "item_type=keyword (add a monitored column to control it)"
)

Action = Literal[
    "created",
    "updated",
    "unchanged",
    "would_create",
    "would_update",
    "partial",
    "invalid",
    "error",
]


# --------------------------------------------------------------------------
# Compare
# --------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class FieldChange:
    """One field the PATCH would change: the dry-run diff and the report show it."""

    field: str
    old: Any
    new: Any

    def describe(self, width: int = ENGINE_DIFF_VALUE_CHARS) -> str:
        return f"{self.field}: {_short(self.old, width)} -> {_short(self.new, width)}"


def _short(value: Any, width: int) -> str:
    text = "(unset)" if value is None else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= width else text[: width - 1] + "…"


def _normalized(name: str, value: Any) -> Any:
    # GEN stores keywords without the leading '#' people type.
    if name == "keywords" and isinstance(value, list):
        return [v.lstrip("#") if isinstance(v, str) else v for v in value]
    return value


def _same(want: Any, have: Any) -> bool:
    """Does the server's value already say what we want?

    Objects compare on the keys we set (the server may add ids, defaults);
    lists pairwise, in order; numbers by value; everything else exactly.
    """
    if isinstance(want, dict):
        if not isinstance(have, dict):
            return False
        return all(_same(v, have.get(k)) for k, v in want.items())
    if isinstance(want, list):
        if not isinstance(have, list) or len(want) != len(have):
            return False
        return all(_same(w, h) for w, h in zip(want, have, strict=True))
    if isinstance(want, bool) or isinstance(have, bool):
        return want is have
    if isinstance(want, int | float) and isinstance(have, int | float):
        return float(want) == float(have)
    return bool(want == have)


def diff_core(desired: Mapping[str, Any], current: Mapping[str, Any]) -> list[FieldChange]:
    """The fields of ``desired`` the current core does not already hold, in field order."""
    changes = []
    for name in CORE_FIELDS:
        if name not in desired:
            continue
        want = _normalized(name, desired[name])
        have = _normalized(name, current.get(name))
        if not _same(want, have):
            changes.append(FieldChange(name, current.get(name), desired[name]))
    return changes


# --------------------------------------------------------------------------
# Apply
# --------------------------------------------------------------------------
@dataclass(slots=True)
class AgentOutcome:
    """What happened to one row; one line of the result table."""

    row: int
    agent_id: str | None
    brand_name: str | None
    action: Action
    #: completed | failed | planned (``--dry-run``)
    status: str
    reason: str | None = None
    error_code: str | None = None
    changes: list[FieldChange] = field(default_factory=list)
    #: Fields the PATCH carried (may exceed ``changes``: monitored rides with keywords).
    sent: tuple[str, ...] = ()
    #: 207 Multi-Status: section → the server's reason.
    failed_sections: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def record(self) -> dict[str, Any]:
        """The result-table line (plain strings and ints)."""
        return {
            "row": self.row,
            "agent_id": self.agent_id,
            "brand_name": self.brand_name,
            "action": self.action,
            "status": self.status,
            "reason": self.reason,
            "error_code": self.error_code,
            "changed_fields": ",".join(c.field for c in self.changes) or None,
            "sent_fields": ",".join(self.sent) or None,
            "failed_sections": json.dumps(self.failed_sections, ensure_ascii=False)
            if self.failed_sections
            else None,
            "notes": "; ".join(self.notes) or None,
        }


RESULT_SCHEMA: Final[dict[str, type[pl.DataType]]] = {
    "row": pl.Int64,
    "agent_id": pl.String,
    "brand_name": pl.String,
    "action": pl.String,
    "status": pl.String,
    "reason": pl.String,
    "error_code": pl.String,
    "changed_fields": pl.String,
    "sent_fields": pl.String,
    "failed_sections": pl.String,
    "notes": pl.String,
}


@dataclass(slots=True)
class ApplyReport:
    """Every row's outcome, in table order: the result table and the printed report."""

    outcomes: list[AgentOutcome]
    dry_run: bool

    @property
    def failed(self) -> list[AgentOutcome]:
        return [o for o in self.outcomes if o.status == "failed"]

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for o in self.outcomes:
            out[o.action] = out.get(o.action, 0) + 1
        return out

    def to_frame(self) -> pl.DataFrame:
        return pl.DataFrame([o.record() for o in self.outcomes], schema=RESULT_SCHEMA, orient="row")

    def lines(self) -> Iterable[str]:
        """A human report: one block per agent, the diff indented under it."""
        for o in self.outcomes:
            who = f"agent {o.agent_id}" if o.agent_id else "new agent"
            name = f" ({o.brand_name})" if o.brand_name else ""
            head = f"row {o.row}: {who}{name}: {o.action}"
            if o.reason:
                head += f" — {o.reason}"
            yield head
            for change in o.changes:
                yield "    " + change.describe()
            for section, why in o.failed_sections.items():
                yield f"    FAILED {section}: {why}"
            for note in o.notes:
                yield f"    note: {note}"


async def apply_agents(
    client: GenClient,
    specs: Sequence[AgentSpec],
    *,
    create: bool = False,
    dry_run: bool = False,
    concurrency: int = ENGINE_AGENTS_CONCURRENCY,
) -> ApplyReport:
    """Apply every row: read, compare, and PATCH only what differs.

    ``create``: a row without ``agent_id`` names its agent by ``brand_name``;
    an agent of that name in the workspace is reused (so a rerun creates
    nothing), otherwise one is created with ``POST /v1/agents``.  ``dry_run``
    reads and compares but sends no POST and no PATCH.

    An :class:`AuthenticationError` aborts the whole apply (nothing else
    would work either); any other API error fails only its row.
    """
    cap = ConcurrencyCap(max(1, concurrency), "agents")
    known = _KnownAgents(client)

    async def one(spec: AgentSpec) -> AgentOutcome:
        async with cap.slot():
            return await _apply_one(client, spec, known, create=create, dry_run=dry_run)

    outcomes = await asyncio.gather(*(one(s) for s in specs))
    return ApplyReport(list(outcomes), dry_run)


class _KnownAgents:
    """Existing agents by workspace, listed once, for ``--create``'s name match."""

    def __init__(self, client: GenClient) -> None:
        self._client = client
        self._by_ws: dict[str | None, asyncio.Task[dict[str, list[str]]]] = {}

    async def find(self, workspace_id: str | None, name: str) -> list[str]:
        task = self._by_ws.get(workspace_id)
        if task is None:
            task = asyncio.ensure_future(self._list(workspace_id))
            self._by_ws[workspace_id] = task
        return list((await task).get(name.casefold(), []))

    async def _list(self, workspace_id: str | None) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for agent in await self._client.agents.list(workspace_id):
            if agent.name:
                out.setdefault(agent.name.casefold(), []).append(agent.id)
        return out


async def _apply_one(
    client: GenClient, spec: AgentSpec, known: _KnownAgents, *, create: bool, dry_run: bool
) -> AgentOutcome:
    out = AgentOutcome(spec.row, spec.agent_id, spec.brand_name, "invalid", "failed")
    if spec.problems:
        out.reason = "; ".join(spec.problems)
        out.error_code = "validation_error"
        return out
    try:
        current: Mapping[str, Any] = {}
        if spec.agent_id is None:
            if not create:
                out.reason = "no agent_id; pass --create to create agents for such rows"
                return out
            name = spec.brand_name or ""
            matches = await known.find(spec.workspace_id, name)
            if len(matches) > 1:
                out.reason = (
                    f"{len(matches)} agents are named {name!r} ({', '.join(matches)}); "
                    "set agent_id to pick one"
                )
                return out
            if matches:
                out.agent_id = matches[0]
                out.notes.append(f"matched the existing agent named {name!r}")
            elif dry_run:
                out.action, out.status = "would_create", "planned"
                out.changes = diff_core(spec.fields, {})
                _note_keywords(out, spec)
                return out
            else:
                body: dict[str, Any] = {"name": name}
                if spec.workspace_id is not None:
                    body["workspace_id"] = spec.workspace_id
                agent = await client.agents.create(body)
                out.agent_id, out.action = agent.id, "created"
                out.notes.append(
                    f"put agent_id {agent.id} in the table to keep this row on this agent "
                    "if its brand_name changes"
                )
        assert out.agent_id is not None
        core = await client.core.get(out.agent_id)
        current = core.model_dump(mode="json")
        out.changes = diff_core(spec.fields, current)
        created = out.action == "created"
        if not out.changes:
            out.action, out.status = ("created" if created else "unchanged"), "completed"
            return out
        patch = {c.field: spec.fields[c.field] for c in out.changes}
        if "keywords" in patch and "monitored" in spec.fields:
            patch["monitored"] = spec.fields["monitored"]  # keep GEN from mirroring over it
        out.sent = tuple(n for n in CORE_FIELDS if n in patch)
        _note_keywords(out, spec)
        if dry_run:
            out.action, out.status = "would_update", "planned"
            return out
        result = await client.core.update(out.agent_id, patch)
        if result.partial:
            out.failed_sections = _sections(result.core.model_extra or {}, out.sent)
            applied = [n for n in out.sent if n not in out.failed_sections]
            out.action, out.status, out.error_code = "partial", "failed", "multi_status"
            out.reason = (
                f"207 Multi-Status: {len(out.failed_sections)} section(s) failed "
                f"({', '.join(out.failed_sections)}); applied: {', '.join(applied) or 'none'}"
            )
            return out
        out.action, out.status = ("created" if created else "updated"), "completed"
        return out
    except AuthenticationError:
        raise
    except APIStatusError as exc:
        out.action, out.status = "error", "failed"
        out.error_code = exc.error_code or str(exc.status)
        out.reason = exc.server_message or str(exc)
    except GenError as exc:  # connection lost, a body the client refused, ...
        out.action, out.status = "error", "failed"
        out.reason = str(exc)
    return out


def _note_keywords(out: AgentOutcome, spec: AgentSpec) -> None:
    sends_keywords = any(c.field == "keywords" for c in out.changes)
    if sends_keywords and "monitored" not in spec.fields:
        out.notes.append(KEYWORD_MIRROR_NOTE)


def _sections(extra: Mapping[str, Any], sent: Sequence[str]) -> dict[str, str]:
    """Failed sections of a 207 body, whatever shape the errors come in.

    ASSUMPTION: the reference shows no 207 body.  The simulator sends
    ``errors: {section: {error, error_code}}``; a list of ``{section|field,
    error}`` objects or ``{section: "message"}`` is read the same way.  When
    no section is named, every sent field is reported as unconfirmed.
    """
    raw = extra.get("errors") or extra.get("failed_sections") or extra.get("failures")
    out: dict[str, str] = {}
    if isinstance(raw, Mapping):
        for key, value in raw.items():
            out[str(key)] = _message(value)
    elif isinstance(raw, list):
        for item in raw:
            if isinstance(item, Mapping):
                key = item.get("section") or item.get("field") or "unknown"
                out[str(key)] = _message(item)
    if not out:
        out = {name: "not confirmed by the server (207 without section details)" for name in sent}
    return out


def _message(value: Any) -> str:
    if isinstance(value, Mapping):
        text = value.get("error") or value.get("message") or json.dumps(value)
        return str(text)
    return str(value)
