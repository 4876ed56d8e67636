"""Which GEN dialect the simulator speaks: today's API or the teaching document's.

Today's API (the default) serves the engine routes under ``/v1/vidsheet``; with
``SimConfig.legacy_paths`` the simulator speaks the teaching document instead:
engine routes under ``/v1/autocontentengine`` and that document's object shapes.
Route modules declare every engine route once, under :data:`TODAY_PREFIX`;
:func:`served` moves them under the legacy prefix when asked, so no handler is
written twice.  The prefix not served answers 404 ``not_found`` before any
authentication, as a live request to the removed prefix does (docs/dialect.md
§1), and on the old prefix the message names the new one.

Generation types: the canonical names of the teaching document, and the
internal names the vendor's SDK and MCP server translate them to before sending
(docs/dialect.md §3).  Both are accepted; today's API reports the internal name
as a generation's ``user_job_type``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

from aiohttp import web

from genbatch.sim.entities import ApiError

__all__ = [
    "LEGACY_PREFIX",
    "TODAY_PREFIX",
    "canonical_type",
    "engine_prefix",
    "internal_type",
    "prefix_refusal",
    "served",
]

#: Where today's API serves the engine (vidsheet) routes.
TODAY_PREFIX: Final = "/v1/vidsheet"
#: Where the teaching document puts them (removed from the live API).
LEGACY_PREFIX: Final = "/v1/autocontentengine"


def engine_prefix(legacy: bool) -> str:
    return LEGACY_PREFIX if legacy else TODAY_PREFIX


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


def served(routes: Iterable[web.AbstractRouteDef], legacy: bool) -> list[web.AbstractRouteDef]:
    """``routes`` as this dialect serves them: engine routes moved under its prefix."""
    if not legacy:
        return list(routes)
    out: list[web.AbstractRouteDef] = []
    for r in routes:
        if isinstance(r, web.RouteDef) and _under(r.path, TODAY_PREFIX):
            path = LEGACY_PREFIX + r.path[len(TODAY_PREFIX) :]
            r = web.RouteDef(r.method, path, r.handler, r.kwargs)
        out.append(r)
    return out


# ASSUMPTION: the prefix not served 404s before auth (docs/sim-assumptions.md, "prefixes").
def prefix_refusal(path: str, legacy: bool) -> ApiError | None:
    """The 404 for a request under the engine prefix this dialect does not serve, else None."""
    if legacy and _under(path, TODAY_PREFIX):
        return ApiError(
            404,
            "not_found",
            f"this simulator speaks the teaching document's API (--legacy-paths): "
            f"engine routes are under {LEGACY_PREFIX}/..., not {TODAY_PREFIX}/...",
        )
    if not legacy and _under(path, LEGACY_PREFIX):
        return ApiError(
            404,
            "not_found",
            f"the engine API moved to {TODAY_PREFIX}/...; {LEGACY_PREFIX}/... is no longer served",
        )
    return None


# ------------------------------------------------------------------ generation types
#: Internal (Rails) names the vendor's SDK and MCP server send, and the canonical
#: type each stands for (docs/dialect.md §3).
INTERNAL_TYPES: Final[Mapping[str, str]] = {
    "text_generation": "text",
    "eleven_labs": "speech_from_text",
    "midjourney": "image_from_text",
    "gemini_image_generation": "image_from_text",
    "grok_image_generation": "image_from_text",
    "gemini_video_generation": "video_from_text",
    "sora2_video_generation": "video_from_text",
    "kling": "video_from_text",
    "kling_image_video": "video_from_image",
    "seedance_video_generation": "video_from_text",
    "seedance_2_0_video_generation": "video_from_text",
    "grok_video_generation": "video_from_text",
}
#: Internal names both text-to-video and image-to-video cards are sent as.
_TEXT_OR_IMAGE_VIDEO: Final = frozenset(
    {
        "gemini_video_generation",
        "sora2_video_generation",
        "seedance_video_generation",
        "seedance_2_0_video_generation",
        "grok_video_generation",
    }
)


# ASSUMPTION: internal names map back to canonical ones (docs/sim-assumptions.md, "internal-types").
def canonical_type(name: Any, data: Any) -> Any:
    """The canonical ``generation_type`` for a canonical or internal name.

    A video name shared by both video cards means ``video_from_image`` when the
    card carries ``image_resource_id``.  Anything unknown comes back unchanged,
    so card validation names it in its 422.
    """
    if not isinstance(name, str) or name not in INTERNAL_TYPES:
        return name
    if (
        name in _TEXT_OR_IMAGE_VIDEO
        and isinstance(data, dict)
        and data.get("image_resource_id") is not None
    ):
        return "video_from_image"
    return INTERNAL_TYPES[name]


def internal_type(generation_type: str, model: str | None) -> str:
    """The internal name the SDK/MCP send for a canonical type and model (docs/dialect.md §3).

    Types without a mapping (ingredients, lipsync, captions, media, render) keep
    their name.  Seedance 2.0 follows the MCP server's more specific mapping.
    """
    m = (model or "").lower()
    if generation_type == "text":
        return "text_generation"
    if generation_type == "speech_from_text":
        return "eleven_labs"
    if generation_type == "image_from_text":
        if m.startswith("midjourney"):
            return "midjourney"
        return "grok_image_generation" if m.startswith("grok") else "gemini_image_generation"
    if generation_type in ("video_from_text", "video_from_image"):
        if m.startswith("grok"):
            return "grok_video_generation"
        if m.startswith("kling"):
            return "kling" if generation_type == "video_from_text" else "kling_image_video"
        if m.startswith("sora"):
            return "sora2_video_generation"
        if m.startswith(("seedance-2.0", "seedance_2_0")):
            return "seedance_2_0_video_generation"
        if m.startswith("seedance"):
            return "seedance_video_generation"
        return "gemini_video_generation"
    return generation_type
