"""``genbatch agents apply``: Agent Core for many agents from one table, idempotently.

One row per agent; columns are Agent Core fields, 1:1 (Step 1: "every field
name maps 1:1 to how the GEN Setup canvas saves"), plus ``agent_id`` and,
for ``--create``, ``workspace_id``.  Lists and objects are JSON cells in a
CSV (``["tiktok","instagram"]``) or Parquet lists/structs.  An empty cell
leaves that field as it is — the API's own rule, "send only the fields you
want to change"; ``[]`` clears a list.

Three ideas make it safe to rerun every night:

* **Validate before sending.**  The reference's rules are checked locally
  (an unknown column fails the whole table — every PATCH would be a 422;
  ``description`` ≤ 500 and ``personality`` ≤ 20,000 characters, types, JSON,
  the client model's enums fail just that row), so a typo costs nothing.
* **Read, compare, write.**  Each agent's core is read, compared field by
  field with what the row asks for, and only the fields that differ are
  PATCHed.  An unchanged agent gets no PATCH at all; ``--dry-run`` stops
  after the compare and reports the diff.
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
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

import polars as pl
import pydantic

from genbatch.client import GenClient
from genbatch.client.models import AgentCoreUpdate
from genbatch.engine.limits import ConcurrencyCap
from genbatch.engine.table import TableError, read_frame
from genbatch.errors import APIStatusError, AuthenticationError, GenError

# engine/ideas_batch.py, engine/video_types.py, engine/journey_commands.py) ---
#: Agents read/compared/written at once (every call still passes the rate gate).
ENGINE_AGENTS_CONCURRENCY: Final = 8
#: Agent Core limits from the reference (Step 1), checked before anything is sent.
ENGINE_CORE_DESCRIPTION_MAX_CHARS: Final = 500
ENGINE_CORE_PERSONALITY_MAX_CHARS: Final = 20_000
#: Characters of an old/new value shown per field in a printed diff.
ENGINE_DIFF_VALUE_CHARS: Final = 72

__all__ = [
    "CORE_FIELDS",
    "META_COLUMNS",
    "AgentOutcome",
    "AgentSpec",
    "ApplyReport",
    "FieldChange",
    "apply_agents",
    "diff_core",
    "parse_agent_row",
    "read_agents_table",
]

#: Agent Core fields, as the client's request model (from the reference) lists them.
CORE_FIELDS: Final[tuple[str, ...]] = tuple(AgentCoreUpdate.model_fields)
#: Columns that are not core fields: which agent, and where to create it.
META_COLUMNS: Final = ("agent_id", "workspace_id")

_STR_LISTS: Final = frozenset({"target_platforms", "keywords"})
_OBJ_LISTS: Final = frozenset({"monitored", "research_topics", "linked_accounts"})
_OBJECTS: Final = frozenset({"default_user_voice"})
_BOOLS: Final = frozenset({"shortform"})
_TRUE: Final = frozenset({"true", "yes", "y", "1"})
_FALSE: Final = frozenset({"false", "no", "n", "0"})
_LIMITS: Final = {
    "description": (
        ENGINE_CORE_DESCRIPTION_MAX_CHARS,
        "a 2-3 sentence summary; put the full persona in personality",
    ),
    "personality": (ENGINE_CORE_PERSONALITY_MAX_CHARS, "the full persona text"),
}
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


class _Absent:
    """An empty cell: the field is left as it is."""


_ABSENT: Final = _Absent()


# --------------------------------------------------------------------------
# Reading and validating the table (no network)
# --------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class AgentSpec:
    """One validated row: which agent, and the core fields it asks for."""

    row: int
    agent_id: str | None
    workspace_id: str | None
    #: Desired core fields as the PATCH body would carry them.
    fields: Mapping[str, Any]
    #: Why the row cannot be sent (empty when it can).
    problems: tuple[str, ...] = ()

    @property
    def brand_name(self) -> str | None:
        value = self.fields.get("brand_name")
        return value if isinstance(value, str) else None


def read_agents_table(path: Path | str) -> list[AgentSpec]:
    """Read and validate an agents table; :class:`TableError` if it cannot run at all.

    Whole-table problems: unreadable file, unknown columns (each would be a
    422 ``unknown fields``), two rows for one ``agent_id``, two rows that
    would create agents of the same ``brand_name``.  Row problems land in
    :attr:`AgentSpec.problems`; that row fails, the others go ahead.
    """
    path = Path(path)
    frame = read_frame(path)
    columns = [c.strip() for c in frame.columns]
    if len(set(columns)) != len(columns):
        raise TableError(f"{path}: repeated column names")
    frame.columns = columns
    allowed = set(CORE_FIELDS) | set(META_COLUMNS)
    unknown = [c for c in columns if c not in allowed]
    if unknown:
        raise TableError(
            f"{path}: unknown column(s) {', '.join(map(repr, unknown))}: Agent Core "
            f"would answer 422 (unknown fields). Core fields: {', '.join(CORE_FIELDS)}; "
            f"also allowed: {', '.join(META_COLUMNS)}"
        )
    if not any(c in CORE_FIELDS for c in columns):
        raise TableError(
            f"{path}: no Agent Core column (expected some of {', '.join(CORE_FIELDS)})"
        )
    if frame.height == 0:
        raise TableError(f"{path}: the table has no rows")
    specs = [parse_agent_row(i + 1, rec) for i, rec in enumerate(frame.iter_rows(named=True))]
    _check_unique(path, specs)
    return specs


def _check_unique(path: Path, specs: Sequence[AgentSpec]) -> None:
    seen: dict[str, int] = {}
    names: dict[str, int] = {}
    for spec in specs:
        if spec.agent_id is not None:
            if spec.agent_id in seen:
                raise TableError(
                    f"{path}: rows {seen[spec.agent_id]} and {spec.row} both set agent "
                    f"{spec.agent_id!r}; one row per agent"
                )
            seen[spec.agent_id] = spec.row
        elif spec.brand_name:
            key = spec.brand_name.casefold()
            if key in names:
                raise TableError(
                    f"{path}: rows {names[key]} and {spec.row} have no agent_id and the same "
                    f"brand_name {spec.brand_name!r}; give them agent ids or distinct names"
                )
            names[key] = spec.row


def parse_agent_row(number: int, record: Mapping[str, Any]) -> AgentSpec:
    """Turn one table row into an :class:`AgentSpec` (pure; no network)."""
    problems: list[str] = []
    desired: dict[str, Any] = {}
    for name in CORE_FIELDS:
        if name not in record:
            continue
        try:
            value = _cell(name, record[name])
        except ValueError as exc:
            problems.append(f"{name}: {exc}")
            continue
        if not isinstance(value, _Absent):
            desired[name] = value
    limited = set()
    for name, (limit, what) in _LIMITS.items():
        text = desired.get(name)
        if isinstance(text, str) and len(text) > limit:
            limited.add(name)
            problems.append(
                f"{name}: {len(text):,} characters; the limit is {limit:,} ({what}) — "
                "GEN would answer 422"
            )
    body: dict[str, Any] = {}
    try:
        body = AgentCoreUpdate.model_validate(desired).to_body()
    except pydantic.ValidationError as exc:
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"]) or "row"
            if loc in limited:
                continue
            problems.append(f"{loc}: {err['msg'].removeprefix('Value error, ')}")
    try:
        agent_id = _id(record.get("agent_id"))
        workspace_id = _id(record.get("workspace_id"))
    except ValueError as exc:
        problems.append(str(exc))
        agent_id = workspace_id = None
    if agent_id is None and "brand_name" not in desired and not problems:
        problems.append("brand_name: needed to create an agent (the row has no agent_id)")
    return AgentSpec(number, agent_id, workspace_id, body, tuple(problems))


def _blank(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and not value.strip()


def _id(value: Any) -> str | None:
    if _blank(value):
        return None
    if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        raise ValueError(f"id {value!r} must be text or an integer")
    text = str(int(value)) if isinstance(value, float) else str(value).strip()
    if any(ord(ch) < 32 for ch in text):
        raise ValueError("an id contains control characters")
    return text


def _json(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"is not valid JSON ({exc.msg} at char {exc.pos}); {what}") from None


def _drop_nulls(value: Any) -> Any:
    """Parquet structs give every key to every element; a null key was never set."""
    if isinstance(value, dict):
        return {k: _drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_nulls(v) for v in value]
    return value


def _cell(name: str, value: Any) -> Any:
    """One cell as the JSON value of field ``name``; ``_ABSENT`` when empty."""
    if _blank(value):
        return _ABSENT
    if name in _BOOLS:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise ValueError(f"{value!r} is not true or false")
    if name in _STR_LISTS:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                value = _json(text, 'write a JSON array like ["a","b"]')
            else:  # a plain "a, b, c" cell
                return [part.strip() for part in text.split(",") if part.strip()]
        if not isinstance(value, list):
            raise ValueError("must be a list (a JSON array)")
        return [str(v) if isinstance(v, int | float) else v for v in value]
    if name in _OBJ_LISTS:
        if isinstance(value, str):
            value = _json(value.strip(), 'write a JSON array like [{"key": "value"}]')
        if not isinstance(value, list):
            raise ValueError("must be a list of objects (a JSON array)")
        value = _drop_nulls(value)
        if name == "research_topics":  # the plain-strings form people write
            value = [{"topic": v} if isinstance(v, str) else v for v in value]
        return value
    if name in _OBJECTS:
        if isinstance(value, str):
            text = value.strip()
            if not text.startswith("{"):
                return {"voice_id": text}  # a bare voice id
            value = _json(text, 'write a JSON object like {"voice_id": "..."}')
        if not isinstance(value, dict):
            raise ValueError("must be an object (JSON)")
        return _drop_nulls(value)
    if isinstance(value, list | dict):
        raise ValueError("must be text")
    # Surrounding whitespace is never meant (and would read as a change every run).
    return value.strip() if isinstance(value, str) else str(value)


# --------------------------------------------------------------------------
# Compare
# --------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class FieldChange:
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
