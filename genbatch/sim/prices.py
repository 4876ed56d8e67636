"""What a job costs in the simulator: GEN's published typical costs.

The vendor bills a video per second of the clip (by model), speech per minute
of audio, and most other jobs per call (the figures: docs/sim-assumptions.md,
"prices").  The simulator keeps its own table — it must not agree with the
client's estimates by sharing them.  Figures the vendor does not publish are
set by analogy and marked ASSUMPTION.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Final

__all__ = ["price"]

#: Credits per call, by generation type (render: a 30 s render).
PER_CALL: Final[Mapping[str, float]] = {
    "text": 3.0,
    "image_from_text": 5.0,
    "video_from_text": 300.0,
    "video_from_image": 300.0,
    "video_from_ingredients": 300.0,
    "speech_from_text": 30.0,
    "lipsync": 200.0,
    "captions": 10.0,
    "media": 0.0,
    "render": 50.0,
}
#: Credits per call, by model.  ASSUMPTION where the vendor publishes none.
PER_CALL_BY_MODEL: Final[Mapping[str, float]] = {
    "gemini_2_0_flash": 2.0,
    "gemini_2_5_pro": 8.0,
    "gpt_4o": 8.0,
    "gpt_4o_mini": 2.0,
    "o3_mini": 4.0,
    "o4_mini": 4.0,
    "claude_sonnet_4": 8.0,
    "gemini_image": 5.0,
    "gemini_pro_image": 10.0,
    "midjourney": 15.0,
}
#: Credits per second of a clip's ``duration``, by model (Veo 3 and Seedance Pro
#: published; the rest ASSUMPTION by analogy).
PER_SECOND_BY_MODEL: Final[Mapping[str, float]] = {
    "veo_3": 60.0,
    "veo_3_1": 60.0,
    "veo_3_fast": 30.0,
    "veo_3_1_fast": 30.0,
    "seedance_pro": 50.0,
    "seedance_pro_1_5": 50.0,
    "seedance_lite": 25.0,
    "sora_2": 60.0,
    "kling_1_6": 40.0,
    "kling_2_1": 40.0,
    "kling_2_6": 40.0,
    "pika": 30.0,
}
#: Speech: credits per minute of audio; the audio's length is read from the
#: script at a speaking pace (ASSUMPTION: 150 words a minute).
SPEECH_PER_MINUTE: Final = 30.0
WORDS_PER_MINUTE: Final = 150.0


def price(
    generation_type: str,
    data: Mapping[str, Any] | None = None,
    overrides: Mapping[str, float] | None = None,
) -> float:
    """Credits one job of this type and card costs (``"render"`` for a render).

    ``overrides``: credits per call by model or generation type (``genbatch sim
    --price``), ahead of the published figures — the model's first.
    """
    data = data or {}
    model = data.get("model")
    duration = data.get("duration")
    for key in (model, generation_type):
        if overrides and isinstance(key, str) and key in overrides:
            return float(overrides[key])
    if isinstance(model, str):
        if model in PER_SECOND_BY_MODEL and isinstance(duration, int | float):
            return PER_SECOND_BY_MODEL[model] * float(duration)
        if model in PER_CALL_BY_MODEL:
            return PER_CALL_BY_MODEL[model]
    if generation_type == "speech_from_text" and isinstance(data.get("script"), str):
        minutes = len(str(data["script"]).split()) / WORDS_PER_MINUTE
        return float(max(1, math.ceil(SPEECH_PER_MINUTE * minutes)))
    return PER_CALL[generation_type]
