"""Every guess this client makes where ``GEN-API.md`` is silent — in one place.

Each item is marked ``ASSUMPTION:`` and, where it drives behaviour, is a value
or function the rest of the client imports, so someone with real API access
corrects it here and nowhere else.  (The simulator keeps its own list.)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

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

# ASSUMPTION: "1 GB" (direct upload max) means 1 GiB and "50 MB" (multipart)
# means 50 * 10**6 bytes; see CLIENT_*_MAX_BYTES in ``_constants``.

# ASSUMPTION: the generation statuses are exactly pending, processing,
# completed, failed, stopped; user jobs pending, processing, completed, failed;
# agent runs running, completed, failed, awaiting_approval.  Unknown statuses
# are treated as "still running".
GENERATION_DONE: Final = frozenset({"completed"})
GENERATION_FAILED: Final = frozenset({"failed", "stopped"})
USER_JOB_DONE: Final = frozenset({"completed"})
USER_JOB_FAILED: Final = frozenset({"failed", "stopped", "cancelled", "canceled"})
RUN_DONE: Final = frozenset({"completed", "awaiting_approval"})
RUN_FAILED: Final = frozenset({"failed", "stopped", "cancelled", "canceled", "rejected"})
PREVIEW_DONE: Final = frozenset({"completed", "ready", "succeeded"})
PREVIEW_FAILED: Final = frozenset({"failed", "error"})

# ASSUMPTION: the generate POST may omit the card, in which case the cell's
# saved creation card is used (the "3-call pattern": PATCH card, POST
# generate, GET status).  A card, when given, is validated locally.

# ASSUMPTION: a cell's creation card is written with
# ``PATCH …/cells/:cell_id`` and body ``{"spreadsheet_cell": {"creation_card":
# {"generation_type", "data"}}}`` (the reference says "PATCH card or cell
# value" without showing the card body).

# ASSUMPTION: bodies the reference does not show (agent create/update,
# organizations, tokens, voice design steps, rows/columns/layers create and
# mass updates, automation config, asset folders) are passed through as JSON
# objects without local validation beyond "is a mapping".

# ASSUMPTION: voice design/clone/preview, ElevenLabs connect and test take JSON
# bodies; the ElevenLabs key travels as ``{"api_key": …}`` and is registered
# for redaction like our own key.

# ASSUMPTION: ``POST /v1/autocontentengine/:id/clone?agent_id=`` takes an
# optional ``{"agent_id": …}`` body naming the agent to clone into (the query's
# ``agent_id`` names the source engine's agent).

# ASSUMPTION: train_social and the user-jobs endpoints live on the api host
# (the reference's curl uses api.gen.pro although the list says "agent.gen.pro
# → monitoring"); everything under ``/agent/…`` and ``/research`` lives on the
# agent host.

# ASSUMPTION: an agent run's status endpoint returns ``run_id`` or ``id``; a
# run in ``awaiting_approval`` ends a wait() (it needs a human, not time).

# ASSUMPTION: publish targets beyond TikTok ("Instagram / YouTube coming")
# use the same data shape; ``media_type`` is "VIDEO" unless told otherwise.

# ASSUMPTION: ``GET /v1/organizations/:id`` carries ``credit_balance`` as a
# number; a generation may carry ``credits`` (what it cost).

# ASSUMPTION: API endpoints never redirect; a 3xx is reported as an error rather
# than followed (following would forward X-API-Key to wherever it points).
# CDN downloads carry no key and do follow redirects.
