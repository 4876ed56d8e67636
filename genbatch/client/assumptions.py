"""Every guess this client makes where ``GEN-API.md`` is silent — in one place.

Each item is marked ``ASSUMPTION:`` and, where it drives behaviour, is a value
or function the rest of the client imports, so someone with real API access
corrects it here and nowhere else.  (The simulator keeps its own list.)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from genbatch.client.routes import Dialect

# ASSUMPTION: ids may be JSON integers or strings.  We read both and keep them
# as opaque strings; when sending an id back in a JSON body, a string of plain
# decimal digits (no leading zero) goes out as an integer, as the reference's
# examples show (``"image_resource_id": 4821``).  Anything else is sent as is
# (e.g. ``"{{avatar}}"`` placeholders, ``"run_abc"``).


def id_for_body(value: int | str) -> int | str:
    """The JSON form of an id inside a request body."""
    digits = isinstance(value, str) and value.isascii() and value.isdigit()
    if digits and (value == "0" or not str(value).startswith("0")):
        return int(value)
    return value


# ASSUMPTION: list endpoints (e.g. "list templates (paginated)") answer either
# with a bare JSON array or with an object holding the array under one of these
# keys (Rails-style envelopes).  The client returns just the list.
LIST_KEYS: Final[Sequence[str]] = (
    "data",
    "items",
    "results",
    "records",
    "templates",
    "projects",
    "agents",
    "workspaces",
    "organizations",
    "voices",
    "conversations",
    "messages",
    "runs",
    "ideas",
    "rows",
    "columns",
    "content_resources",
    "assets",
    "global_variables",
    "persisted_tokens",
    "tokens",
)


def unwrap_list(data: Any) -> list[Any]:
    """The list inside a list response, whatever envelope it came in."""
    if isinstance(data, list):
        return data
    if isinstance(data, dict):
        for key in LIST_KEYS:
            value = data.get(key)
            if isinstance(value, list):
                return value
        lists = [v for v in data.values() if isinstance(v, list)]
        if len(lists) == 1:
            return lists[0]
    return []


# ASSUMPTION: a generate POST accepts an ``Idempotency-Key`` header (same key →
# same generation, no new charge).  The simulator honours it; the real API may
# silently ignore it.  So the client attaches one to every side-effecting POST
# (the caller's, or a fresh one per call reused across that call's retries) but
# only *relies* on it — resends after an ambiguous failure — when the caller
# supplied it (the caller then owns reconciliation, e.g. the engine's journal).
IDEMPOTENCY_HEADER: Final = "Idempotency-Key"

# ASSUMPTION: a 429 is decided before the request is processed (an edge rate
# limiter), so resending a side-effecting POST after a 429 cannot pay twice.
# ``RetryPolicy.unsafe_retry_on_429`` turns this off.

# ASSUMPTION: GEN documents no rate-limit headers (rate limiting is "not
# currently enforced").  A server that publishes its limit is read the IETF
# draft's way (draft-ietf-httpapi-ratelimit-headers): ``RateLimit-Policy``
# with a quota ``q`` per window ``w`` seconds (``60;w=1`` or ``"p";q=60;w=1``);
# the most restrictive policy wins.  ``X-RateLimit-Limit`` is not read as a
# rate: servers use it for a bucket size or a count per unknown window.
RATE_POLICY_HEADER: Final = "RateLimit-Policy"

# ASSUMPTION: "1 GB" (direct upload max) means 1 GiB and "50 MB" (multipart)
# means 50 * 10**6 bytes; see CLIENT_*_MAX_BYTES in ``_constants``.

# ASSUMPTION: the generation statuses are exactly pending, processing,
# completed, failed, stopped; user jobs pending, processing, completed, failed;
# agent runs running, completed, failed, awaiting_approval.  Unknown statuses
# are treated as "still running".
# ASSUMPTION: a generation waiting in a workspace's queue reads pending and
# one GEN is running reads processing: the engine's poll census counts a
# server-side queue by it, and the generations cap grows when early-polled
# jobs (probes) read processing.
GENERATION_DONE: Final = frozenset({"completed"})
GENERATION_FAILED: Final = frozenset({"failed", "stopped"})
USER_JOB_DONE: Final = frozenset({"completed"})
USER_JOB_FAILED: Final = frozenset({"failed", "stopped", "cancelled", "canceled"})
# ASSUMPTION: a monitoring train_social job (monitoring: true) never completes:
# it stays processing, and its result shows once the first scrape is in.
USER_JOB_ACTIVE: Final = frozenset({"pending", "processing"})
RUN_DONE: Final = frozenset({"completed", "awaiting_approval"})
RUN_FAILED: Final = frozenset({"failed", "stopped", "cancelled", "canceled", "rejected"})
PREVIEW_DONE: Final = frozenset({"completed", "ready", "succeeded"})
PREVIEW_FAILED: Final = frozenset({"failed", "error"})

# ASSUMPTION: the generate POST may omit the card, in which case the cell's
# saved creation card is used (the "3-call pattern": PATCH card, POST
# generate, GET status).  A card, when given, is validated locally.

# ASSUMPTION: the canonical generation-type names (``text``,
# ``image_from_text``, ``video_from_text``, ``video_from_image``,
# ``video_from_ingredients``, ``speech_from_text``, ``lipsync``, ``captions``,
# ``media``) are what the client sends: the vendor's docs call them the names
# to use.  The vendor's SDK and MCP server translate them to internal names
# (``text_generation``, ``eleven_labs``, …) before sending, and no source shows
# which names the generate route accepts (docs/dialect.md §3, open question).
# A generation read may name its type either way (``user_job_type`` today,
# ``generation_type`` in the teaching document); the client only reports it.

# ASSUMPTION: where a cell keeps its creation card.  The teaching document says
# "PATCH card or cell value" without a body; no current source has a
# ``creation_card`` field.  The wire's cell takes ``value``,
# ``additional_attributes``, ``default_user_job_attributes: {data}`` (docs/
# dialect.md §2, "we follow the WIRE").  So, today, the client writes a card as
# ``{"spreadsheet_cell": {"default_user_job_attributes": {"generation_type",
# "data"}}}`` — the wire names only ``data``; the type rides beside it because
# a blank cell has none — and, in the teaching document's dialect, as
# ``{"spreadsheet_cell": {"creation_card": {"generation_type", "data"}}}``.
# Today's cell read shows no card; the client reads one from a
# ``creation_card`` field, else from ``additional_attributes`` when that holds
# a ``creation_card`` or a ``generation_type`` (the card pages keep a cell's
# default model settings there), else reports none.
CARD_ATTRIBUTE_KEYS: Final = ("generation_type", "data")

# ASSUMPTION: bodies the reference does not show (agent create/update,
# organizations, tokens, voice design steps, rows/columns/layers create and
# mass updates, automation config, asset folders) are passed through as JSON
# objects without local validation beyond "is a mapping".

# ASSUMPTION: voice design/clone/preview, ElevenLabs connect and test take JSON
# bodies; the ElevenLabs key travels as ``{"api_key": …}`` and is registered
# for redaction like our own key.

# Engine clone (docs/dialect.md §2 "engine clone body"): today the body's
# optional ``target_agent_id`` names the destination agent and the query's
# ``agent_id`` the source engine's agent.  ASSUMPTION: a teaching-document
# server (which shows ``?agent_id=`` only) takes the destination as the body's
# ``agent_id``.

# ASSUMPTION: the teaching document shows no body for reorder
# (``update_positions``); today's wire takes ``{"id_to_position": {"<id>":
# position}}`` (docs/dialect.md §2).  For a teaching-document server the client
# sends the same order as ``{"positions": [{"id", "position"}]}``.

# ASSUMPTION: train_social and the user-jobs endpoints live on the api host
# (the reference's curl uses api.gen.pro although the list says "agent.gen.pro
# → monitoring"); everything under ``/agent/…`` and ``/research`` lives on the
# agent host.

# ASSUMPTION: an agent run's status endpoint returns ``run_id`` or ``id``; a
# run in ``awaiting_approval`` ends a wait() (it needs a human, not time).

# ASSUMPTION: publish targets beyond TikTok ("Instagram / YouTube coming")
# use the same data shape; ``media_type`` is "VIDEO" unless told otherwise.

# Organization balance (docs/dialect.md §4 "credits / balance"): today
# ``credit`` (number) and ``available_credit: {generic, aura}``; ``generic``
# pays for API work.  The usable balance is ``available_credit.generic``, else
# ``credit``, else — ASSUMPTION, the teaching document only says "includes
# credit balance" — a number under ``credit_balance``.  A generation's cost is
# ``execution_cost`` (string or number); ASSUMPTION: a teaching-document server
# names it ``credits``.

# --------------------------------------------------------------------------
# The dialect (engine prefix) of a session — docs/dialect.md §1.
# --------------------------------------------------------------------------
# ASSUMPTION: how a session learns which engine prefix the server serves.
# The client starts with today's ``/v1/vidsheet``.  While the session's prefix
# is unconfirmed, a 404 on an engine-family route is sent once more with the
# other prefix (``/v1/autocontentengine``); the first prefix that answers with
# a status that proves the route exists is remembered for the session (per
# client instance) and used from then on.  A 404 after that is a plain
# NotFoundError.  Safe for paid POSTs: a 404 means nothing ran (the route did
# not match), so resending under the other prefix — with the same
# Idempotency-Key — cannot pay twice.  The live API answers the old prefix 404
# and the new one 401 without a key (docs/dialect.md §1), so routing happens
# before auth there; a 401, 429, 5xx or transport error proves nothing about
# the route (a server may answer those before routing) and leaves the prefix
# unconfirmed.
DIALECT_FIRST: Final[Dialect] = "today"
_PREFIX_PROOF_ERRORS: Final = frozenset({400, 403, 405, 409, 410, 412, 415, 422, 428})


def prefix_proves(status: int) -> bool:
    """Whether an answer with ``status`` proves the route exists under the prefix tried."""
    return 200 <= status < 300 or status in _PREFIX_PROOF_ERRORS


# Stop after the end (docs/dialect.md §4 "stop twice / stop after the end"):
# 422 ``job_cannot_be_stopped`` (errors guide) or ``validation_error`` (the
# generations page).  ASSUMPTION: either one means "already over", confirmed
# by a read of the generation; ``stop`` then returns that generation.
STOP_ALREADY_OVER_CODES: Final = frozenset({"job_cannot_be_stopped", "validation_error"})

# ASSUMPTION (shared contract): a generation is listed in its cell's
# ``user_jobs`` from the moment it is created (pending included), and
# ``default_user_job`` is the cell's newest generation.  "Newest" = greatest
# id (ids compared as numbers when they are decimal digits, else the one
# listed last).  A teaching-document cell carries ``generation_id`` /
# ``generation_status`` instead; they are the fallback.  This is what a
# restarted run reads to learn whether a generate POST sent before a crash
# took effect (docs/design.md §5).

# ASSUMPTION: API endpoints never redirect; a 3xx is reported as an error rather
# than followed (following would forward X-API-Key to wherever it points).
# CDN downloads carry no key and do follow redirects.

# ASSUMPTION: a completed render read again (``GET /v1/generations/{id}``)
# gives a URL that serves now; the one an earlier run noted may have expired.
# A row resumed between its render and its download or publish reads the
# render once more for it (docs/design.md §3), falling back to the noted one.
