"""The agents table ``genbatch agents apply`` reads: parsed and checked, no network.

One row per agent; columns are Agent Core fields, 1:1 (Step 1: "every field
name maps 1:1 to how the GEN Setup canvas saves"), plus ``agent_id`` and,
for ``--create``, ``workspace_id``.  Lists and objects are JSON cells in a
CSV (``["tiktok","instagram"]``) or Parquet lists/structs.  An empty cell
leaves that field as it is — the API's own rule, "send only the fields you
want to change"; ``[]`` clears a list.

The reference's rules are checked here, before anything is sent, so a typo
costs nothing: an unknown column fails the whole table (every PATCH would
be a 422); ``description`` ≤ 500 and ``personality`` ≤ 20,000 characters,
types, JSON and the client model's enums fail just that row.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import pydantic

from genbatch.agents.tables import validation_problems
from genbatch.client.models import AgentCoreUpdate
from genbatch.engine.table import TableError, read_frame

__all__ = [
    "CORE_FIELDS",
    "META_COLUMNS",
    "AgentSpec",
    "parse_agent_row",
    "read_agents_table",
]

#: Agent Core limits from the reference (Step 1), checked before anything is sent.
ENGINE_CORE_DESCRIPTION_MAX_CHARS: Final = 500
ENGINE_CORE_PERSONALITY_MAX_CHARS: Final = 20_000

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


class _Absent:
    """An empty cell: the field is left as it is."""


_ABSENT: Final = _Absent()


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
    """Two rows for one agent would race each other's PATCHes (or create it twice)."""
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
        # A too-long field is already reported above, with the limit and why.
        problems.extend(validation_problems(exc, skip=limited))
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
    """An id cell as text: ``7.0`` (a CSV read as floats) is ``"7"``; ``7.5`` is no id."""
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
