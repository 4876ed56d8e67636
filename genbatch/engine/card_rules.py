"""Which of the reference's creation-card lists a recipe checks, per type.

The value lists themselves are :mod:`genbatch.cards` (GEN-API.md "Creation
Card Types"; the client's typed cards use the same aliases).  This table
says which of them apply to each ``generation_type``, so a bad model or
aspect ratio fails when the recipe loads, or when a row fills the card,
instead of as a paid request the server refuses.  The caller decides which
error a failure becomes (a recipe error at load, a row error when planning).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NoReturn, get_args

from genbatch import cards

__all__ = ["CARD_RULES", "CardRule", "Fail", "check_card"]

#: ``fail(key, message)``: report a bad card field; never returns.
Fail = Callable[[str, str], NoReturn]


@dataclass(frozen=True, slots=True)
class CardRule:
    """What the reference allows for one ``generation_type``.

    ``None`` means the reference lists nothing to check against (ASSUMPTION:
    anything goes; the server remains the judge).
    """

    required: tuple[str, ...]
    models: frozenset[str] | None = None
    aspect_ratios: frozenset[str] | None = None
    durations: frozenset[int] | None = None
    voice_methods: frozenset[str] | None = None
    #: Fields holding resource ids (where ``"@cell"`` references belong).
    resource_fields: tuple[str, ...] = ()


def _options(alias: Any) -> frozenset[Any]:
    """The values of one of the ``Literal`` card aliases."""
    return frozenset(get_args(alias))


CARD_RULES: Mapping[str, CardRule] = {
    "text": CardRule(required=("prompt",), models=_options(cards.TextModel)),
    "image_from_text": CardRule(
        required=("prompt",),
        models=_options(cards.ImageModel),
        aspect_ratios=_options(cards.ImageAspect),
    ),
    "video_from_text": CardRule(
        required=("prompt",),
        models=_options(cards.VideoFromTextModel),
        aspect_ratios=_options(cards.VideoAspect),
        durations=_options(cards.VideoDuration),
    ),
    "video_from_image": CardRule(
        required=("image_resource_id",),
        models=_options(cards.VideoFromImageModel),
        resource_fields=("image_resource_id", "image_tail_resource_id"),
    ),
    "video_from_ingredients": CardRule(
        required=("asset_resource_ids",),
        models=_options(cards.IngredientsModel),
        resource_fields=("asset_resource_ids",),
    ),
    "speech_from_text": CardRule(
        required=("script",),
        voice_methods=_options(cards.VoiceMethod),
        resource_fields=("audio_resource_id",),
    ),
    "lipsync": CardRule(
        required=("video_resource_id", "audio_resource_id"),
        models=_options(cards.LipsyncModel),
        resource_fields=("video_resource_id", "audio_resource_id"),
    ),
    "captions": CardRule(required=("source_resource_id",), resource_fields=("source_resource_id",)),
    "media": CardRule(required=("content_resource_id",), resource_fields=("content_resource_id",)),
}
# Card fields that are numbers on the wire even when a placeholder filled them.
_INT_FIELDS = frozenset({"duration"})
_FLOAT_FIELDS = frozenset({"speed"})


def check_card(kind: str, data: Mapping[str, Any], fail: Fail) -> None:
    """Check a card against :data:`CARD_RULES`; coerce numeric fields in place."""
    rule = CARD_RULES[kind]

    def allowed(key: str, options: Iterable[object] | None) -> None:
        if options is None or key not in data:
            return
        if data[key] not in options:
            shown = ", ".join(str(o) for o in sorted(options, key=str))
            fail(key, f"{data[key]!r} is not allowed for {kind} (one of: {shown})")

    if isinstance(data, dict):
        for key in _INT_FIELDS & data.keys():
            data[key] = _coerce(data[key], int, fail, key)
        for key in _FLOAT_FIELDS & data.keys():
            data[key] = _coerce(data[key], float, fail, key)
    allowed("model", rule.models)
    allowed("aspect_ratio", rule.aspect_ratios)
    allowed("duration", rule.durations)
    longest = cards.MAX_SECONDS.get(str(data.get("model")))
    duration = data.get("duration")
    if longest is not None and isinstance(duration, int) and duration > longest:
        fail("duration", f"{data['model']} clips are at most {longest} s, not {duration}")
    allowed("voice_method", rule.voice_methods)


def _coerce(value: Any, kind: type[int] | type[float], fail: Fail, key: str) -> Any:
    if isinstance(value, str):
        try:
            return kind(value.strip())
        except ValueError:
            fail(key, f"{value!r} is not a number")
    return value
