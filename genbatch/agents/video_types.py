"""Which starter template makes which idea: video type → template slug.

The reference's Step 3 says it plainly: "each idea has a ``video_type``;
each template is tagged with the same video types; match, clone".  This
module is that match, written down once so ``genbatch ideas`` can fill the
``template`` column of a table ``genbatch run`` consumes directly.

The default mapping (every video type of the reference's list, Step 2, and
the template tags in the starter-template table)::

    id  video_type       template                tagged by
    1   talking_avatar   tiktok-talking-avatar   tiktok-talking-avatar, yt-short-explainer
    2   green_screen     yt-short-explainer      yt-short-explainer (the only one)
    3   montage          tiktok-montage          tiktok-montage, ig-reel-story
    4   text_driven      tiktok-text-driven      tiktok-text-driven, yt-short-explainer
    5   pov_object       ig-reel-story           ig-reel-story (the only one)
    6   narrated_vo      tiktok-vo-broll         tiktok-vo-broll, ig-reel-story
    8   split_screen     tiktok-split-screen     tiktok-split-screen (the only one)
    9   skit             tiktok-split-screen     tiktok-split-screen (the only one)
    0   any / missing / unknown → ENGINE_VIDEO_TYPE_FALLBACK_TEMPLATE (tiktok-vo-broll)

Where several templates carry a tag, the TikTok template whose *first* tag
it is wins: it is the one the reference describes for that type.

Overrides (``--template-map montage=ig-reel-story`` on the CLI) are keyed by
video type name, by id (``"3"``), or ``"default"`` for the fallback; a name
beats an id, an override beats the built-in mapping.  When an idea's name
and id disagree, the name wins: it is what a person reads and refines.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from genbatch.client.models import VIDEO_TYPE_IDS

#: Template for an idea whose video type is "any", missing or unknown: narrated
#: VO over b-roll needs only a hook and a script, which every idea has.
ENGINE_VIDEO_TYPE_FALLBACK_TEMPLATE: Final = "tiktok-vo-broll"

__all__ = [
    "DEFAULT_KEY",
    "VIDEO_TEMPLATES",
    "VIDEO_TYPE_IDS",
    "normalize_video_type",
    "parse_overrides",
    "template_for",
]

#: video_type → starter template slug (see the module docstring for why each).
VIDEO_TEMPLATES: Final[Mapping[str, str]] = MappingProxyType(
    {
        "talking_avatar": "tiktok-talking-avatar",
        "green_screen": "yt-short-explainer",
        "montage": "tiktok-montage",
        "text_driven": "tiktok-text-driven",
        "pov_object": "ig-reel-story",
        "narrated_vo": "tiktok-vo-broll",
        "split_screen": "tiktok-split-screen",
        "skit": "tiktok-split-screen",
    }
)

#: Override key for ideas whose type maps to nothing ("any", missing, unknown).
DEFAULT_KEY: Final = "default"

_SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,99}$")
_SEPARATORS = re.compile(r"[\s/-]+")
# Spellings people (and the reference's own prose) use for the same types.
_ALIASES: Final[Mapping[str, str]] = MappingProxyType(
    {
        "narrated": "narrated_vo",
        "narrated_voiceover": "narrated_vo",
        "voiceover": "narrated_vo",
        "vo": "narrated_vo",
        "pov": "pov_object",
        "text": "text_driven",
        "avatar": "talking_avatar",
    }
)


def normalize_video_type(value: str | None) -> str | None:
    """``"Talking Avatar"`` / ``"talking-avatar"`` → ``"talking_avatar"``; blank → None."""
    if value is None:
        return None
    text = _SEPARATORS.sub("_", value.strip().lower()).strip("_")
    if not text:
        return None
    return _ALIASES.get(text, text)


def _key(raw: str) -> str:
    """An override key in canonical form: an id as digits, a name normalized."""
    text = raw.strip()
    if text.isdigit():
        return str(int(text))
    if text.lower() == DEFAULT_KEY:
        return DEFAULT_KEY
    name = normalize_video_type(text)
    if name is None:
        raise ValueError("an override key cannot be empty")
    return name


def parse_overrides(items: Mapping[str, str] | list[str] | None) -> dict[str, str]:
    """Validate overrides (a mapping, or ``KEY=SLUG`` strings from the CLI).

    Raises ``ValueError`` naming the bad item: a key that is neither a video
    type of the reference, an id, nor ``default``; a value that is not a slug.
    """
    if not items:
        return {}
    pairs: list[tuple[str, str]] = []
    if isinstance(items, Mapping):
        pairs = [(str(k), str(v)) for k, v in items.items()]
    else:
        for item in items:
            key, sep, value = item.partition("=")
            if not sep:
                raise ValueError(
                    f"{item!r}: expected VIDEO_TYPE=TEMPLATE (e.g. montage=ig-reel-story)"
                )
            pairs.append((key, value))
    known = set(VIDEO_TYPE_IDS.values()) | {str(i) for i in VIDEO_TYPE_IDS} | {DEFAULT_KEY}
    out: dict[str, str] = {}
    for key, value in pairs:
        canon = _key(key)
        if canon not in known:
            raise ValueError(
                f"{key!r} is not a video type (known: {', '.join(VIDEO_TYPE_IDS.values())}, "
                f"an id, or {DEFAULT_KEY!r})"
            )
        slug = value.strip()
        if not _SLUG.match(slug):
            raise ValueError(f"{value!r} is not a template slug (like tiktok-vo-broll)")
        out[canon] = slug
    return out


def template_for(
    video_type: str | None,
    video_type_id: int | None,
    overrides: Mapping[str, str] | None = None,
) -> str:
    """The template slug for an idea's video type.

    The idea's type is its name when the name is one of the reference's
    types, else the type its id stands for.  Then: an override for that type
    (by name, then by id), the built-in mapping, the ``default`` override, the
    fallback.  ``overrides`` may use raw keys (``"Montage"``, ``"3"``).
    """
    table = parse_overrides(overrides) if overrides else {}
    ids = {name: i for i, name in VIDEO_TYPE_IDS.items()}
    name = normalize_video_type(video_type)
    vtype: str | None = None
    if name in ids:
        vtype = name
    elif video_type_id is not None:
        vtype = VIDEO_TYPE_IDS.get(video_type_id)
    if vtype is not None:
        for key in (vtype, str(ids[vtype])):
            if key in table:
                return table[key]
        if vtype in VIDEO_TEMPLATES:
            return VIDEO_TEMPLATES[vtype]
    return table.get(DEFAULT_KEY, ENGINE_VIDEO_TYPE_FALLBACK_TEMPLATE)
