"""The reference's creation-card vocabulary: generation types, models, ratios, durations.

One definition, read two ways: the client's typed request cards
(:mod:`genbatch.client.models`) use these ``Literal`` aliases as field types,
and the engine's recipe checks (``CARD_RULES``) take their values with
``typing.get_args`` — so a recipe accepts exactly what the client would send.
It lives outside the client because the recipe is a building block that
knows rows, not HTTP (docs/design.md §2). The simulator keeps its own copy on purpose.
Values from GEN-API.md "Creation Card Types".
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final, Literal, TypeAlias

__all__ = [
    "MAX_SECONDS",
    "CaptionsModel",
    "GenerationType",
    "ImageAspect",
    "ImageModel",
    "IngredientsModel",
    "LipsyncModel",
    "TextModel",
    "VideoAspect",
    "VideoDuration",
    "VideoFromImageModel",
    "VideoFromTextModel",
    "VoiceMethod",
]

TextModel: TypeAlias = Literal[
    "gemini_2_0_flash",
    "gemini_2_5_pro",
    "gpt_4o",
    "gpt_4o_mini",
    "o3_mini",
    "o4_mini",
    "claude_sonnet_4",
]
ImageModel: TypeAlias = Literal["gemini_image", "gemini_pro_image", "midjourney"]
ImageAspect: TypeAlias = Literal["1:1", "9:16", "16:9", "4:3", "3:4"]
VideoFromTextModel: TypeAlias = Literal[
    "veo_3",
    "veo_3_fast",
    "veo_3_1",
    "veo_3_1_fast",
    "sora_2",
    "kling_1_6",
    "seedance_pro",
    "seedance_pro_1_5",
]
VideoFromImageModel: TypeAlias = Literal[
    "kling_2_1",
    "kling_2_6",
    "veo_3",
    "veo_3_1",
    "sora_2",
    "seedance_lite",
    "seedance_pro",
    "seedance_pro_1_5",
]
IngredientsModel: TypeAlias = Literal[
    "pika", "kling_1_6", "seedance_lite", "veo_3_1", "veo_3_1_fast"
]
VideoAspect: TypeAlias = Literal["1:1", "9:16", "16:9"]
#: Seconds.  The teaching document lists 5 and 10; today's docs add that Veo 3
#: clips are at most 8 s (the vendor's own examples use 8), see MAX_SECONDS.
VideoDuration: TypeAlias = Literal[5, 8, 10]
VoiceMethod: TypeAlias = Literal["my_voices", "design_voice", "clone_voice"]
LipsyncModel: TypeAlias = Literal["sync_so", "gen"]
#: ASSUMPTION: the reference shows only "gemini" for captions.
CaptionsModel: TypeAlias = Literal["gemini"]

#: Longest clip a model makes, where it is shorter than the largest VideoDuration.
MAX_SECONDS: Final[Mapping[str, int]] = MappingProxyType(
    {"veo_3": 8, "veo_3_fast": 8, "veo_3_1": 8, "veo_3_1_fast": 8}
)

GenerationType: TypeAlias = Literal[
    "text",
    "image_from_text",
    "video_from_text",
    "video_from_image",
    "video_from_ingredients",
    "speech_from_text",
    "lipsync",
    "captions",
    "media",
]
