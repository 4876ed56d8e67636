"""The simulator's state and the rules that change it, with the admin ledger.

Everything the GEN API remembers lives here as plain dataclasses in dicts
keyed by integer id.  Routes parse HTTP and call World methods; the methods
enforce access (403/404/422 agent_not_found), credits and the job life cycle,
and raise :class:`ApiError` with the reference's error codes.

Jobs (generations, renders, user jobs, agent runs, voice previews) carry their
own ``pending_until``/``due_at``; their status is computed on read.  Work that
must happen at completion (outputs, refunds, ideas, posts) is queued in one
:class:`~genbatch.sim.clock.DueQueue` and settled by :meth:`World.settle`,
which the app calls before every request and every ledger read, so a failed
generation's refund is in the ledger even if nobody polls it.
"""

from __future__ import annotations

import base64
import collections
import functools
import hashlib
import hmac
import itertools
import logging
import random
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genbatch._constants import (
    SIM_DEMO_AGENT_ID,
    SIM_DEMO_API_KEY,
    SIM_DEMO_TIKTOK_URL,
    SIM_DEMO_USER_ID,
    SIM_DEMO_WORKSPACE_ID,
    SIM_DESCRIPTION_MAX_CHARS,
    SIM_LEDGER_LOG_SIZE,
    SIM_MEDIA_EXT,
    SIM_MEDIA_TYPES,
    SIM_OTHER_AGENT_ID,
    SIM_OTHER_API_KEY,
    SIM_OTHER_USER_ID,
    SIM_OTHER_WORKSPACE_ID,
    SIM_PERSONALITY_MAX_CHARS,
    SIM_RESEARCH_LATENCY,
)
from genbatch.sim import templates
from genbatch.sim.clock import Clock, DueQueue, iso, pending_until, phase
from genbatch.sim.faults import Faults
from genbatch.sim.limits import TokenBucket, price

Json = dict[str, Any]
log = logging.getLogger("genbatch.sim")


class ApiError(Exception):
    """An error answer in the reference's format: ``{"error", "error_code"}``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def not_found(what: str, ident: object) -> ApiError:
    return ApiError(404, "not_found", f"{what} {ident} not found")


def invalid(message: str) -> ApiError:
    return ApiError(422, "validation_error", message)


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


def forbidden(what: str) -> ApiError:
    return ApiError(403, "forbidden", f"you have no permission for this {what}")


@functools.lru_cache(maxsize=1024)
def key_hash(api_key: str) -> str:
    """A short, stable, non-reversible tag for an API key (never log the key)."""
    return hashlib.sha256(api_key.encode()).hexdigest()[:12]


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
class Token:
    id: int
    user_id: int
    name: str
    token: str
    created_at: float
    revoked: bool = False


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


@dataclass(slots=True)
class Row:
    id: int
    engine_id: int
    position: int
    cell_ids: dict[int, int] = field(default_factory=dict)  # column id -> cell id


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
class Preview:
    id: int
    agent_id: int
    voice_id: str
    text: str
    due_at: float
    created_at: float
    cdn_key: str


@dataclass(slots=True)
class Folder:
    id: int
    agent_id: int
    name: str
    parent_id: int | None
    created_at: float


@dataclass(slots=True)
class Counters:
    """The request side of the ledger: counters plus a bounded ring of recent calls."""

    by_route: collections.Counter[str] = field(default_factory=collections.Counter)
    by_status: collections.Counter[str] = field(default_factory=collections.Counter)
    log: collections.deque[tuple[float, str, str, str, str]] = field(
        default_factory=lambda: collections.deque(maxlen=SIM_LEDGER_LOG_SIZE)
    )


#: Public voices of the library (the first is the reference's example voice).
PUBLIC_VOICES: tuple[tuple[str, str, str, str], ...] = (
    (templates.DEFAULT_VOICE_ID, "Rachel", "female", "american"),
    ("AZnzlk1XvdvUeBnXmlld", "Domi", "female", "american"),
    ("EXAVITQu4vr4xnSDxMaL", "Bella", "female", "american"),
    ("ErXwobaYiN019PkySvjV", "Antoni", "male", "american"),
    ("TxGEqnHWrfWFTfGW9XjX", "Josh", "male", "american"),
    ("pNInz6obpgDQGcFmaJgB", "Adam", "male", "american"),
)
#: Public stock resources; their ids are those the reference's card examples use.
STOCK: tuple[tuple[int, str, str, str], ...] = (
    (4821, "stock_taco_truck.jpg", "image/jpeg", "image"),
    (4822, "stock_taco_closeup.jpg", "image/jpeg", "image"),
    (4823, "stock_street_night.jpg", "image/jpeg", "image"),
    (5921, "stock_voiceover.m4a", "audio/mp4", "audio"),
    (6001, "stock_presenter.mp4", "video/mp4", "video"),
    (templates.STOCK_MUSIC_RESOURCE_ID, "stock_music_upbeat.m4a", "audio/mp4", "audio"),
)
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
LINKABLE_PLATFORMS = ("tiktok", "instagram", "youtube")
TARGET_PLATFORMS = ("tiktok", "instagram", "youtube", "facebook", "x", "linkedin", "threads")
MONITORED_TYPES = ("account", "hashtag", "keyword")
IDEA_FLOW = ("generated", "approve_to_create", "ready_for_review", "approved_to_post", "posted")
IDEA_EDIT = ("change_idea", "change_video", "rejected")
#: Where "cycle to next status" leads from an edit status (ASSUMPTION, see assumptions.py).
IDEA_EDIT_NEXT = {"change_idea": "generated", "change_video": "approve_to_create"}
APPROVAL_WORDS = re.compile(r"\b(delete|publish)\b", re.IGNORECASE)


class World:
    """All simulator state, the job clock, the limits, the faults and the ledger."""

    def __init__(
        self,
        *,
        api_keys: Iterable[str] = (),
        credits: float,
        time_scale: float,
        seed: int,
        rate: float,
        burst: int,
        faults: str,
        data_dir: Path,
    ) -> None:
        self.api_keys = tuple(api_keys)
        self.start_credits = credits
        self.seed = seed
        self.data_dir = data_dir
        self.time_scale = time_scale
        self.bucket = TokenBucket(rate, burst)
        self.faults = Faults(faults, seed + 2)
        self.base_url = ""
        self._init_state()

    # ------------------------------------------------------------------ setup
    def _init_state(self) -> None:
        self.clock = Clock(self.time_scale, self.seed)
        self.rng = random.Random(self.seed + 1)
        self.due = DueQueue()
        self.counters = Counters()
        self.charged = 0.0
        self.refunded = 0.0
        self.credit_events: list[Json] = []
        self.idempotent: dict[tuple[str, str], Any] = {}
        self.storms: dict[str, float] = {}  # api key -> monotonic end of a 429 storm
        self._ids: dict[str, itertools.count[int]] = {}
        self.users: dict[int, User] = {}
        self.keys: dict[str, int] = {}
        self.workspaces: dict[int, Workspace] = {}
        self.agents: dict[int, Agent] = {}
        self.voices: dict[str, Voice] = {}
        self.tokens: dict[int, Token] = {}
        self.engines: dict[int, Engine] = {}
        self.columns: dict[int, Column] = {}
        self.rows: dict[int, Row] = {}
        self.cells: dict[int, Cell] = {}
        self.layers: dict[int, Layer] = {}
        self.generations: dict[int, Generation] = {}
        self.resources: dict[int, Resource] = {}
        self.cdn: dict[str, CdnObject] = {}
        self.blobs: dict[int, Blob] = {}
        self.blobs_by_key: dict[str, Blob] = {}
        self.blobs_by_signed_id: dict[str, Blob] = {}
        self.multipart_uploads: list[int] = []
        self.user_jobs: dict[int, UserJob] = {}
        self.runs: dict[int, Run] = {}
        self.conversations: dict[int, Conversation] = {}
        self.messages: dict[int, Message] = {}
        self.ideas: dict[int, Json] = {}
        self.previews: dict[int, Preview] = {}
        self.folders: dict[int, Folder] = {}
        self.voice_drafts: dict[str, Json] = {}
        now = self.clock.now()
        self._seed_identity(now)

    def reset(self) -> None:
        """Back to the seeded start (admin ``POST /_sim/reset``); limits keep their config.

        World, latency RNG (a new clock) and fault RNG all restart from the
        seed, so a pooled simulator replays exactly what a fresh one would.
        """
        self.bucket.reset()
        self.faults.reseed()
        self._init_state()

    def next_id(self, kind: str) -> int:
        counter = self._ids.get(kind)
        if counter is None:
            counter = self._ids[kind] = itertools.count(ID_START.get(kind, 1))
        return next(counter)

    def _seed_identity(self, now: float) -> None:
        for uid, name, wid, wname, aid, aname, key, credits in (
            (
                SIM_DEMO_USER_ID,
                "Demo User",
                SIM_DEMO_WORKSPACE_ID,
                "Demo Workspace",
                SIM_DEMO_AGENT_ID,
                "Santiago",
                SIM_DEMO_API_KEY,
                self.start_credits,
            ),
            (
                SIM_OTHER_USER_ID,
                "Other User",
                SIM_OTHER_WORKSPACE_ID,
                "Other Co",
                SIM_OTHER_AGENT_ID,
                "Other Agent",
                SIM_OTHER_API_KEY,
                1000.0,
            ),
        ):
            self.users[uid] = User(uid, name, f"user{uid}@example.com", [wid])
            self.workspaces[wid] = Workspace(wid, wname, uid, float(credits), now)
            self.agents[aid] = Agent(aid, wid, aname, now, core=blank_core(aname))
            self.keys[key] = uid
        for key in self.api_keys:
            self.keys[key] = SIM_DEMO_USER_ID
        demo = self.agents[SIM_DEMO_AGENT_ID]
        demo.core["linked_accounts"] = [{"url": SIM_DEMO_TIKTOK_URL, "platform": "tiktok"}]
        demo.core["target_platforms"] = ["tiktok"]
        for vid, vname, gender, accent in PUBLIC_VOICES:
            self.voices[vid] = Voice(
                vid, vname, "public", None, gender, accent, f"{vname}, {accent}"
            )
        for rid, fname, ctype, otype in STOCK:
            cdn_key = f"stock/{fname}"
            self.resources[rid] = Resource(
                rid, None, None, fname, ctype, otype, None, cdn_key, None, now, "stock"
            )
            self.cdn[cdn_key] = CdnObject(
                "sample", ctype, media_kind=otype, manifest={"stock": fname}
            )
        for i in range(8):
            name = f"assets/stock_clip_{i + 1}.mp4"
            self.cdn[name] = CdnObject("sample", "video/mp4", manifest={"asset": name})
        for t in templates.TEMPLATES:
            self.cdn[f"thumbnails/template_{t.slug}.jpg"] = CdnObject(
                "thumbnail", "image/jpeg", t.aspect_ratio
            )
            self.cdn[f"outputs/template_{t.slug}_sample.mp4"] = CdnObject(
                "render",
                "video/mp4",
                t.aspect_ratio,
                manifest={"template_slug": t.slug, "sample": True},
            )

    # ------------------------------------------------------------------ helpers
    def url(self, cdn_key: str) -> str:
        return f"{self.base_url}/cdn/{cdn_key}"

    def token_hex(self, n: int = 8) -> str:
        return f"{self.rng.getrandbits(4 * n):0{n}x}"

    # ------------------------------------------------------------------ access
    def user_for_key(self, api_key: str) -> User | None:
        uid = self.keys.get(api_key)
        return self.users.get(uid) if uid is not None else None

    def workspace(self, user: User, workspace_id: object) -> Workspace:
        wid = _as_int(workspace_id)
        ws = self.workspaces.get(wid) if wid is not None else None
        if ws is None:
            raise not_found("workspace", workspace_id)
        if ws.id not in user.workspace_ids:
            raise forbidden("workspace")
        return ws

    def agent_param(self, user: User, agent_id: object) -> Agent:
        """Resolve an ``agent_id`` parameter: 422 agent_not_found, 403 forbidden."""
        aid = _as_int(agent_id)
        agent = self.agents.get(aid) if aid is not None else None
        if agent is None:
            raise ApiError(422, "agent_not_found", f"agent_id {agent_id!r} is not a valid agent")
        if agent.workspace_id not in user.workspace_ids:
            raise forbidden("agent")
        return agent

    def agent_path(self, user: User, agent_id: object) -> Agent:
        """Resolve ``/v1/agents/:id``: an unknown id is 404 not_found."""
        aid = _as_int(agent_id)
        agent = self.agents.get(aid) if aid is not None else None
        if agent is None:
            raise not_found("agent", agent_id)
        if agent.workspace_id not in user.workspace_ids:
            raise forbidden("agent")
        return agent

    def engine(self, user: User, agent: Agent, engine_id: object) -> Engine:
        eid = _as_int(engine_id)
        eng = self.engines.get(eid) if eid is not None else None
        if eng is None:
            raise not_found("engine", engine_id)
        if eng.workspace_id not in user.workspace_ids:
            raise forbidden("engine")
        if eng.agent_id != agent.id:
            raise not_found("engine", f"{engine_id} of agent {agent.id}")
        return eng

    def cell(self, eng: Engine, cell_id: object) -> Cell:
        cid = _as_int(cell_id)
        cell = self.cells.get(cid) if cid is not None else None
        if cell is None or cell.engine_id != eng.id:
            raise not_found("cell", cell_id)
        return cell

    def row(self, eng: Engine, row_id: object) -> Row:
        rid = _as_int(row_id)
        row = self.rows.get(rid) if rid is not None else None
        if row is None or row.engine_id != eng.id:
            raise not_found("row", row_id)
        return row

    def column(self, eng: Engine, column_id: object) -> Column:
        cid = _as_int(column_id)
        col = self.columns.get(cid) if cid is not None else None
        if col is None or col.engine_id != eng.id:
            raise not_found("column", column_id)
        return col

    def layer(self, cell: Cell, layer_id: object) -> Layer:
        lid = _as_int(layer_id)
        layer = self.layers.get(lid) if lid is not None else None
        if layer is None or layer.cell_id != cell.id:
            raise not_found("layer", layer_id)
        return layer

    def generation(self, user: User, generation_id: object) -> Generation:
        gid = _as_int(generation_id)
        gen = self.generations.get(gid) if gid is not None else None
        if gen is None:
            raise not_found("generation", generation_id)
        if gen.workspace_id not in user.workspace_ids:
            raise forbidden("generation")
        return gen

    def resource(self, user: User, resource_id: object) -> Resource:
        rid = _as_int(resource_id)
        res = self.resources.get(rid) if rid is not None else None
        if res is None:
            raise not_found("content resource", resource_id)
        if res.workspace_id is not None and res.workspace_id not in user.workspace_ids:
            raise forbidden("content resource")
        return res

    def user_job(self, user: User, agent: Agent, job_id: object) -> UserJob:
        jid = _as_int(job_id)
        job = self.user_jobs.get(jid) if jid is not None else None
        if job is None:
            raise not_found("user job", job_id)
        if job.workspace_id not in user.workspace_ids:
            raise forbidden("user job")
        if job.agent_id != agent.id:
            raise not_found("user job", f"{job_id} of agent {agent.id}")
        return job

    def run(self, user: User, run_id: object) -> Run:
        rid = _as_int(run_id)
        run = self.runs.get(rid) if rid is not None else None
        if run is None:
            raise not_found("run", run_id)
        self._own_agent(user, run.agent_id, "run")
        return run

    def conversation(self, user: User, conversation_id: object) -> Conversation:
        cid = _as_int(conversation_id)
        conv = self.conversations.get(cid) if cid is not None else None
        if conv is None:
            raise not_found("conversation", conversation_id)
        self._own_agent(user, conv.agent_id, "conversation")
        return conv

    def idea(self, user: User, idea_id: object) -> Json:
        iid = _as_int(idea_id)
        idea = self.ideas.get(iid) if iid is not None else None
        if idea is None:
            raise not_found("idea", idea_id)
        self._own_agent(user, idea["agent_id"], "idea")
        return idea

    def _own_agent(self, user: User, agent_id: int, what: str) -> None:
        agent = self.agents.get(agent_id)
        if agent is None or agent.workspace_id not in user.workspace_ids:
            raise forbidden(what)

    # ------------------------------------------------------------------ credits
    def _charge(self, ws: Workspace, amount: float, generation_id: int, reason: str) -> None:
        ws.credit_balance -= amount
        self.charged += amount
        self.credit_events.append(
            {
                "t": self.clock.now(),
                "kind": "charge",
                "amount": amount,
                "generation_id": generation_id,
                "reason": reason,
            }
        )

    def _refund(self, ws: Workspace | None, amount: float, generation_id: int, reason: str) -> None:
        if ws is not None:
            ws.credit_balance += amount
        self.refunded += amount
        self.credit_events.append(
            {
                "t": self.clock.now(),
                "kind": "refund",
                "amount": amount,
                "generation_id": generation_id,
                "reason": reason,
            }
        )

    @staticmethod
    def check_credits(ws: Workspace, amount: float) -> None:
        """422 usable_gen_credit_required at zero, insufficient_credits_for_job when short."""
        if ws.credit_balance <= 0:
            raise ApiError(
                422,
                "usable_gen_credit_required",
                "workspace has no active credits; add credits to generate",
            )
        if ws.credit_balance < amount:
            raise ApiError(
                422,
                "insufficient_credits_for_job",
                f"not enough credits for this job: needs {amount:g}, balance {ws.credit_balance:g}",
            )

    # ------------------------------------------------------------------ settle
    def settle(self, now: float) -> None:
        """Finish every job whose time has come, in due order (deterministic).

        One broken job must not break the request that happened to trigger
        settling: it is logged and, for a generation, failed and refunded.
        """
        for due, (kind, ident) in self.due.pop_due(now):
            try:
                self._settle_one(due, kind, ident)
            except Exception:
                log.exception("sim: settling %s %s failed", kind, ident)
                gen = self.generations.get(ident) if kind == "gen" else None
                if gen is not None and gen.final is None:
                    gen.fail = True
                    self._finish_generation(gen)

    def _settle_one(self, due: float, kind: str, ident: int) -> None:
        if kind == "gen":
            gen = self.generations.get(ident)
            if gen is not None and gen.final is None and gen.due_at <= due:
                self._finish_generation(gen)
        elif kind == "job":
            job = self.user_jobs.get(ident)
            if job is not None and job.final is None:
                self._finish_job(job)
        elif kind == "run":
            run = self.runs.get(ident)
            if run is not None and run.status == "running" and run.due_at <= due:
                self._finish_run(run)

    def maybe_settle(self, now: float) -> None:
        if self.due.next_due <= now:
            self.settle(now)

    # ------------------------------------------------------------------ agent core
    def patch_core(self, agent: Agent, body: Json) -> dict[str, str]:
        """Apply a PATCH of agent core; return {section: error} for sections that failed.

        Whole-request 422s (unknown field, over-long description/personality)
        change nothing; otherwise each section stands alone (→ 207 when some fail).
        """
        reject_unknown(body, CORE_FIELDS)
        desc = body.get("description")
        if isinstance(desc, str) and len(desc) > SIM_DESCRIPTION_MAX_CHARS:
            raise invalid(
                f"description is {len(desc)} chars; max {SIM_DESCRIPTION_MAX_CHARS} "
                "(put the full persona in personality)"
            )
        pers = body.get("personality")
        if isinstance(pers, str) and len(pers) > SIM_PERSONALITY_MAX_CHARS:
            raise invalid(f"personality is {len(pers)} chars; max {SIM_PERSONALITY_MAX_CHARS}")
        staged: Json = {}
        errors: dict[str, str] = {}
        for name, value in body.items():
            try:
                staged[name] = self._core_section(agent, name, value)
            except ValueError as exc:
                errors[name] = str(exc)
        if errors and not staged:
            raise invalid("; ".join(f"{k}: {v}" for k, v in errors.items()))
        agent.core.update(staged)
        if "keywords" in staged and "monitored" not in body:
            kept = [m for m in agent.core.get("monitored") or [] if m.get("item_type") != "keyword"]
            agent.core["monitored"] = kept + [
                {"handle": kw, "item_type": "keyword"} for kw in staged["keywords"]
            ]
        if "brand_name" in staged:
            agent.name = staged["brand_name"]
        return errors

    def _core_section(self, agent: Agent, name: str, value: Any) -> Any:
        def str_list(v: Any) -> list[str]:
            if not isinstance(v, list) or not all(isinstance(x, str) and x.strip() for x in v):
                raise ValueError("must be a list of non-empty strings")
            return list(v)

        def objects(v: Any, required: tuple[str, ...]) -> list[Json]:
            if not isinstance(v, list) or not all(isinstance(x, dict) for x in v):
                raise ValueError("must be a list of objects")
            for i, x in enumerate(v):
                for r in required:
                    if not isinstance(x.get(r), str) or not x[r].strip():
                        raise ValueError(f"entry {i} needs {r!r} (a non-empty string)")
            return [dict(x) for x in v]

        if name in ("brand_name", "identity_type", "goal"):
            if not isinstance(value, str) or not value.strip():
                raise ValueError("must be a non-empty string")
            return value
        if name in ("description", "personality"):
            if not isinstance(value, str):
                raise ValueError("must be a string")
            return value
        if name == "shortform":
            if not isinstance(value, bool):
                raise ValueError("must be true or false")
            return value
        if name == "target_platforms":
            plats = str_list(value)
            bad = [p for p in plats if p not in TARGET_PLATFORMS]
            if bad:
                raise ValueError(f"unsupported platform(s) {bad}; supported: {TARGET_PLATFORMS}")
            return plats
        if name == "keywords":
            return [k.lstrip("#") for k in str_list(value)]
        if name == "monitored":
            items = objects(value, ("handle", "item_type"))
            for i, m in enumerate(items):
                if m["item_type"] not in MONITORED_TYPES:
                    raise ValueError(f"entry {i}: item_type must be one of {MONITORED_TYPES}")
            return items
        if name == "research_topics":
            if isinstance(value, list):
                value = [{"topic": x} if isinstance(x, str) else x for x in value]
            return objects(value, ("topic",))
        if name == "linked_accounts":
            accts = objects(value, ("url", "platform"))
            for i, a in enumerate(accts):
                if a["platform"] not in LINKABLE_PLATFORMS:
                    raise ValueError(
                        f"entry {i}: platform {a['platform']!r} is not supported "
                        f"(supported: {', '.join(LINKABLE_PLATFORMS)})"
                    )
            return accts
        if name == "default_user_voice":
            if not isinstance(value, dict) or not isinstance(value.get("voice_id"), str):
                raise ValueError("must be an object with voice_id")
            voice = self.voices.get(value["voice_id"])
            if voice is None or (voice.agent_id is not None and voice.agent_id != agent.id):
                raise ValueError(f"voice {value['voice_id']!r} is not in this agent's library")
            return {"voice_id": voice.voice_id, "source": value.get("source", voice.source)}
        raise ValueError("unknown field")  # pragma: no cover - filtered above

    # ------------------------------------------------------------------ engines
    def _new_engine(
        self, agent: Agent, title: str, slug: str | None, aspect: str, now: float
    ) -> Engine:
        eng = Engine(
            self.next_id("engine"), agent.id, agent.workspace_id, title, slug, aspect, now, now
        )
        self.engines[eng.id] = eng
        return eng

    def add_column(
        self, eng: Engine, name: str, column_type: str, role: str, card: Json | None
    ) -> Column:
        col = Column(
            self.next_id("column"),
            eng.id,
            name,
            column_type,
            role,
            len(eng.column_ids),
            _copy(card),
        )
        self.columns[col.id] = col
        eng.column_ids.append(col.id)
        for rid in eng.row_ids:
            self._add_cell(eng, self.rows[rid], col, None)
        return col

    def _add_cell(self, eng: Engine, row: Row, col: Column, value: Any) -> Cell:
        cell = Cell(self.next_id("cell"), eng.id, row.id, col.id, value, _copy(col.default_card))
        self.cells[cell.id] = cell
        row.cell_ids[col.id] = cell.id
        return cell

    def add_row(self, eng: Engine, layer_specs: Iterable[templates.LayerSpec] = ()) -> Row:
        row = Row(self.next_id("row"), eng.id, len(eng.row_ids))
        self.rows[row.id] = row
        eng.row_ids.append(row.id)
        for cid in eng.column_ids:
            cell = self._add_cell(eng, row, self.columns[cid], None)
            if self.columns[cid].role == "final_video":
                for spec in layer_specs:
                    self.add_layer(
                        cell, spec.name, spec.layer_type, spec.source_column, spec.settings
                    )
        return row

    def add_layer(
        self,
        cell: Cell,
        name: str,
        layer_type: str,
        source_column: str | None,
        settings: Json,
        card: Json | None = None,
    ) -> Layer:
        layer = Layer(
            self.next_id("layer"),
            cell.engine_id,
            cell.id,
            name,
            layer_type,
            source_column,
            len(cell.layer_ids),
            _copy(settings) or {},
            _copy(card),
        )
        self.layers[layer.id] = layer
        cell.layer_ids.append(layer.id)
        return layer

    def clone_template(self, agent: Agent, slug: str, now: float) -> Engine:
        spec = templates.TEMPLATES_BY_SLUG.get(slug)
        if spec is None:
            raise not_found("template", slug)
        eng = self._new_engine(agent, spec.title, spec.slug, spec.aspect_ratio, now)
        for c in spec.columns:
            self.add_column(eng, c.name, c.column_type, c.role, c.card)
        self.add_row(eng, spec.layers)
        return eng

    def blank_engine(self, agent: Agent, title: str, now: float) -> Engine:
        """A custom engine: only the system final_video column and one row (ASSUMPTION)."""
        eng = self._new_engine(agent, title, None, "9:16", now)
        self.add_column(eng, "final_video", "video", "final_video", None)
        self.add_row(eng)
        return eng

    def clone_engine(self, src: Engine, agent: Agent, now: float) -> Engine:
        eng = self._new_engine(
            agent, f"{src.title} (copy)", src.template_slug, src.aspect_ratio, now
        )
        col_map: dict[int, int] = {}
        for cid in src.column_ids:
            c = self.columns[cid]
            col_map[cid] = self.add_column(eng, c.name, c.column_type, c.role, c.default_card).id
        for rid in src.row_ids:
            self._copy_row_into(eng, self.rows[rid], col_map)
        return eng

    def duplicate_row(self, eng: Engine, row: Row) -> Row:
        return self._copy_row_into(eng, row, {cid: cid for cid in eng.column_ids})

    def _copy_row_into(self, eng: Engine, src: Row, col_map: dict[int, int]) -> Row:
        row = self.add_row(eng)
        for src_col, src_cell_id in src.cell_ids.items():
            dst_col = col_map.get(src_col)
            if dst_col is None:
                continue
            s, d = self.cells[src_cell_id], self.cells[row.cell_ids[dst_col]]
            d.value, d.card = _copy(s.value), _copy(s.card)
            for lid in s.layer_ids:
                lay = self.layers[lid]
                self.add_layer(
                    d, lay.name, lay.layer_type, lay.source_column, lay.settings, lay.card
                )
        return row

    def delete_layer(self, cell: Cell, layer: Layer) -> None:
        cell.layer_ids.remove(layer.id)
        del self.layers[layer.id]
        for pos, lid in enumerate(cell.layer_ids):
            self.layers[lid].position = pos

    # ------------------------------------------------------------------ generations
    def resolve_card(self, eng: Engine, row: Row, data: Json) -> Json:
        """Replace ``{{column}}`` (and ``{{variable}}``) placeholders from the row."""
        by_name = {self.columns[c].name: c for c in eng.column_ids}
        raw_vars = data.get("variables")
        variables: Json = raw_vars if isinstance(raw_vars, dict) else {}

        def lookup(name: str, whole: bool) -> Any:
            if name in variables:
                return variables[name]
            cid = by_name.get(name)
            if cid is None:
                return None
            col, cell = self.columns[cid], self.cells[row.cell_ids[cid]]
            if col.column_type == "text":
                if cell.value in (None, ""):
                    raise invalid(
                        f"column {name!r} of row {row.id} is empty; fill or generate it first"
                    )
                return cell.value
            if not cell.output_ids:
                raise invalid(
                    f"column {name!r} of row {row.id} has no output yet; generate it first"
                )
            rid = cell.output_ids[0]
            return rid if whole else self.url(self.resources[rid].cdn_key)

        def sub(v: Any) -> Any:
            if not isinstance(v, str) or "{{" not in v:
                return v
            m = _PLACEHOLDER.fullmatch(v)
            if m:
                got = lookup(m.group(1), True)
                return v if got is None else got

            def repl(m: re.Match[str]) -> str:
                got = lookup(m.group(1), False)
                return m.group(0) if got is None else str(got)

            return _PLACEHOLDER.sub(repl, v)

        return {
            k: ([sub(x) for x in v] if isinstance(v, list) else sub(v)) for k, v in data.items()
        }

    def start_generation(
        self,
        *,
        ws: Workspace,
        eng: Engine,
        cell: Cell,
        layer: Layer | None,
        generation_type: str,
        data: Json,
        idempotency_key: str | None,
        api_key: str,
        now: float,
        manifest: Json | None = None,
    ) -> Generation:
        """Accept a generation or render: check credits, charge, and start its clock."""
        if generation_type != "render":
            for rid in templates.resource_ids(generation_type, data):
                res = self.resources.get(rid)
                if res is None or (res.workspace_id is not None and res.workspace_id != ws.id):
                    raise invalid(f"content resource {rid} not found in this workspace")
            if generation_type == "speech_from_text" and data.get("voice_method") == "my_voices":
                voice = self.voices.get(str(data.get("voice_id")))
                if voice is None or (voice.agent_id is not None and voice.agent_id != eng.agent_id):
                    raise invalid(
                        f"voice_id {data.get('voice_id')!r} is not in this agent's voice library"
                    )
        cost = price(generation_type)
        self.check_credits(ws, cost)
        kind = "render" if generation_type == "render" else generation_type
        latency = self.clock.latency(kind)
        gid = self.next_id("generation")
        out_name = f"{'render' if kind == 'render' else 'gen'}_{gid}_{self.token_hex()}"
        gen = Generation(
            id=gid,
            workspace_id=ws.id,
            engine_id=eng.id,
            row_id=cell.row_id,
            cell_id=cell.id,
            layer_id=layer.id if layer else None,
            generation_type=generation_type,
            model=data.get("model") if isinstance(data.get("model"), str) else None,
            data=data,
            credits=cost,
            created_at=now,
            started_at=now,
            pending_until=pending_until(now, latency),
            due_at=now + latency,
            fail=self.faults.roll("gen_fail"),
            out_name=out_name,
            idempotency_key=idempotency_key,
            api_key_hash=key_hash(api_key),
            updated_at=now,
            manifest=manifest,
        )
        if manifest is not None:
            manifest["generation_id"] = gid
        self.generations[gid] = gen
        self._charge(ws, cost, gid, "generate" if kind != "render" else "render")
        (layer or cell).latest_generation_id = gid
        self.due.push(gen.due_at, ("gen", gid))
        return gen

    def render_manifest(self, eng: Engine, cell: Cell) -> Json:
        row = self.rows[cell.row_id]
        values: Json = {}
        for cid in eng.column_ids:
            col = self.columns[cid]
            if col.role == "final_video":
                continue
            c = self.cells[row.cell_ids[cid]]
            values[col.name] = c.value
        layers = []
        for lid in cell.layer_ids:
            lay = self.layers[lid]
            layers.append(
                {
                    "id": lay.id,
                    "name": lay.name,
                    "layer_type": lay.layer_type,
                    "source_column": lay.source_column,
                    "position": lay.position,
                    "settings": _copy(lay.settings),
                }
            )
        return {
            "engine_id": eng.id,
            "row_id": row.id,
            "cell_id": cell.id,
            "generation_id": None,
            "template_slug": eng.template_slug,
            "aspect_ratio": eng.aspect_ratio,
            "cells": values,
            "layers": layers,
        }

    def status_of(self, gen: Generation, now: float) -> str:
        if gen.final is not None:
            return gen.final
        p = phase(gen.pending_until, gen.due_at, now)
        if p == "due":
            self._finish_generation(gen)
            return gen.final or "completed"
        return p

    def _finish_generation(self, gen: Generation) -> None:
        t = gen.due_at
        gen.updated_at = gen.completed_at = t
        ws = self.workspaces.get(gen.workspace_id)
        if (
            gen.generation_type == "media"
            and int(gen.data["content_resource_id"]) not in self.resources
        ):
            gen.fail = True  # the attached upload was deleted before the job finished
        if gen.fail:
            gen.final = "failed"
            gen.error = (
                "Render failed: compositing error"
                if gen.generation_type == "render"
                else "Generation failed: provider error"
            )
            self._refund(ws, gen.credits, gen.id, "failed")
            return
        gen.final = "completed"
        eng = self.engines.get(gen.engine_id)
        cell = self.cells.get(gen.cell_id)
        aspect = str(gen.data.get("aspect_ratio") or (eng.aspect_ratio if eng else "9:16"))
        if gen.generation_type == "text":
            gen.result = fake_text(str(gen.data.get("prompt", "")), random.Random(gen.out_name))
        else:
            gen.output_ids = [self._make_output(gen, aspect)]
        target = self.layers.get(gen.layer_id) if gen.layer_id is not None else cell
        if target is None or target.latest_generation_id != gen.id:
            return
        target.output_ids = list(gen.output_ids)
        if isinstance(target, Cell):
            target.value = (
                gen.result
                if gen.result is not None
                else self.url(self.resources[gen.output_ids[0]].cdn_key)
            )

    def _make_output(self, gen: Generation, aspect: str) -> int:
        """Register a completed generation's output as a content resource on the CDN."""
        eng = self.engines.get(gen.engine_id)
        if gen.generation_type == "media":
            # Pass-through: the cell gets its own resource pointing at the same bytes.
            src = self.resources[int(gen.data["content_resource_id"])]
            otype, ctype = src.object_type, src.content_type
            ext = Path(src.filename).suffix.lstrip(".") or "bin"
            obj = self.cdn[src.cdn_key]
        else:
            otype = templates.OUTPUT_OBJECT_TYPE[gen.generation_type] or "video"
            ctype, ext = SIM_MEDIA_TYPES[otype], SIM_MEDIA_EXT[otype]
            manifest = gen.manifest or {
                "generation_id": gen.id,
                "generation_type": gen.generation_type,
                "model": gen.model,
                "engine_id": gen.engine_id,
                "row_id": gen.row_id,
                "cell_id": gen.cell_id,
                "prompt": gen.data.get("prompt") or gen.data.get("script"),
            }
            kind = "render" if gen.generation_type == "render" else "sample"
            obj = CdnObject(kind, ctype, aspect, otype, manifest=manifest)
        cdn_key = f"outputs/{gen.out_name}.{ext}"
        self.cdn[cdn_key] = obj
        thumb_key = None
        if otype in ("video", "image"):
            thumb_key = f"thumbnails/{gen.out_name}.jpg"
            self.cdn[thumb_key] = CdnObject("thumbnail", "image/jpeg", aspect)
        rid = self.next_id("resource")
        self.resources[rid] = Resource(
            rid,
            gen.workspace_id,
            eng.agent_id if eng else None,
            f"{gen.out_name}.{ext}",
            ctype,
            otype,
            None,
            cdn_key,
            thumb_key,
            gen.due_at,
            "generation",
        )
        return rid

    def stop_generation(self, gen: Generation, now: float) -> None:
        status = self.status_of(gen, now)
        if status not in ("pending", "processing"):
            raise invalid(f"generation {gen.id} is {status}; only pending or processing ones stop")
        gen.final = "stopped"
        gen.updated_at = gen.completed_at = now
        self._refund(self.workspaces.get(gen.workspace_id), gen.credits, gen.id, "stopped")

    def continue_generation(self, gen: Generation, now: float) -> None:
        status = self.status_of(gen, now)
        if status not in ("stopped", "failed"):
            raise invalid(f"generation {gen.id} is {status}; only stopped or failed ones continue")
        ws = self.workspaces.get(gen.workspace_id)
        if ws is None:
            raise not_found("workspace", gen.workspace_id)
        self.check_credits(ws, gen.credits)
        self._charge(ws, gen.credits, gen.id, "continue")
        latency = self.clock.latency(gen.generation_type)
        gen.final = None
        gen.error = None
        gen.completed_at = None
        gen.started_at = gen.updated_at = now
        gen.pending_until = pending_until(now, latency)
        gen.due_at = now + latency
        gen.fail = self.faults.roll("gen_fail")
        gen.out_name = f"{gen.out_name.split('_')[0]}_{gen.id}_{self.token_hex()}"
        target = (
            self.layers.get(gen.layer_id)
            if gen.layer_id is not None
            else self.cells.get(gen.cell_id)
        )
        if target is not None:
            target.latest_generation_id = gen.id
        self.due.push(gen.due_at, ("gen", gen.id))

    # ------------------------------------------------------------------ uploads
    def add_upload_resource(
        self,
        *,
        ws: Workspace,
        agent: Agent,
        filename: str,
        content_type: str,
        byte_size: int,
        path: Path,
        source: str,
        now: float,
    ) -> Resource:
        rid = self.next_id("resource")
        ext = re.sub(r"[^A-Za-z0-9]", "", Path(filename).suffix)[:8] or "bin"
        cdn_key = f"uploads/{self.token_hex(16)}.{ext.lower()}"
        otype = content_type.split("/", 1)[0]
        if otype not in ("video", "image", "audio"):
            otype = "document"
        self.cdn[cdn_key] = CdnObject("file", content_type, media_kind=otype, path=path)
        res = Resource(
            rid,
            ws.id,
            agent.id,
            filename,
            content_type,
            otype,
            byte_size,
            cdn_key,
            None,
            now,
            source,
        )
        self.resources[rid] = res
        return res

    def signed_id(self, blob_id: int) -> str:
        """An ActiveStorage-style signed id: base64 JSON payload, ``--``, HMAC digest."""
        payload = base64.b64encode(
            ('{"_rails":{"data":' + str(blob_id) + ',"pur":"blob_id"}}').encode()
        ).decode()
        mac = hmac.new(self.secret, payload.encode(), hashlib.sha1).hexdigest()
        return f"{payload}--{mac}"

    def blob_for_signed_id(self, signed_id: str) -> Blob | None:
        return self.blobs_by_signed_id.get(signed_id)

    def add_blob(self, blob: Blob) -> None:
        self.blobs[blob.id] = blob
        self.blobs_by_key[blob.key] = blob
        self.blobs_by_signed_id[blob.signed_id] = blob

    @property
    def secret(self) -> bytes:
        return hashlib.sha256(f"genbatch-sim-{self.seed}".encode()).digest()

    # ------------------------------------------------------------------ user jobs
    def add_user_job(
        self,
        agent: Agent,
        job_type: str,
        data: str,
        parsed: Json,
        now: float,
        scheduled_at: float | None,
    ) -> UserJob:
        latency = self.clock.latency(job_type)
        start = (
            now if scheduled_at is None else now + max(0.0, scheduled_at - now) * self.time_scale
        )
        job = UserJob(
            id=self.next_id("user_job"),
            agent_id=agent.id,
            workspace_id=agent.workspace_id,
            user_job_type=job_type,
            data=data,
            parsed=parsed,
            created_at=now,
            pending_until=start if scheduled_at is not None else pending_until(now, latency),
            due_at=start + latency,
            scheduled_at=scheduled_at,
            post_id="7" + "".join(str(self.rng.randrange(10)) for _ in range(18))
            if job_type == "publish_content"
            else None,
            updated_at=now,
        )
        self.user_jobs[job.id] = job
        self.due.push(job.due_at, ("job", job.id))
        return job

    def job_status(self, job: UserJob, now: float) -> str:
        if job.final is not None:
            return job.final
        p = phase(job.pending_until, job.due_at, now)
        if p == "due":
            self._finish_job(job)
            return job.final or "completed"
        return p

    def _finish_job(self, job: UserJob) -> None:
        job.final = "completed"
        job.completed_at = job.updated_at = job.due_at
        if job.user_job_type == "publish_content":
            agent = self.agents.get(job.agent_id)
            handle = "unknown"
            if agent is not None:
                for acct in agent.core.get("linked_accounts") or []:
                    if acct.get("platform") == "tiktok":
                        handle = str(acct.get("url", "")).rstrip("/").rsplit("/", 1)[-1].lstrip("@")
            job.result = {
                "post_id": job.post_id,
                "platform": "tiktok",
                "post_url": f"https://www.tiktok.com/@{handle}/video/{job.post_id}",
            }
        else:
            p = job.parsed
            job.result = {
                "platform": p.get("platform"),
                "type": p.get("type"),
                "value": p.get("value"),
                "items_indexed": int(p.get("max_results", 50)),
                "monitoring": bool(p.get("monitoring", False)),
            }

    # ------------------------------------------------------------------ agent runs
    def start_run(
        self,
        agent: Agent,
        message: str,
        conversation: Conversation | None,
        now: float,
        params: Json,
    ) -> Run:
        kind = params.get("kind") or classify(message, conversation is not None)
        if conversation is None:
            conversation = Conversation(
                self.next_id("conversation"), agent.id, title_for(message), now, updated_at=now
            )
            self.conversations[conversation.id] = conversation
        if kind == "research":
            latency = self.clock.fixed(SIM_RESEARCH_LATENCY[str(params.get("depth", "default"))])
        else:
            latency = self.clock.latency("agent_run")
        run = Run(
            self.next_id("run"),
            agent.id,
            conversation.id,
            kind,
            message,
            now,
            now + latency,
            params,
            updated_at=now,
        )
        self.runs[run.id] = run
        conversation.run_ids.append(run.id)
        conversation.updated_at = now
        self._add_message(conversation, "user", message, run.id, now)
        self.due.push(run.due_at, ("run", run.id))
        return run

    def _add_message(
        self,
        conv: Conversation,
        role: str,
        text: str,
        run_id: int | None,
        now: float,
        idea_ids: list[int] | None = None,
    ) -> Message:
        msg = Message(
            self.next_id("message"), conv.id, role, text, run_id, now, list(idea_ids or [])
        )
        self.messages[msg.id] = msg
        conv.message_ids.append(msg.id)
        return msg

    def _finish_run(self, run: Run) -> None:
        t = run.due_at
        run.updated_at = t
        agent = self.agents.get(run.agent_id)
        conv = self.conversations.get(run.conversation_id)
        if agent is None or conv is None:
            run.status, run.result = "failed", {"error": "agent or conversation was deleted"}
            return
        rng = random.Random(f"{self.seed}-run-{run.id}")
        if run.kind == "action" and run.pending_action is None:
            run.status = "awaiting_approval"
            run.pending_action = pending_action(run.message)
            self._add_message(
                conv,
                "assistant",
                f"I need your approval to {run.pending_action['type']}: {run.message}",
                run.id,
                t,
            )
            return
        run.status = "completed"
        run.completed_at = t
        if run.kind == "ideas":
            n = idea_count(run.message)
            ideas = [self._new_idea(agent, conv, run, rng, i, t) for i in range(n)]
            text = f"Here are {n} content ideas grounded in this week's trends."
            msg = self._add_message(conv, "assistant", text, run.id, t, [i["id"] for i in ideas])
            run.result = {
                "type": "ideas",
                "message_id": msg.id,
                "idea_ids": msg.idea_ids,
                "ideas": ideas,
            }
        elif run.kind == "refine":
            changed = refine(self._conversation_ideas(conv), run.message, agent, rng, t)
            msg = self._add_message(
                conv,
                "assistant",
                f"Updated {len(changed)} idea(s).",
                run.id,
                t,
                [i["id"] for i in changed],
            )
            run.result = {
                "type": "refine",
                "message_id": msg.id,
                "idea_ids": msg.idea_ids,
                "ideas": changed,
            }
        elif run.kind == "preferences":
            pref = run.message.split(":", 1)[1].strip()
            agent.preferences.append(pref)
            msg = self._add_message(conv, "assistant", f"Got it — I'll remember: {pref}", run.id, t)
            run.result = {
                "type": "preferences",
                "message_id": msg.id,
                "preferences": list(agent.preferences),
            }
        elif run.kind == "research":
            found = research(
                str(run.params.get("topic", run.message)),
                str(run.params.get("depth", "default")),
                agent,
                rng,
            )
            msg = self._add_message(conv, "assistant", found["summary"], run.id, t)
            run.result = {"type": "research", "message_id": msg.id, **found}
        elif run.kind == "action":
            assert run.pending_action is not None
            approved = bool(run.pending_action.get("approved"))
            verdict = "Done" if approved else "Cancelled"
            msg = self._add_message(
                conv, "assistant", f"{verdict}: {run.pending_action['type']}", run.id, t
            )
            run.result = {
                "type": "action",
                "message_id": msg.id,
                "action": run.pending_action,
                "executed": approved,
            }
        else:
            reply = chat_reply(run.message, agent, rng)
            msg = self._add_message(conv, "assistant", reply, run.id, t)
            run.result = {"type": "chat", "message_id": msg.id, "reply": reply}

    def approve_run(self, run: Run, approved: bool, now: float) -> None:
        if run.status != "awaiting_approval" or run.pending_action is None:
            raise invalid(
                f"run {run.id} is {run.status}; only awaiting_approval runs can be approved"
            )
        run.pending_action["approved"] = approved
        run.status = "running"
        run.updated_at = now
        run.due_at = now + self.clock.latency("agent_run") / 4
        self.due.push(run.due_at, ("run", run.id))

    def run_status(self, run: Run, now: float) -> str:
        if run.status == "running" and now >= run.due_at:
            self._finish_run(run)
        return run.status

    def _new_idea(
        self, agent: Agent, conv: Conversation, run: Run, rng: random.Random, i: int, t: float
    ) -> Json:
        idea = make_idea(
            agent, run.message, rng, i, [self.url(k) for k in self.cdn if k.startswith("assets/")]
        )
        idea.update(
            id=self.next_id("idea"),
            agent_id=agent.id,
            conversation_id=conv.id,
            run_id=run.id,
            status="generated",
            created_at=iso(t),
            updated_at=iso(t),
        )
        self.ideas[idea["id"]] = idea
        return idea

    def _conversation_ideas(self, conv: Conversation) -> list[Json]:
        seen: dict[int, Json] = {}
        for mid in conv.message_ids:
            for iid in self.messages[mid].idea_ids:
                if iid in self.ideas:
                    seen[iid] = self.ideas[iid]
        return list(seen.values())

    # ------------------------------------------------------------------ ledger
    def ledger(self, now: float) -> Json:
        self.settle(now)
        c = self.counters
        return {
            "requests": {
                "by_route": dict(c.by_route),
                "by_status": dict(c.by_status),
                "total": sum(c.by_status.values()),
                "log": [
                    {"t": t, "method": m, "route": r, "status": s, "api_key_hash": k}
                    for t, m, r, s, k in c.log
                ],
            },
            "generations": [
                {
                    "id": g.id,
                    "engine_id": g.engine_id,
                    "cell_id": g.cell_id,
                    "row_id": g.row_id,
                    "layer_id": g.layer_id,
                    "type": g.generation_type,
                    "model": g.model,
                    "status": self.status_of(g, now),
                    "credits": g.credits,
                    "idempotency_key": g.idempotency_key,
                    "created_at": g.created_at,
                    "completed_at": g.completed_at,
                }
                for g in self.generations.values()
            ],
            "credits": {
                "charged": self.charged,
                "refunded": self.refunded,
                "balance": sum(
                    w.credit_balance
                    for w in self.workspaces.values()
                    if w.owner_id == SIM_DEMO_USER_ID
                ),
                "balances": {str(w.id): w.credit_balance for w in self.workspaces.values()},
                "events": list(self.credit_events),
            },
            "uploads": [
                {
                    "id": b.id,
                    "via": "direct_upload",
                    "key": b.key,
                    "filename": b.filename,
                    "byte_size": b.byte_size,
                    "checksum": b.checksum,
                    "content_type": b.content_type,
                    "uploaded": b.uploaded,
                    "content_resource_id": b.resource_id,
                    "created_at": b.created_at,
                }
                for b in self.blobs.values()
            ]
            + [
                {
                    "id": rid,
                    "via": "multipart",
                    "filename": self.resources[rid].filename,
                    "byte_size": self.resources[rid].byte_size,
                    "content_type": self.resources[rid].content_type,
                    "uploaded": True,
                    "content_resource_id": rid,
                    "created_at": self.resources[rid].created_at,
                }
                for rid in self.multipart_uploads
                if rid in self.resources
            ],
            "user_jobs": [
                {
                    "id": j.id,
                    "agent_id": j.agent_id,
                    "type": j.user_job_type,
                    "status": self.job_status(j, now),
                    "scheduled_time": iso(j.scheduled_at) if j.scheduled_at is not None else None,
                    "post_id": j.result.get("post_id") if j.result else None,
                    "created_at": j.created_at,
                    "completed_at": j.completed_at,
                }
                for j in self.user_jobs.values()
            ],
            "runs": [
                {
                    "id": r.id,
                    "agent_id": r.agent_id,
                    "kind": r.kind,
                    "status": r.status,
                    "created_at": r.created_at,
                }
                for r in self.runs.values()
            ],
            "config": {
                "rate": self.bucket.rate,
                "burst": self.bucket.burst,
                "faults": self.faults.spec,
                "time_scale": self.time_scale,
                "seed": self.seed,
            },
        }


_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_]+)\s*\}\}")


def _as_int(v: object) -> int | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, str) and v.isdigit():
        return int(v)
    return None


def _copy(v: Any) -> Any:
    """Deep-copy JSON-like data (cards, settings) so engines never share state."""
    if isinstance(v, dict):
        return {k: _copy(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_copy(x) for x in v]
    return v


# --------------------------------------------------------------------------
# Agent content synthesis: what the Ideas Engine, research and text models "say".
# Deterministic per seeded RNG, shaped by the agent's core and preferences.
# --------------------------------------------------------------------------
CORE_FIELDS = (
    "brand_name",
    "description",
    "identity_type",
    "goal",
    "target_platforms",
    "shortform",
    "keywords",
    "monitored",
    "research_topics",
    "linked_accounts",
    "personality",
    "default_user_voice",
)
_VIDEO_TYPES = tuple(k for k in templates.VIDEO_TYPE_IDS if k != "any")
_PLATFORMS = (
    "tiktok",
    "instagram",
    "youtube",
    "reddit",
    "x",
    "hacker_news",
    "perplexity",
    "gemini",
)
_HOOKS = (
    "Nobody talks about {kw}, so I will.",
    "This {kw} spot changed how I eat forever.",
    "I tried every {kw} in town so you don't have to.",
    "The {kw} secret locals keep to themselves.",
    "Stop scrolling: {kw} is about to get better.",
    "Three {kw} rules I learned the hard way.",
)
_ANGLES = ("the hidden gem", "the 2am test", "locals only", "worth the line")
_QUESTION_HOOKS = (
    "Would you wait an hour for {kw}?",
    "Is this the best {kw} you've never heard of?",
)


def blank_core(name: str) -> Json:
    """A fresh agent's core: every documented field, empty."""
    return {
        "brand_name": name,
        "description": "",
        "identity_type": "brand",
        "goal": "growth",
        "target_platforms": [],
        "shortform": True,
        "keywords": [],
        "monitored": [],
        "research_topics": [],
        "linked_accounts": [],
        "personality": "",
        "default_user_voice": {"voice_id": templates.DEFAULT_VOICE_ID, "source": "public"},
    }


def classify(message: str, in_conversation: bool) -> str:
    """What a run message asks for: preferences, an approvable action, refine, ideas or chat."""
    text = message.strip().lower()
    if text.startswith("remember:"):
        return "preferences"
    if APPROVAL_WORDS.search(text):
        return "action"
    if in_conversation and re.search(r"\bidea\s*#?\d+", text):
        return "refine"
    if "idea" in text:
        return "ideas"
    return "chat"


def title_for(message: str) -> str:
    first = message.strip().splitlines()[0] if message.strip() else "New conversation"
    return first[:60]


def pending_action(message: str) -> Json:
    m = APPROVAL_WORDS.search(message)
    return {
        "type": (m.group(1).lower() if m else "action"),
        "description": message,
        "approved": None,
    }


def idea_count(message: str) -> int:
    from genbatch._constants import SIM_IDEAS_DEFAULT, SIM_IDEAS_MAX

    m = re.search(r"\b(\d{1,3})\b", message)
    n = int(m.group(1)) if m else SIM_IDEAS_DEFAULT
    return max(1, min(SIM_IDEAS_MAX, n))


def _keywords(agent: Agent) -> list[str]:
    kws = [str(k) for k in agent.core.get("keywords") or []]
    return kws or [str(agent.core.get("brand_name") or agent.name).lower()]


def _statement_only(agent: Agent) -> bool:
    prefs = " ".join(agent.preferences).lower()
    return "statement hook" in prefs or "never question" in prefs


def _hook(agent: Agent, rng: random.Random, kw: str, punchy: bool = False) -> str:
    pool = _HOOKS if _statement_only(agent) else _HOOKS + _QUESTION_HOOKS
    hook = rng.choice(pool).format(kw=kw)
    return hook.rstrip(".?") + "!" if punchy and not hook.endswith("?") else hook


def make_idea(
    agent: Agent, message: str, rng: random.Random, index: int, asset_urls: list[str]
) -> Json:
    """One idea with every documented field (Step 2)."""
    kws = _keywords(agent)
    kw = kws[index % len(kws)]
    m = re.search(r"under\s+(\d+)\s*s", message.lower())
    cap = int(m.group(1)) if m else 45
    duration = max(5, min(cap, rng.randint(12, 45)))
    vtype = rng.choice(_VIDEO_TYPES)
    hook = _hook(agent, rng, kw)
    brand = agent.core.get("brand_name") or agent.name
    script = (
        f"{hook} Here is what {brand} found this week about {kw}. "
        f"First, the spot everyone is posting about. Then, the detail nobody films. "
        f"Follow for more {kw}."
    )
    assets = []
    for j in range(2):
        url = asset_urls[(index * 2 + j) % len(asset_urls)] if asset_urls else ""
        start = round(rng.uniform(0, 4), 1)
        assets.append(
            {
                "url": url,
                "type": "clip" if j == 0 else "image",
                "description": f"{kw} {'b-roll' if j == 0 else 'still'} from research",
                "usage": "opening b-roll under the hook"
                if j == 0
                else "cutaway while the script explains",
                "clip_range": {"start": start, "end": round(start + min(3.0, duration / 3), 1)}
                if j == 0
                else None,
            }
        )
    sources = [
        {
            "platform": (p := rng.choice(_PLATFORMS)),
            "url": f"https://www.{p}.com/trend/{kw.replace(' ', '-')}-{rng.randint(1000, 9999)}",
            "title": f"{kw} is trending on {p}",
            "views": rng.randint(20_000, 4_000_000),
        }
        for _ in range(2)
    ]
    prefs = (
        f" Applies your preferences: {'; '.join(agent.preferences)}." if agent.preferences else ""
    )
    return {
        "title": f"{kw.title()}: {_ANGLES[index % len(_ANGLES)]}",
        "hook": hook,
        "full_script": script,
        "video_type": vtype,
        "video_type_id": templates.VIDEO_TYPE_IDS[vtype],
        "estimated_duration": duration,
        "aspect_ratio": "9:16",
        "selected_assets": assets,
        "project_manifest": {
            "total_duration": duration,
            "timeline_layers": [
                {"type": "video", "source": assets[0]["url"], "start": 0.0, "end": float(duration)},
                {"type": "text", "content": hook, "start": 0.0, "end": 3.0},
                {"type": "audio", "source": "voiceover", "start": 0.0, "end": float(duration)},
            ],
        },
        "inspiration_sources": sources,
        "rationale": f"{kw} is rising on {sources[0]['platform']} this week and matches "
        f"{brand}'s keywords and monitored sources.{prefs}",
    }


def refine(
    ideas: list[Json], message: str, agent: Agent, rng: random.Random, t: float
) -> list[Json]:
    """Apply "make idea N …", "change idea N to <type>", "drop idea N" to a conversation's ideas."""
    changed: dict[int, Json] = {}
    for sentence in re.split(r"[.;\n]+", message):
        m = re.search(r"\bidea\s*#?(\d+)", sentence, re.IGNORECASE)
        if not m or not 1 <= int(m.group(1)) <= len(ideas):
            continue
        idea = ideas[int(m.group(1)) - 1]
        low = sentence.lower()
        if re.search(r"\b(drop|remove)\b", low):
            idea["status"] = "rejected"
        elif "hook" in low:
            kw = _keywords(agent)[0]
            idea["hook"] = _hook(agent, rng, kw, punchy=True)
            idea["full_script"] = idea["hook"] + " " + idea["full_script"].split(" ", 8)[-1]
        else:
            for vt in _VIDEO_TYPES:
                if vt.replace("_", " ") in low or vt in low:
                    idea["video_type"], idea["video_type_id"] = vt, templates.VIDEO_TYPE_IDS[vt]
                    break
            else:
                idea["title"] = idea["title"] + " (revised)"
        idea["updated_at"] = iso(t)
        changed[idea["id"]] = idea
    return list(changed.values())


def research(topic: str, depth: str, agent: Agent, rng: random.Random) -> Json:
    n = {"quick": 3, "default": 5, "deep": 8}.get(depth, 5)
    findings = [
        {
            "title": f"{topic}: finding {i + 1}",
            "summary": f"Signal {i + 1} on {topic}, seen across {rng.randint(3, 40)} recent posts.",
            "source_url": f"https://news.example.com/{rng.randint(10_000, 99_999)}",
            "platform": rng.choice(_PLATFORMS),
            "relevance": round(rng.uniform(0.5, 1.0), 2),
        }
        for i in range(n)
    ]
    brand = agent.core.get("brand_name") or agent.name
    summary = f"{len(findings)} findings on {topic!r} ({depth} research) relevant to {brand}."
    return {"topic": topic, "depth": depth, "findings": findings, "summary": summary}


def chat_reply(message: str, agent: Agent, rng: random.Random) -> str:
    brand = agent.core.get("brand_name") or agent.name
    opener = rng.choice(["Good question.", "On it.", "Noted."])
    return f"{brand} here. {opener} You said: {message[:200]}"


def fake_text(prompt: str, rng: random.Random) -> str:
    """What a text model returns: a hook for hook-ish prompts, a short script otherwise."""
    words = [w for w in re.findall(r"[A-Za-z$0-9']+", prompt) if len(w) > 3][:6] or ["this"]
    topic = " ".join(words[-3:])
    if "hook" in prompt.lower() and "script" not in prompt.lower():
        return rng.choice(_HOOKS).format(kw=topic)
    return (
        f"{rng.choice(_HOOKS).format(kw=topic)} Here's the story in thirty seconds. "
        f"It starts with {topic}, it ends with you hitting follow."
    )
