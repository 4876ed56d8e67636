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

from collections.abc import Iterator, Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Annotated, Any, Final, Literal, TypeAlias

from pydantic import (
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
from genbatch.client.redact import redact

CLIENT_DIRECT_UPLOAD_MAX_BYTES: Final = 1 << 30


def _id_to_str(value: Any) -> Any:
    if isinstance(value, bool):
        return value  # let validation reject it
    if isinstance(value, int):
        return str(value)
    return value


#: A server id, read as an opaque string whether the JSON held an int or a str.
Id = Annotated[str, BeforeValidator(_id_to_str)]
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


class Organization(APIModel):
    id: Id
    name: str | None = None
    #: ASSUMPTION: a number (see assumptions.py).
    credit_balance: float | None = None


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


class UserJobCreated(APIModel):
    user_job_id: Id


class UserJob(APIModel):
    id: Id
    user_job_type: str | None = None
    status: str = "pending"
    data: Any = None
    result: dict[str, Any] | None = None
    error: Any = None

    @property
    def post_id(self) -> str | None:
        """The social post id of a completed publish job."""
        value = (self.result or {}).get("post_id")
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
    id: Id
    name: str | None = None
    column_type: str | None = None
    role: str | None = None
    position: int | None = None


class CreationCardInfo(APIModel):
    """A card as the server stores it (lenient; the typed cards are for sending)."""

    generation_type: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)


class OutputResource(APIModel):
    id: Id | None = None
    url: str | None = None
    thumbnail_url: str | None = None
    object_type: str | None = None


class Layer(APIModel):
    id: Id
    cell_id: Id | None = None
    name: str | None = None
    layer_type: str | None = None
    source_column: str | None = None
    position: int | None = None
    settings: dict[str, Any] | None = None


class Cell(APIModel):
    id: Id
    spreadsheet_row_id: Id | None = None
    spreadsheet_column_id: Id | None = None
    column_name: str | None = None
    value: Any = None
    creation_card: CreationCardInfo | None = None
    #: The cell's LATEST generation (docs/design.md §3) — how a restart reconciles.
    generation_id: Id | None = None
    generation_status: str | None = None
    output_resources: list[OutputResource] = Field(default_factory=list)
    layers: list[Layer] = Field(default_factory=list)


class Row(APIModel):
    id: Id
    position: int | None = None
    cells: list[Cell] = Field(default_factory=list)


class Engine(APIModel):
    """An Auto Content Engine (vidsheet) with its nested data."""

    id: Id
    title: str | None = None
    agent_id: Id | None = None
    template_slug: str | None = None
    aspect_ratio: str | None = None
    spreadsheet_columns: list[Column] = Field(default_factory=list)
    spreadsheet_rows: list[Row] = Field(default_factory=list)
    spreadsheet_cells: list[Cell] = Field(default_factory=list)
    layers: list[Layer] = Field(default_factory=list)

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
    title: str = Field(min_length=1)


class CloneRequest(RequestModel):
    agent_id: RefId


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
    """Answer of generate / layer generate / render."""

    generation_id: Id
    status: str = "pending"


class Generation(APIModel):
    id: Id
    status: str
    generation_type: str | None = None
    model: str | None = None
    engine_id: Id | None = None
    cell_id: Id | None = None
    layer_id: Id | None = None
    row_id: Id | None = None
    #: ASSUMPTION: what the generation cost, when the server says.
    credits: float | None = None
    result: Any = None
    output_resources: list[OutputResource] = Field(default_factory=list)
    error: Any = None
    created_at: str | None = None
    updated_at: str | None = None

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


# --------------------------------------------------------------------------
# Content resources, assets, direct upload, automation, variables
# --------------------------------------------------------------------------
class ContentResource(APIModel):
    id: Id
    url: str | None = None
    content_type: str | None = None
    byte_size: int | None = None
    filename: str | None = None
    object_type: str | None = None


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
    id: Id | None = None
    key: str | None = None
    filename: str | None = None
    byte_size: int | None = None
    checksum: str | None = None
    content_type: str | None = None
    signed_id: str
    direct_upload: DirectUploadTarget


class AutomationConfig(APIModel):
    pass


class GlobalVariable(APIModel):
    id: Id | None = None
    name: str | None = None
    value: Any = None
