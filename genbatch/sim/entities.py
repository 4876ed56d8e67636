"""What the simulator's stores are made of: entities, errors and the shared machinery.

Entities are plain dataclasses kept in dicts keyed by integer id, so the
stores, the routes' JSON views and white-box tests all read the same objects.
:class:`Shared` is the one thing every store gets: the clock, the due queue,
the seeded RNG, id ranges and the CDN map, so no store needs the whole World.
"""

from __future__ import annotations

import collections
import functools
import hashlib
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import orjson

from genbatch.sim.clock import Clock, DueQueue
from genbatch.sim.faults import Faults

#: Recent requests kept in the ledger's `log` (a ring; counters are unbounded).
SIM_LEDGER_LOG_SIZE: Final = 200

Json = dict[str, Any]


# --------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------
class ApiError(Exception):
    """An error answer in the reference's format: ``{"error", "error_code"}``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def plain(value: object) -> str:
    """``value`` in plain words for an error message: never a Python repr (no ``None``,
    no quotes from ``!r``, no brackets of a list or tuple)."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    if isinstance(value, list | tuple | set | frozenset):
        return ", ".join(plain(v) for v in value) or "an empty list"
    return orjson.dumps(value, default=str).decode()


def not_found(what: str, ident: object) -> ApiError:
    """404 not_found: missing, or not the caller's (the two must look alike)."""
    if ident is None or ident == "":
        return ApiError(404, "not_found", f"{what} not found")
    return ApiError(404, "not_found", f"{what} {plain(ident)} not found")


def invalid(message: str) -> ApiError:
    return ApiError(422, "validation_error", message)


def forbidden(what: str) -> ApiError:
    return ApiError(403, "forbidden", f"you have no permission for this {what}")


def reject_unknown(body: Json, allowed: Iterable[str], where: str = "") -> None:
    """422 validation_error naming every field of ``body`` not in ``allowed``."""
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise invalid(f"unknown fields{' in ' + where if where else ''}: {', '.join(unknown)}")


def need_str(body: Json, key: str, label: str | None = None) -> str:
    """``body[key]`` when it is a non-empty string, else 422 "<label> is required"."""
    value = body.get(key)
    if not isinstance(value, str) or not value.strip():
        raise invalid(f"{label or key} is required (a non-empty string)")
    return value


@functools.lru_cache(maxsize=1024)
def key_hash(api_key: str) -> str:
    """A short, stable, non-reversible tag for an API key (never log the key)."""
    return hashlib.sha256(api_key.encode()).hexdigest()[:12]


def as_int(v: object) -> int | None:
    """An id from a path, query or body: ints and digit strings; anything else is None."""
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, str) and v.isdigit():
        return int(v)
    return None


def copy_json(v: Any) -> Any:
    """Deep-copy JSON-like data (cards, settings) so engines never share state."""
    if isinstance(v, dict):
        return {k: copy_json(x) for k, x in v.items()}
    if isinstance(v, list):
        return [copy_json(x) for x in v]
    return v


# --------------------------------------------------------------------------
# Shared machinery
# --------------------------------------------------------------------------
# ASSUMPTION: each id kind has its own range (docs/sim-assumptions.md, "ids").
#: First id of each kind: disjoint ranges, so an id passed in the wrong place 404s
#: instead of silently hitting another object (resources start above the stock ids).
ID_START: dict[str, int] = {
    "workspace": 301,
    "agent": 3001,
    "engine": 50_001,
    "column": 60_001,
    "row": 100_001,
    "cell": 1_000_001,
    "layer": 3_000_001,
    "generation": 701,
    "resource": 10_001,
    "user_job": 138_801,
    "conversation": 8_001,
    "run": 9_001,
    "message": 20_001,
    "idea": 30_001,
}


class Shared:
    """The clock, due queue, seeded RNG, id counters and CDN map every store uses.

    Stores get this (and the few other stores they read) instead of the World,
    so what a store may touch is visible in its constructor.
    """

    def __init__(
        self, *, clock: Clock, due: DueQueue, faults: Faults, seed: int, base_url: str
    ) -> None:
        self.clock = clock
        self.due = due
        self.faults = faults
        self.seed = seed
        self.base_url = base_url
        self.rng = random.Random(seed + 1)
        self.cdn: dict[str, CdnObject] = {}
        #: Key of signed blob ids and presigned storage URLs (stable per seed).
        self.secret = hashlib.sha256(f"genbatch-sim-{seed}".encode()).digest()
        #: The last id handed out per kind (plain ints: the world pickles, sim/state.py).
        self._ids: dict[str, int] = {}

    def next_id(self, kind: str) -> int:
        ident = self._ids.get(kind, ID_START.get(kind, 1) - 1) + 1
        self._ids[kind] = ident
        return ident

    def url(self, cdn_key: str) -> str:
        return f"{self.base_url}/cdn/{cdn_key}"

    def token_hex(self, n: int = 8) -> str:
        return f"{self.rng.getrandbits(4 * n):0{n}x}"


# --------------------------------------------------------------------------
# Entities
# --------------------------------------------------------------------------
@dataclass(slots=True)
class User:
    id: int
    name: str
    email: str
    workspace_ids: list[int]


@dataclass(slots=True)
class Workspace:
    id: int
    name: str
    owner_id: int
    credit_balance: float
    created_at: float


@dataclass(slots=True)
class Token:
    id: int
    user_id: int
    name: str
    token: str
    created_at: float
    revoked: bool = False


@dataclass(slots=True)
class Agent:
    id: int
    workspace_id: int
    name: str
    created_at: float
    core: Json = field(default_factory=dict)
    preferences: list[str] = field(default_factory=list)
    automation: Json = field(default_factory=dict)
    elevenlabs_key_last4: str | None = None


@dataclass(slots=True)
class Voice:
    voice_id: str
    name: str
    source: str  # public | user (designed or cloned)
    agent_id: int | None
    gender: str
    accent: str
    description: str
    method: str = "library"


@dataclass(slots=True)
class Preview:
    id: int
    agent_id: int
    voice_id: str
    text: str
    due_at: float
    created_at: float
    cdn_key: str


@dataclass(slots=True)
class Engine:
    id: int
    agent_id: int
    workspace_id: int
    title: str
    template_slug: str | None
    aspect_ratio: str
    created_at: float
    updated_at: float
    column_ids: list[int] = field(default_factory=list)
    row_ids: list[int] = field(default_factory=list)


@dataclass(slots=True)
class Column:
    id: int
    engine_id: int
    name: str
    column_type: str
    role: str
    position: int
    default_card: Json | None
    created_at: float = 0.0
    updated_at: float = 0.0


@dataclass(slots=True)
class Row:
    id: int
    engine_id: int
    position: int
    cell_ids: dict[int, int] = field(default_factory=dict)  # column id -> cell id
    attributes: Json = field(default_factory=dict)  # today's additional_attributes
    created_at: float = 0.0
    updated_at: float = 0.0


@dataclass(slots=True)
class Cell:
    id: int
    engine_id: int
    row_id: int
    column_id: int
    value: Any
    card: Json | None
    layer_ids: list[int] = field(default_factory=list)
    latest_generation_id: int | None = None
    output_ids: list[int] = field(default_factory=list)
    default_user_job: Json | None = None
    attributes: Json = field(default_factory=dict)  # today's additional_attributes
    generation_ids: list[int] = field(default_factory=list)  # history (user_jobs), oldest first
    default_generation_id: int | None = None  # set_default_user_job's choice (today's API)
    created_at: float = 0.0
    updated_at: float = 0.0


@dataclass(slots=True)
class Layer:
    id: int
    engine_id: int
    cell_id: int
    name: str
    layer_type: str
    source_column: str | None
    position: int
    settings: Json
    card: Json | None = None
    latest_generation_id: int | None = None
    output_ids: list[int] = field(default_factory=list)
    generation_ids: list[int] = field(default_factory=list)  # history (user_jobs), oldest first
    created_at: float = 0.0
    updated_at: float = 0.0


@dataclass(slots=True)
class Generation:
    id: int
    workspace_id: int
    engine_id: int
    row_id: int
    cell_id: int
    layer_id: int | None
    generation_type: str
    model: str | None
    data: Json
    credits: float
    created_at: float
    started_at: float
    pending_until: float
    due_at: float
    fail: bool
    out_name: str
    idempotency_key: str | None
    api_key_hash: str
    final: str | None = None  # completed | failed | stopped once settled
    updated_at: float = 0.0
    completed_at: float | None = None
    result: str | None = None
    output_ids: list[int] = field(default_factory=list)
    error: str | None = None
    manifest: Json | None = None  # renders: what the MP4 will carry
    user_job_type: str | None = None  # the internal name it was asked for (today's API)


@dataclass(slots=True)
class Resource:
    """A content resource: an upload, a stock asset, or a generation's output."""

    id: int
    workspace_id: int | None  # None: public stock, usable by every workspace
    agent_id: int | None
    filename: str
    content_type: str
    object_type: str
    byte_size: int | None
    cdn_key: str  # "<folder>/<name>" under /cdn
    thumb_key: str | None
    created_at: float
    source: str  # upload | direct_upload | generation | stock
    folder_id: int | None = None
    name: str | None = None


@dataclass(slots=True)
class CdnObject:
    """What a /cdn path serves; bytes are made on first fetch (renders, samples)."""

    kind: str  # render | sample | file | thumbnail
    content_type: str
    aspect_ratio: str = "9:16"
    media_kind: str = "video"
    manifest: Json | None = None
    path: Path | None = None


@dataclass(slots=True)
class Blob:
    """An ActiveStorage blob created by direct upload, before/after its PUT."""

    id: int
    key: str
    filename: str
    byte_size: int
    checksum: str
    content_type: str
    signed_id: str
    workspace_id: int
    created_at: float
    expired_on_issue: bool
    uploaded: bool = False
    resource_id: int | None = None


@dataclass(slots=True)
class Folder:
    id: int
    agent_id: int
    name: str
    parent_id: int | None
    created_at: float


@dataclass(slots=True)
class UserJob:
    id: int
    agent_id: int
    workspace_id: int
    user_job_type: str
    data: str
    parsed: Json
    created_at: float
    pending_until: float
    due_at: float
    scheduled_at: float | None
    post_id: str | None
    final: str | None = None
    completed_at: float | None = None
    result: Json | None = None
    error: str | None = None
    updated_at: float = 0.0


@dataclass(slots=True)
class Run:
    id: int
    agent_id: int
    conversation_id: int
    kind: str  # ideas | refine | preferences | research | chat | action
    message: str
    created_at: float
    due_at: float
    params: Json
    status: str = "running"
    result: Json | None = None
    pending_action: Json | None = None
    updated_at: float = 0.0
    completed_at: float | None = None


@dataclass(slots=True)
class Conversation:
    id: int
    agent_id: int
    title: str
    created_at: float
    pinned: bool = False
    message_ids: list[int] = field(default_factory=list)
    run_ids: list[int] = field(default_factory=list)
    updated_at: float = 0.0


@dataclass(slots=True)
class Message:
    id: int
    conversation_id: int
    role: str
    content: str
    run_id: int | None
    created_at: float
    idea_ids: list[int] = field(default_factory=list)


@dataclass(slots=True)
class Counters:
    """The request side of the ledger: counters plus a bounded ring of recent calls."""

    by_route: collections.Counter[str] = field(default_factory=collections.Counter)
    by_status: collections.Counter[str] = field(default_factory=collections.Counter)
    log: collections.deque[tuple[float, str, str, str, str]] = field(
        default_factory=lambda: collections.deque(maxlen=SIM_LEDGER_LOG_SIZE)
    )
