"""Pydantic v2 models of the GEN API's objects and request bodies.

Responses tolerate fields we do not know (``extra="allow"``): the server may
add fields any day and that must not break a batch.  Request bodies reject
unknown fields and out-of-range values (``extra="forbid"``, Literals taken
from the reference), so a typo or a wrong model name fails locally before it
costs a round trip — or credits.  Ids are read as opaque strings.

One concept, kept in one module although it is long: the API's vocabulary,
which the resource modules and the engine read together.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from types import MappingProxyType
from typing import Annotated, Any, Final, Literal, NamedTuple, TypeAlias

import orjson
from pydantic import (
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    SecretStr,
    TypeAdapter,
    model_validator,
)

from genbatch.cards import (
    CaptionsModel,
    ImageAspect,
    ImageModel,
    IngredientsModel,
    LipsyncModel,
    TextModel,
    VideoAspect,
    VideoDuration,
    VideoFromImageModel,
    VideoFromTextModel,
    VoiceMethod,
)
from genbatch.cards import GenerationType as GenerationType  # re-exported here
from genbatch.client import assumptions as A
from genbatch.client.dialect import ByDialect
from genbatch.client.redact import redact
from genbatch.errors import RequestValidationError

CLIENT_DIRECT_UPLOAD_MAX_BYTES: Final = 1 << 30


def _id_to_str(value: Any) -> Any:
    if isinstance(value, bool):
        return value  # let validation reject it
    if isinstance(value, int):
        return str(value)
    return value


def _number_or_none(value: Any) -> Any:
    """A cost sent as a number or a numeric string (docs/dialect.md §2); else None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return value
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


#: A server id, read as an opaque string whether the JSON held an int or a str.
Id = Annotated[str, BeforeValidator(_id_to_str)]
#: A credit amount: a JSON number or a numeric string (anything else reads as None).
Credits = Annotated[float | None, BeforeValidator(_number_or_none)]
#: An id sent in a request body (see ``assumptions.id_for_body``).
RefId = Annotated[int | str, PlainSerializer(A.id_for_body)]


class APIModel(BaseModel):
    """Base of response models: unknown fields kept, reprs scrubbed of secrets."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, protected_namespaces=())

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        # A presigned URL must not leak through repr()/str() of a model.
        for name, value in super().__repr_args__():
            yield name, (redact(value) if isinstance(value, str) else value)


class RequestModel(BaseModel):
    """Base of request bodies: unknown fields are an error before anything is sent."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    def to_body(self) -> dict[str, Any]:
        """The JSON body (None-valued optional fields omitted)."""
        return self.model_dump(mode="json", exclude_none=True, by_alias=True)


class PatchModel(RequestModel):
    """A partial update: only the fields the caller set are sent (None included)."""

    def to_body(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_unset=True, by_alias=True)


# --------------------------------------------------------------------------
# Step 1 — agent setup
# --------------------------------------------------------------------------
class User(APIModel):
    id: Id
    email: str | None = None
    name: str | None = None


class Workspace(APIModel):
    id: Id
    name: str | None = None


class AvailableCredit(APIModel):
    """Today's split balance: ``generic`` pays for API work, ``aura`` does not."""

    generic: Credits = None
    aura: Credits = None


class Organization(APIModel):
    """A workspace; ``balance`` is what API work can spend (docs/dialect.md §4)."""

    id: Id
    name: str | None = None
    #: Today: the total balance (a number).
    credit: Credits = None
    #: Today: ``{generic, aura}``.
    available_credit: AvailableCredit | None = None
    #: The teaching document's era (ASSUMPTION, see assumptions.py).
    credit_balance: Credits = None

    @property
    def balance(self) -> float | None:
        """``available_credit.generic``, else ``credit``, else ``credit_balance``."""
        if self.available_credit is not None and self.available_credit.generic is not None:
            return self.available_credit.generic
        return self.credit if self.credit is not None else self.credit_balance


class Agent(APIModel):
    id: Id
    name: str | None = None
    workspace_id: Id | None = None


class MonitoredItem(RequestModel):
    handle: str
    item_type: Literal["account", "hashtag", "keyword"]


class ResearchTopic(RequestModel):
    topic: str


class LinkedAccount(RequestModel):
    url: str
    platform: str


class DefaultVoice(RequestModel):
    voice_id: str
    source: str = "public"


class AgentCoreUpdate(PatchModel):
    """``PATCH /v1/agents/:agent_id/core`` — send only what changes."""

    brand_name: str | None = None
    description: str | None = Field(default=None, max_length=500)
    identity_type: str | None = None
    goal: str | None = None
    target_platforms: list[str] | None = None
    shortform: bool | None = None
    keywords: list[str] | None = None
    monitored: list[MonitoredItem] | None = None
    research_topics: list[ResearchTopic] | None = None
    linked_accounts: list[LinkedAccount] | None = None
    personality: str | None = Field(default=None, max_length=20000)
    default_user_voice: DefaultVoice | None = None


class AgentCore(APIModel):
    brand_name: str | None = None
    description: str | None = None
    identity_type: str | None = None
    goal: str | None = None
    target_platforms: list[str] | None = None
    shortform: bool | None = None
    keywords: list[str] | None = None
    monitored: list[dict[str, Any]] | None = None
    research_topics: list[dict[str, Any]] | None = None
    linked_accounts: list[dict[str, Any]] | None = None
    personality: str | None = None
    default_user_voice: dict[str, Any] | None = None


class AgentCoreResult(APIModel):
    """The core after a PATCH; ``partial`` is True on ``207 Multi-Status``."""

    partial: bool = False
    core: AgentCore = Field(default_factory=AgentCore)


class Voice(APIModel):
    voice_id: str | None = None
    id: Id | None = None
    name: str | None = None
    source: str | None = None


class VoicePreview(APIModel):
    """An async TTS preview job."""

    job_id: Id | None = None
    id: Id | None = None
    status: str = "pending"
    audio_url: str | None = None
    error: Any = None

    @property
    def key(self) -> str:
        return self.job_id or self.id or ""


class PersistedToken(APIModel):
    """An API key record; ``token`` (shown once, on create) is a SecretStr."""

    id: Id
    name: str | None = None
    token: SecretStr | None = None


# --------------------------------------------------------------------------
# Step 2 — ideas, runs, conversations, research, user jobs
# --------------------------------------------------------------------------
class AgentRunRequest(RequestModel):
    agent_id: RefId
    message: str = Field(min_length=1)
    conversation_id: RefId | None = None


class ResearchRequest(RequestModel):
    agent_id: RefId
    topic: str = Field(min_length=1)
    depth: Literal["quick", "default", "deep"] = "default"


class AgentRun(APIModel):
    """A run as started (``run_id``, ``conversation_id``) or as polled."""

    run_id: Id | None = None
    id: Id | None = None
    conversation_id: Id | None = None
    status: str = "running"
    firebase_path: str | None = None
    result: Any = None
    error: Any = None

    @property
    def key(self) -> str:
        return self.run_id or self.id or ""


class Conversation(APIModel):
    id: Id
    title: str | None = None
    pinned: bool | None = None
    agent_id: Id | None = None


class ConversationUpdate(PatchModel):
    title: str | None = None
    pinned: bool | None = None


class SelectedAsset(APIModel):
    url: str | None = None
    type: str | None = None
    description: str | None = None
    usage: str | None = None
    clip_range: Any = None


IdeaStatus: TypeAlias = Literal[
    "generated",
    "approve_to_create",
    "ready_for_review",
    "approved_to_post",
    "posted",
    "change_idea",
    "change_video",
    "rejected",
]

#: Video type ids from the reference (Step 2: "0=Any, 1=Talking Avatar, ..."); read-only.
VIDEO_TYPE_IDS: Final[Mapping[int, str]] = MappingProxyType(
    {
        0: "any",
        1: "talking_avatar",
        2: "green_screen",
        3: "montage",
        4: "text_driven",
        5: "pov_object",
        6: "narrated_vo",
        8: "split_screen",
        9: "skit",
    }
)


class Idea(APIModel):
    id: Id | None = None
    title: str | None = None
    hook: str | None = None
    full_script: str | None = None
    video_type: str | None = None
    video_type_id: int | None = None
    estimated_duration: Any = None
    aspect_ratio: str | None = None
    selected_assets: list[SelectedAsset] = Field(default_factory=list)
    project_manifest: dict[str, Any] | None = None
    inspiration_sources: list[Any] = Field(default_factory=list)
    rationale: str | None = None
    status: str | None = None


class Message(APIModel):
    id: Id | None = None
    role: str | None = None
    content: Any = None
    ideas: list[Idea] = Field(default_factory=list)


class PublishData(RequestModel):
    """The ``data`` of a publish_content user job (sent as a JSON *string*)."""

    platform: Literal["tiktok", "instagram", "youtube"] = "tiktok"
    media_url: str = Field(min_length=1)
    description: str | None = None
    schedule_type: Literal["now", "scheduled"] = "now"
    scheduled_time: datetime | None = None
    media_type: str = "VIDEO"

    @model_validator(mode="after")
    def _schedule(self) -> PublishData:
        if self.schedule_type == "scheduled" and self.scheduled_time is None:
            raise ValueError("schedule_type 'scheduled' needs scheduled_time")
        if self.scheduled_time is not None and self.scheduled_time.tzinfo is None:
            raise ValueError("scheduled_time must carry a timezone (e.g. ...Z)")
        return self

    def to_body(self) -> dict[str, Any]:
        body = super().to_body()
        if self.scheduled_time is not None:
            body["scheduled_time"] = self.scheduled_time.isoformat().replace("+00:00", "Z")
        return body


_TRAIN_TYPES: dict[str, frozenset[str]] = {
    "tiktok": frozenset({"username", "hashtag", "keyword"}),
    "instagram": frozenset({"username", "hashtag"}),
    "youtube": frozenset({"username", "hashtag", "keyword"}),
}


class TrainSocialData(RequestModel):
    """The ``data`` of a train_social user job (scrape into the knowledge base)."""

    platform: Literal["tiktok", "instagram", "youtube"]
    type: Literal["username", "hashtag", "keyword"]
    value: str = Field(min_length=1)
    days: int | None = Field(default=None, ge=1)
    max_results: int | None = Field(default=None, ge=1)
    monitoring: bool | None = None

    @model_validator(mode="after")
    def _supported(self) -> TrainSocialData:
        if self.type not in _TRAIN_TYPES[self.platform]:
            raise ValueError(f"{self.platform} does not support type {self.type!r}")
        return self


#: The ``user_job_type`` of a publish job and of a knowledge-base scrape (both dialects).
PUBLISH_JOB_TYPE: Final = "publish_content"
TRAIN_SOCIAL_JOB_TYPE: Final = "train_social"


#: Form fields of a train_social job (multipart, as the teaching document shows).
TRAIN_SOCIAL_FORM_TYPE: Final = "user_job[user_job_type]"
TRAIN_SOCIAL_FORM_DATA: Final = "user_job[data]"


def publish_body(data: PublishData) -> dict[str, Any]:
    """``POST /v1/user_jobs``: ``{user_job_type: publish_content, data: "<JSON string>"}``."""
    return {
        "user_job_type": PUBLISH_JOB_TYPE,
        "data": orjson.dumps(data.to_body()).decode(),
    }


class UserJobCreated(APIModel):
    """``{user_job_id}`` (OA/LF); the SDK types the reply ``{id, user_job_type, status}``."""

    user_job_id: Id = Field(validation_alias=AliasChoices("user_job_id", "id"))
    status: str | None = None


class UserJob(APIModel):
    id: Id
    user_job_type: str | None = None
    status: str = "pending"
    data: Any = None
    #: An object (a publish job's ``post_id``) or, on some jobs, a plain string.
    result: Any = None
    #: Today's reason a job failed.
    failed_reason: Any = None
    #: The teaching document's era.
    error: Any = None

    @property
    def failure(self) -> Any:
        """Why the job failed: ``failed_reason``, else ``error``."""
        return self.failed_reason if self.failed_reason is not None else self.error

    @property
    def post_id(self) -> str | None:
        """The social post id of a completed publish job."""
        value = self.result.get("post_id") if isinstance(self.result, dict) else None
        return None if value is None else str(value)


# --------------------------------------------------------------------------
# Step 3/4 — templates, engines, rows, columns, cells, layers
# --------------------------------------------------------------------------
class Template(APIModel):
    slug: str
    title: str | None = None
    description: str | None = None
    tags: list[str] = Field(default_factory=list)
    cover: Any = None
    recent_generated_contents: list[Any] = Field(default_factory=list)


class Column(APIModel):
    """A column.  Today it is ``{id, title, type, column_role, position}`` (the clone
    example says ``role``); the teaching document's era ``{id, name, column_type, role}``.
    """

    id: Id
    name: str | None = Field(default=None, validation_alias=AliasChoices("title", "name"))
    column_type: str | None = Field(
        default=None, validation_alias=AliasChoices("type", "column_type")
    )
    role: str | None = Field(default=None, validation_alias=AliasChoices("column_role", "role"))
    position: int | None = None

    @property
    def title(self) -> str | None:
        """Today's name of ``name``."""
        return self.name


class CreationCardInfo(APIModel):
    """A card as the server stores it (lenient; the typed cards are for sending)."""

    generation_type: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)


class OutputResource(APIModel):
    id: Id | None = None
    url: str | None = None
    thumbnail_url: str | None = None
    #: Written both ``"Video"`` and ``"video"`` (docs/dialect.md §2).
    object_type: str | None = None
    type: str | None = None


class Generation(APIModel):
    """A generation (a ``user_job`` in today's vocabulary).

    Today: ``id, status, user_job_type, result, failed_reason, output_resources,
    execution_cost`` and no timestamps (docs/dialect.md §2).  The teaching
    document's era named the type ``generation_type``, the reason ``error`` and
    the cost ``credits``; ``kind``, ``failure`` and ``cost`` read either.
    """

    id: Id
    status: str
    #: Today's type name (an internal name such as ``text_generation``).
    user_job_type: str | None = None
    generation_type: str | None = None
    model: str | None = None
    engine_id: Id | None = None
    cell_id: Id | None = None
    layer_id: Id | None = None
    row_id: Id | None = None
    #: What it cost: a number or a numeric string.
    execution_cost: Credits = None
    credits: Credits = None
    #: A plain string (text) or an object, or null.
    result: Any = None
    output_resources: list[OutputResource] = Field(default_factory=list)
    failed_reason: Any = None
    error: Any = None
    created_at: str | None = None
    updated_at: str | None = None

    @property
    def kind(self) -> str | None:
        """The type as the server names it (``user_job_type``, else ``generation_type``)."""
        return self.user_job_type or self.generation_type

    @property
    def cost(self) -> float | None:
        """What the generation cost, when the server says (``execution_cost``, else ``credits``)."""
        return self.execution_cost if self.execution_cost is not None else self.credits

    @property
    def failure(self) -> Any:
        """Why it failed (``failed_reason``, else ``error``)."""
        return self.failed_reason if self.failed_reason is not None else self.error

    @property
    def done(self) -> bool:
        return self.status in A.GENERATION_DONE or self.status in A.GENERATION_FAILED

    @property
    def failed(self) -> bool:
        return self.status in A.GENERATION_FAILED

    @property
    def video_url(self) -> str | None:
        """URL of the first output resource (a render's MP4)."""
        return self.output_resources[0].url if self.output_resources else None


class GenerationRef(NamedTuple):
    """A cell's latest generation: its id and status (status None if not reported)."""

    id: str
    status: str | None


def _id_order(ids: Sequence[str]) -> int:
    """Index of the newest id: the greatest decimal id, else the last listed (ASSUMPTION)."""
    if all(i.isascii() and i.isdigit() for i in ids):
        return max(range(len(ids)), key=lambda n: int(ids[n]))
    return len(ids) - 1


def _card_in_attributes(attrs: Any) -> Any:
    """A creation card kept in ``additional_attributes`` (ASSUMPTION, assumptions.py)."""
    if not isinstance(attrs, dict):
        return None
    nested = attrs.get("creation_card")
    if isinstance(nested, dict):
        return nested
    if isinstance(attrs.get("generation_type"), str):
        return {k: attrs[k] for k in A.CARD_ATTRIBUTE_KEYS if k in attrs}
    return None


def _newest(history: Sequence[Generation]) -> GenerationRef | None:
    if not history:
        return None
    newest = history[_id_order([g.id for g in history])]
    return GenerationRef(newest.id, newest.status)


class Layer(APIModel):
    """A video layer.  Today: ``{id, name, position, type (sound/text/clip),
    additional_attributes, default_user_job, user_jobs, *_ts}``; the teaching
    document's era: ``layer_type``, ``settings``, ``generation_id``."""

    id: Id
    cell_id: Id | None = None
    name: str | None = None
    layer_type: str | None = Field(
        default=None, validation_alias=AliasChoices("type", "layer_type")
    )
    source_column: str | None = None
    position: int | None = None
    #: Today's ``additional_attributes``; the old simulator's ``settings``.
    settings: dict[str, Any] | None = Field(
        default=None, validation_alias=AliasChoices("additional_attributes", "settings")
    )
    default_user_job: Generation | dict[str, Any] | None = None
    user_jobs: list[Generation] = Field(default_factory=list)
    generation_id: Id | None = None
    generation_status: str | None = None

    @property
    def latest_generation(self) -> GenerationRef | None:
        """The layer's newest generation (history today, ``generation_id`` before)."""
        history = list(self.user_jobs)
        if isinstance(self.default_user_job, Generation):
            history.append(self.default_user_job)
        latest = _newest(history)
        if latest is None and self.generation_id is not None:
            return GenerationRef(self.generation_id, self.generation_status)
        return latest


class Cell(APIModel):
    """A cell of either dialect.

    Today: ``id, value, additional_attributes, cell_role, column_id,
    spreadsheet_row_id, created_at_ts, updated_at_ts (ms), default_user_job,
    user_jobs (the generation history), video_layers``.  The teaching
    document's era: ``spreadsheet_column_id, column_name, creation_card,
    generation_id, generation_status, layers``.  Both column ids are filled
    from whichever came; ``column_name`` is filled by the engine read from the
    column's title; ``layers`` holds ``video_layers``.
    """

    id: Id
    spreadsheet_row_id: Id | None = None
    column_id: Id | None = None
    spreadsheet_column_id: Id | None = None
    column_name: str | None = None
    cell_role: str | None = None
    value: Any = None
    additional_attributes: dict[str, Any] | None = None
    creation_card: CreationCardInfo | None = None
    #: Today: the generation the cell displays (a generation object), or null.
    #: The teaching-document-era simulator kept a publish job's settings here.
    default_user_job: Generation | dict[str, Any] | None = None
    #: Today: every generation of the cell (its history).
    user_jobs: list[Generation] = Field(default_factory=list)
    #: The cell's latest generation: read :attr:`latest_generation`; these two
    #: carry the same value (the teaching document's names, kept for callers).
    generation_id: Id | None = None
    generation_status: str | None = None
    output_resources: list[OutputResource] = Field(default_factory=list)
    layers: list[Layer] = Field(
        default_factory=list, validation_alias=AliasChoices("video_layers", "layers")
    )
    created_at_ts: int | None = None
    updated_at_ts: int | None = None

    @model_validator(mode="before")
    @classmethod
    def _card_from_attributes(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("creation_card") is None:
            card = _card_in_attributes(data.get("additional_attributes"))
            if card is not None:
                data = {**data, "creation_card": card}
        return data

    @model_validator(mode="after")
    def _fill(self) -> Cell:
        if self.column_id is None:
            self.column_id = self.spreadsheet_column_id
        if self.spreadsheet_column_id is None:
            self.spreadsheet_column_id = self.column_id
        latest = self._from_history()
        if latest is not None:
            self.generation_id, self.generation_status = latest
        return self

    def _from_history(self) -> GenerationRef | None:
        history = list(self.user_jobs)
        if isinstance(self.default_user_job, Generation):
            history.append(self.default_user_job)
        return _newest(history)

    @property
    def latest_generation(self) -> GenerationRef | None:
        """The cell's newest generation (id, status): from its history today
        (``user_jobs`` and ``default_user_job``), else the teaching document's
        ``generation_id``/``generation_status``; None when the cell has none.
        What a restarted run reads to learn whether a POST took effect."""
        latest = self._from_history()
        if latest is not None:
            return latest
        if self.generation_id is None:
            return None
        return GenerationRef(self.generation_id, self.generation_status)

    @property
    def default_generation(self) -> Generation | None:
        """The generation the cell displays (today's ``default_user_job``), if any."""
        job = self.default_user_job
        return job if isinstance(job, Generation) else None

    @property
    def video_layers(self) -> list[Layer]:
        """Today's name of ``layers``."""
        return self.layers


class Row(APIModel):
    id: Id
    position: int | None = None
    #: Today's ``spreadsheet_cells``; the SDK's and the old simulator's ``cells``.
    cells: list[Cell] = Field(
        default_factory=list, validation_alias=AliasChoices("spreadsheet_cells", "cells")
    )

    @property
    def spreadsheet_cells(self) -> list[Cell]:
        return self.cells


class Engine(APIModel):
    """An Auto Content Engine (vidsheet) with its nested data.

    Today (template clone, engine read): ``spreadsheet_columns[]`` and
    ``spreadsheet_rows[]`` each holding its ``spreadsheet_cells[]``; the SDK
    names them ``columns``/``rows``/``cells``; the teaching document's era
    listed every cell (and layer) flat.  After validation
    ``spreadsheet_cells`` lists every cell in either case, each cell's
    ``column_name`` is its column's title and ``layers`` every cell's layers,
    so ``{c.column_name: c for c in engine.spreadsheet_cells}`` works on both.
    """

    id: Id = Field(validation_alias=AliasChoices("id", "engine_id"))
    title: str | None = None
    slug: str | None = None
    uuid: str | None = None
    status: str | None = None
    project_type: str | None = None
    agent_id: Id | None = None
    template_slug: str | None = None
    aspect_ratio: str | None = None
    spreadsheet_columns: list[Column] = Field(
        default_factory=list, validation_alias=AliasChoices("spreadsheet_columns", "columns")
    )
    spreadsheet_rows: list[Row] = Field(
        default_factory=list, validation_alias=AliasChoices("spreadsheet_rows", "rows")
    )
    spreadsheet_cells: list[Cell] = Field(
        default_factory=list, validation_alias=AliasChoices("spreadsheet_cells", "cells")
    )
    layers: list[Layer] = Field(default_factory=list)

    @model_validator(mode="after")
    def _flatten(self) -> Engine:
        if not self.spreadsheet_cells:
            for row in self.spreadsheet_rows:
                for cell in row.cells:
                    if cell.spreadsheet_row_id is None:
                        cell.spreadsheet_row_id = row.id
                    self.spreadsheet_cells.append(cell)
        titles = {c.id: c.name for c in self.spreadsheet_columns}
        for cell in self.spreadsheet_cells:
            if cell.column_name is None and cell.column_id is not None:
                cell.column_name = titles.get(cell.column_id)
        if not self.layers:
            self.layers = [lay for cell in self.spreadsheet_cells for lay in cell.layers]
        return self

    def column(self, name: str) -> Column | None:
        return next((c for c in self.spreadsheet_columns if c.name == name), None)

    def columns_by_role(self, role: str) -> list[Column]:
        return [c for c in self.spreadsheet_columns if c.role == role]

    def cell(self, column: str, row_id: str | None = None) -> Cell | None:
        """The cell of column ``column`` (name) in row ``row_id`` (default: first row)."""
        col = self.column(column)
        if col is None:
            return None
        if row_id is None and self.spreadsheet_rows:
            row_id = self.spreadsheet_rows[0].id
        for cell in self.spreadsheet_cells:
            col_match = cell.spreadsheet_column_id == col.id or (
                cell.spreadsheet_column_id is None and cell.column_name == column
            )
            if col_match and (row_id is None or cell.spreadsheet_row_id == row_id):
                return cell
        return None

    def final_video_cell(self, row_id: str | None = None) -> Cell | None:
        """The cell of the ``final_video``-role column (the one that renders)."""
        cols = self.columns_by_role("final_video")
        return self.cell(cols[0].name, row_id) if cols and cols[0].name else None


class EngineCreate(RequestModel):
    """``POST /v1/vidsheet``: ``{"spreadsheet": {"title"}}`` (both dialects; the WIRE
    also takes it flat)."""

    title: str = Field(min_length=1)

    def to_body(self) -> dict[str, Any]:
        return {"spreadsheet": super().to_body()}


class CloneRequest(RequestModel):
    agent_id: RefId


# --------------------------------------------------------------------------
# Engine-route bodies, per dialect where the two spell them differently
# (docs/dialect.md §2; the teaching document shows none of these but the value).
# --------------------------------------------------------------------------
#: A new order: ids in the order wanted, or ``{id: position}``.
Positions: TypeAlias = Sequence[str | int] | Mapping[str | int, int]


def engine_clone_body(target_agent_id: str | int | None) -> ByDialect[dict[str, Any] | None]:
    """Today ``{target_agent_id}``; ASSUMPTION (assumptions.py) ``{agent_id}`` before."""
    if target_agent_id is None:
        return ByDialect(None, None)
    target = A.id_for_body(target_agent_id)
    return ByDialect({"target_agent_id": target}, {"agent_id": target})


def positions_body(order: Positions) -> ByDialect[dict[str, Any]]:
    """Today ``{id_to_position: {"<id>": n}}``; ASSUMPTION ``{positions: [{id, position}]}``."""
    if isinstance(order, Mapping):
        pairs = list(order.items())
    elif isinstance(order, str | bytes) or not isinstance(order, Sequence):
        raise RequestValidationError("positions: give ids in order or a mapping id -> position")
    else:
        pairs = [(ident, n) for n, ident in enumerate(order)]
    for ident, n in pairs:
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise RequestValidationError(f"positions: {ident} needs a non-negative integer")
    return ByDialect(
        {"id_to_position": {str(ident): n for ident, n in pairs}},
        {"positions": [{"id": A.id_for_body(ident), "position": n} for ident, n in pairs]},
    )


def cell_value_body(value: Any) -> dict[str, Any]:
    """``PATCH …/cells/{id}``: ``{"spreadsheet_cell": {"value": …}}`` (both dialects)."""
    return {"spreadsheet_cell": {"value": value}}


def cell_card_body(card: Mapping[str, Any]) -> ByDialect[dict[str, Any]]:
    """A cell's creation card: today under ``default_user_job_attributes``; before,
    ``creation_card`` (ASSUMPTION, assumptions.py)."""
    card = dict(card)
    return ByDialect(
        {"spreadsheet_cell": {"default_user_job_attributes": card}},
        {"spreadsheet_cell": {"creation_card": card}},
    )


def cells_mass_update_body(cells: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """``{"spreadsheet_cells": [{id, value?, additional_attributes?, …}]}`` (the WIRE)."""
    items: list[dict[str, Any]] = []
    for item in cells:
        if not isinstance(item, Mapping) or "id" not in item:
            raise RequestValidationError("cells.mass_update: every item needs an id")
        items.append({**item, "id": A.id_for_body(item["id"])})
    return {"spreadsheet_cells": items}


def set_default_user_job_body(user_job_id: str | int, *, is_user_job: bool) -> dict[str, Any]:
    """The WIRE's ``{default_user_job: {user_job_id, is_user_job}}`` (OA/D: ``{user_job_id}``)."""
    return {
        "default_user_job": {"user_job_id": A.id_for_body(user_job_id), "is_user_job": is_user_job}
    }


# --------------------------------------------------------------------------
# Creation cards (typed per generation_type, values from the reference)
# --------------------------------------------------------------------------
class TextData(RequestModel):
    prompt: str = Field(min_length=1)
    model: TextModel | None = None
    variables: dict[str, str] | None = None


class ImageFromTextData(RequestModel):
    prompt: str = Field(min_length=1)
    model: ImageModel | None = None
    aspect_ratio: ImageAspect | None = None


class VideoFromTextData(RequestModel):
    prompt: str = Field(min_length=1)
    model: VideoFromTextModel | None = None
    aspect_ratio: VideoAspect | None = None
    duration: VideoDuration | None = None
    negative_prompt: str | None = None


class VideoFromImageData(RequestModel):
    image_resource_id: RefId
    image_tail_resource_id: RefId | None = None
    prompt: str | None = None
    model: VideoFromImageModel | None = None
    #: ASSUMPTION: same ratios and durations as video_from_text.
    aspect_ratio: VideoAspect | None = None
    duration: VideoDuration | None = None


class VideoFromIngredientsData(RequestModel):
    prompt: str | None = None
    model: IngredientsModel | None = None
    asset_resource_ids: list[RefId] = Field(min_length=1)
    aspect_ratio: VideoAspect | None = None
    duration: VideoDuration | None = None


class SpeechFromTextData(RequestModel):
    script: str = Field(min_length=1)
    voice_method: VoiceMethod = "my_voices"
    voice_id: str | None = None
    audio_resource_id: RefId | None = None
    enhance_voice: bool | None = None
    speed: float | None = Field(default=None, gt=0, le=4)
    #: ASSUMPTION: design_voice takes a free-text gender/language description.
    gender: str | None = None
    language: str | None = None
    description: str | None = None

    @model_validator(mode="after")
    def _method_inputs(self) -> SpeechFromTextData:
        if self.voice_method == "my_voices" and not self.voice_id:
            raise ValueError("voice_method 'my_voices' needs voice_id")
        if self.voice_method == "clone_voice" and self.audio_resource_id is None:
            raise ValueError("voice_method 'clone_voice' needs audio_resource_id")
        return self


class LipsyncData(RequestModel):
    model: LipsyncModel | None = None
    video_resource_id: RefId
    audio_resource_id: RefId


class CaptionsData(RequestModel):
    model: CaptionsModel | None = None
    source_resource_id: RefId


class MediaData(RequestModel):
    content_resource_id: RefId


class TextCard(RequestModel):
    generation_type: Literal["text"] = "text"
    data: TextData


class ImageFromTextCard(RequestModel):
    generation_type: Literal["image_from_text"] = "image_from_text"
    data: ImageFromTextData


class VideoFromTextCard(RequestModel):
    generation_type: Literal["video_from_text"] = "video_from_text"
    data: VideoFromTextData


class VideoFromImageCard(RequestModel):
    generation_type: Literal["video_from_image"] = "video_from_image"
    data: VideoFromImageData


class VideoFromIngredientsCard(RequestModel):
    generation_type: Literal["video_from_ingredients"] = "video_from_ingredients"
    data: VideoFromIngredientsData


class SpeechFromTextCard(RequestModel):
    generation_type: Literal["speech_from_text"] = "speech_from_text"
    data: SpeechFromTextData


class LipsyncCard(RequestModel):
    generation_type: Literal["lipsync"] = "lipsync"
    data: LipsyncData


class CaptionsCard(RequestModel):
    generation_type: Literal["captions"] = "captions"
    data: CaptionsData


class MediaCard(RequestModel):
    generation_type: Literal["media"] = "media"
    data: MediaData


#: Any creation card; ``generation_type`` picks the variant.
GenerationCard = Annotated[
    TextCard
    | ImageFromTextCard
    | VideoFromTextCard
    | VideoFromImageCard
    | VideoFromIngredientsCard
    | SpeechFromTextCard
    | LipsyncCard
    | CaptionsCard
    | MediaCard,
    Field(discriminator="generation_type"),
]
GENERATION_CARD: TypeAdapter[GenerationCard] = TypeAdapter(GenerationCard)


class GenerationStarted(APIModel):
    """Answer of generate / layer generate / render: 201 ``{generation_id, status}``."""

    generation_id: Id = Field(validation_alias=AliasChoices("generation_id", "id"))
    status: str = "pending"


# --------------------------------------------------------------------------
# Content resources, assets, direct upload, automation, variables
# --------------------------------------------------------------------------
class ContentResource(APIModel):
    """A content resource.  Today's create answers 201 ``{content_resource: {id, url,
    thumbnail_url, file_name, content_type}, generator}`` (docs/dialect.md §2, direct
    upload); reads and the teaching document's era give the object itself."""

    id: Id
    url: str | None = None
    thumbnail_url: str | None = None
    content_type: str | None = None
    byte_size: int | None = None
    filename: str | None = Field(
        default=None, validation_alias=AliasChoices("filename", "file_name")
    )
    object_type: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _unwrap(cls, data: Any) -> Any:
        if isinstance(data, dict) and "id" not in data:
            inner = data.get("content_resource")
            if isinstance(inner, dict):
                rest = {k: v for k, v in data.items() if k != "content_resource"}
                return {**rest, **inner}
        return data


class AssetItem(APIModel):
    id: Id | None = None
    name: str | None = None
    asset_type: str | None = None
    url: str | None = None
    folder_id: Id | None = None


class AssetFolder(APIModel):
    id: Id
    name: str | None = None
    parent_id: Id | None = None


#: Multipart field of a small upload (``POST /v1/content_resources``).
CONTENT_RESOURCE_FILE_FIELD: Final = "content_resource[file]"


def content_resource_body(signed_id: str) -> dict[str, Any]:
    """Attach a direct-uploaded blob: ``{"content_resource": {"file": signed_id}}``."""
    return {"content_resource": {"file": signed_id}}


def direct_upload_body(blob: DirectUploadBlob) -> dict[str, Any]:
    """``POST /v1/direct_upload``: ``{"blob": {filename, byte_size, checksum, content_type}}``."""
    return {"blob": blob.to_body()}


class DirectUploadBlob(RequestModel):
    """``POST /v1/direct_upload`` ``{"blob": …}`` (ActiveStorage)."""

    filename: str = Field(min_length=1)
    byte_size: int = Field(gt=0, le=CLIENT_DIRECT_UPLOAD_MAX_BYTES)
    #: base64 of the raw 16-byte MD5 (``openssl md5 -binary f | base64``).
    checksum: str = Field(min_length=24, max_length=24)
    content_type: str = Field(min_length=1)


class DirectUploadTarget(APIModel):
    """Where and how to PUT the bytes.  ``url`` is presigned: never log it raw."""

    url: str
    headers: dict[str, str] = Field(default_factory=dict)


class DirectUpload(APIModel):
    """The direct-upload answer: OA/D nest ``direct_upload: {url, headers}``;
    the SDK's type puts ``url``/``headers`` at the top level (both accepted)."""

    id: Id | None = None
    key: str | None = None
    filename: str | None = None
    byte_size: int | None = None
    checksum: str | None = None
    content_type: str | None = None
    signed_id: str
    direct_upload: DirectUploadTarget

    @model_validator(mode="before")
    @classmethod
    def _flat(cls, data: Any) -> Any:
        if isinstance(data, dict) and "direct_upload" not in data and "url" in data:
            target = {"url": data["url"], "headers": data.get("headers") or {}}
            rest = {k: v for k, v in data.items() if k not in ("url", "headers")}
            data = {**rest, "direct_upload": target}
        return data


class AutomationConfig(APIModel):
    pass


class GlobalVariable(APIModel):
    id: Id | None = None
    name: str | None = None
    value: Any = None
