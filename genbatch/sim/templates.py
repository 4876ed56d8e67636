"""The seven starter templates and the creation-card catalog of the reference.

A template is data: columns (each ingredient with the creation card its cells
get by default, whose ``{{column}}`` placeholders the generations store resolves
from the row), and the layer stack of the ``final_video`` cell.  The card catalog
(models, aspect ratios, durations per generation type) is the reference's
"Creation Card Types" section, and :func:`validate_card` enforces it so a bad
body answers 422 ``validation_error`` exactly where the real API would.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

# --------------------------------------------------------------------------
# Creation card catalog (reference: "Creation Card Types (all 9)")
# --------------------------------------------------------------------------
MODELS: dict[str, tuple[str, ...]] = {
    "text": (
        "gemini_2_0_flash",
        "gemini_2_5_pro",
        "gpt_4o",
        "gpt_4o_mini",
        "o3_mini",
        "o4_mini",
        "claude_sonnet_4",
    ),
    "image_from_text": ("gemini_image", "gemini_pro_image", "midjourney"),
    "video_from_text": (
        "veo_3",
        "veo_3_fast",
        "veo_3_1",
        "veo_3_1_fast",
        "sora_2",
        "kling_1_6",
        "seedance_pro",
        "seedance_pro_1_5",
    ),
    "video_from_image": (
        "kling_2_1",
        "kling_2_6",
        "veo_3",
        "veo_3_1",
        "sora_2",
        "seedance_lite",
        "seedance_pro",
        "seedance_pro_1_5",
    ),
    "video_from_ingredients": ("pika", "kling_1_6", "seedance_lite", "veo_3_1", "veo_3_1_fast"),
    "lipsync": ("sync_so", "gen"),
    "captions": ("gemini",),
}
# ASSUMPTION: a card without model gets the first listed (docs/sim-assumptions.md, "models").
#: Model a card gets when it names none.
DEFAULT_MODEL: dict[str, str] = {k: v[0] for k, v in MODELS.items()}
IMAGE_ASPECTS = ("1:1", "9:16", "16:9", "4:3", "3:4")
VIDEO_ASPECTS = ("1:1", "9:16", "16:9")
ASPECTS: dict[str, tuple[str, ...]] = {
    "image_from_text": IMAGE_ASPECTS,
    "video_from_text": VIDEO_ASPECTS,
    "video_from_image": VIDEO_ASPECTS,
    "video_from_ingredients": VIDEO_ASPECTS,
}
#: Video durations in seconds: the teaching document lists "5 or 10"; today's
#: docs add 8 and cap Veo clips at 8 s (the vendor's own examples use 8).
LEGACY_DURATIONS = (5, 10)
DURATIONS = (5, 8, 10)
LONGEST: dict[str, int] = {"veo_3": 8, "veo_3_fast": 8, "veo_3_1": 8, "veo_3_1_fast": 8}
VOICE_METHODS = ("my_voices", "design_voice", "clone_voice")
#: Every generation type a cell or layer may declare (render is its own endpoint).
GENERATION_TYPES = (
    "text",
    "image_from_text",
    "video_from_text",
    "video_from_image",
    "video_from_ingredients",
    "speech_from_text",
    "lipsync",
    "captions",
    "media",
)
#: What a completed generation of each type produces (None: text in `result`).
OUTPUT_OBJECT_TYPE: dict[str, str | None] = {
    "text": None,
    "image_from_text": "image",
    "video_from_text": "video",
    "video_from_image": "video",
    "video_from_ingredients": "video",
    "speech_from_text": "audio",
    "lipsync": "video",
    "captions": "video",
    "media": "video",  # replaced by the attached resource's own type
    "render": "video",
}
#: Data keys holding content-resource ids (single id / list of ids), per type.
RESOURCE_FIELDS: dict[str, tuple[tuple[str, bool], ...]] = {
    "video_from_image": (("image_resource_id", True), ("image_tail_resource_id", False)),
    "video_from_ingredients": (("asset_resource_ids", True),),
    "speech_from_text": (("audio_resource_id", False),),
    "lipsync": (("video_resource_id", True), ("audio_resource_id", True)),
    "captions": (("source_resource_id", True),),
    "media": (("content_resource_id", True),),
}
COLUMN_TYPES = ("text", "image", "video", "audio")
COLUMN_ROLES = (
    "ingredient",
    "video",
    "final_video",
    "stats",
    "global_variable_name",
    "global_variable_value",
)
#: Video type ids of the reference (Step 2).
VIDEO_TYPE_IDS: dict[str, int] = {
    "any": 0,
    "talking_avatar": 1,
    "green_screen": 2,
    "montage": 3,
    "text_driven": 4,
    "pov_object": 5,
    "narrated_vo": 6,
    "split_screen": 8,
    "skit": 9,
}


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _words(v: object) -> str:
    """A value as an error message shows it: JSON, never a Python repr."""
    return v if isinstance(v, str) else json.dumps(v, default=str)


def validate_card(
    generation_type: object, data: object, *, legacy: bool = False
) -> tuple[str, dict[str, Any]]:
    """Check a creation card against the catalog; return (type, data with default model).

    ``legacy``: the teaching document's catalog (5 or 10 s for every video
    model) instead of today's (Veo clips at most 8 s).

    Raises ValueError with a human-readable message (the route maps it to 422
    ``validation_error``).  Placeholders must already be resolved.  Resource
    ids are checked for shape here and for existence by the generations store.
    """
    if generation_type not in GENERATION_TYPES:
        raise ValueError(
            f"generation_type must be one of {', '.join(GENERATION_TYPES)}"
            + ("" if generation_type is None else f"; got {_words(generation_type)}")
        )
    gt = str(generation_type)
    if not isinstance(data, dict):
        raise ValueError("data must be an object")
    out: dict[str, Any] = dict(data)
    if gt in MODELS:
        model = out.setdefault("model", DEFAULT_MODEL[gt])
        if model not in MODELS[gt]:
            raise ValueError(
                f"model {_words(model)} is not valid for {gt}: {', '.join(MODELS[gt])}"
            )
    if gt in ASPECTS and "aspect_ratio" in out and out["aspect_ratio"] not in ASPECTS[gt]:
        raise ValueError(
            f"aspect_ratio {_words(out['aspect_ratio'])} is not valid for {gt}: "
            f"{', '.join(ASPECTS[gt])}"
        )
    durations = LEGACY_DURATIONS if legacy else DURATIONS
    if gt.startswith("video_") and "duration" in out:
        if out["duration"] not in durations:
            shown = " or ".join(str(d) for d in durations)
            raise ValueError(f"duration must be {shown} seconds; got {_words(out['duration'])}")
        longest = None if legacy else LONGEST.get(str(out.get("model")))
        if longest is not None and out["duration"] > longest:
            raise ValueError(
                f"{out['model']} makes clips of at most {longest} seconds; got {out['duration']}"
            )
    if gt in ("text", "image_from_text", "video_from_text", "video_from_ingredients"):
        prompt = out.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            raise ValueError(f"data.prompt is required for {gt}")
    if gt == "text" and not isinstance(out.get("variables", {}), dict):
        raise ValueError("data.variables must be an object")
    if gt == "speech_from_text":
        script = out.get("script")
        if not isinstance(script, str) or not script.strip():
            raise ValueError("data.script is required for speech_from_text")
        method = out.setdefault("voice_method", "my_voices")
        if method not in VOICE_METHODS:
            raise ValueError(f"voice_method must be one of {', '.join(VOICE_METHODS)}")
        if method == "my_voices" and not isinstance(out.get("voice_id"), str):
            raise ValueError("data.voice_id is required when voice_method is my_voices")
        if method == "clone_voice" and "audio_resource_id" not in out:
            raise ValueError("data.audio_resource_id is required when voice_method is clone_voice")
        speed = out.get("speed", 1.0)
        if not isinstance(speed, int | float) or isinstance(speed, bool) or not 0.5 <= speed <= 2:
            raise ValueError("data.speed must be a number within 0.5..2.0")
    for key, required in RESOURCE_FIELDS.get(gt, ()):
        if key not in out or out[key] is None:
            if required:
                raise ValueError(f"data.{key} is required for {gt}")
            continue
        v = out[key]
        if key.endswith("_ids"):
            if not isinstance(v, list) or not v or not all(_is_int(x) for x in v):
                raise ValueError(f"data.{key} must be a non-empty list of resource ids")
        elif not _is_int(v):
            raise ValueError(f"data.{key} must be a resource id (integer); got {_words(v)}")
    return gt, out


def resource_ids(generation_type: str, data: dict[str, Any]) -> list[int]:
    """Every content-resource id a (validated) card refers to."""
    ids: list[int] = []
    for key, _ in RESOURCE_FIELDS.get(generation_type, ()):
        v = data.get(key)
        if isinstance(v, list):
            ids.extend(v)
        elif isinstance(v, int):
            ids.append(v)
    return ids


# --------------------------------------------------------------------------
# Starter templates (contract table)
# --------------------------------------------------------------------------
#: The voice every starter template speaks with (the reference's example voice).
DEFAULT_VOICE_ID = "21m00Tcm4TlvDq8ikWAM"


@dataclass(frozen=True, slots=True)
class ColumnSpec:
    name: str
    column_type: str
    role: str = "ingredient"
    card: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class LayerSpec:
    name: str
    layer_type: str
    source_column: str
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TemplateSpec:
    slug: str
    title: str
    description: str
    tags: tuple[str, ...]
    aspect_ratio: str
    columns: tuple[ColumnSpec, ...]
    layers: tuple[LayerSpec, ...]


def _text(prompt: str) -> dict[str, Any]:
    return {"generation_type": "text", "data": {"prompt": prompt, "model": "gemini_2_5_pro"}}


def _video(prompt: str, duration: int = 5) -> dict[str, Any]:
    return {
        "generation_type": "video_from_text",
        "data": {
            "prompt": prompt,
            "model": "veo_3_fast",
            "aspect_ratio": "9:16",
            "duration": duration,
        },
    }


def _speech(source: str = "script") -> dict[str, Any]:
    return {
        "generation_type": "speech_from_text",
        "data": {
            "script": "{{" + source + "}}",
            "voice_method": "my_voices",
            "voice_id": DEFAULT_VOICE_ID,
            "enhance_voice": True,
            "speed": 1.0,
        },
    }


def _image(prompt: str) -> dict[str, Any]:
    return {
        "generation_type": "image_from_text",
        "data": {"prompt": prompt, "model": "gemini_image", "aspect_ratio": "9:16"},
    }


def _captions(source: str) -> dict[str, Any]:
    return {
        "generation_type": "captions",
        "data": {"model": "gemini", "source_resource_id": "{{" + source + "}}"},
    }


HOOK = ColumnSpec("hook", "text", card=_text("Write a scroll-stopping one-line TikTok hook."))
SCRIPT = ColumnSpec(
    "script", "text", card=_text("Write a 30-second spoken TikTok script that opens with: {{hook}}")
)
VOICEOVER = ColumnSpec("voiceover", "audio", card=_speech())
FINAL = ColumnSpec("final_video", "video", role="final_video")

#: A public stock music track every workspace can attach (the reference's media example id).
STOCK_MUSIC_RESOURCE_ID = 7000


def _hook_layer(**extra: Any) -> LayerSpec:
    return LayerSpec(
        "Hook text", "text", "hook", {"start": 0.0, "end": 3.0, "position": "top", **extra}
    )


TEMPLATES: tuple[TemplateSpec, ...] = (
    TemplateSpec(
        "tiktok-talking-avatar",
        "TikTok Talking Avatar",
        "Founder VO + lipsync + captions. Best for explainer, testimonial, personal brand.",
        ("talking_avatar",),
        "9:16",
        (
            HOOK,
            SCRIPT,
            VOICEOVER,
            ColumnSpec(
                "avatar", "video", card=_video("A presenter talking to camera about: {{hook}}", 8)
            ),
            ColumnSpec(
                "lipsync",
                "video",
                card={
                    "generation_type": "lipsync",
                    "data": {
                        "model": "sync_so",
                        "video_resource_id": "{{avatar}}",
                        "audio_resource_id": "{{voiceover}}",
                    },
                },
            ),
            ColumnSpec("captions", "video", card=_captions("lipsync")),
            FINAL,
        ),
        (
            LayerSpec("Avatar", "video", "captions", {"fit": "cover"}),
            LayerSpec("Voiceover", "audio", "voiceover", {"volume": 1.0}),
            _hook_layer(),
        ),
    ),
    TemplateSpec(
        "tiktok-montage",
        "TikTok Montage",
        "Multi-shot b-roll stitched with music. Best for product shots, travel, a day in the life.",
        ("montage",),
        "9:16",
        (
            HOOK,
            ColumnSpec("shot_1", "video", card=_video("Opening shot: {{hook}}")),
            ColumnSpec("shot_2", "video", card=_video("Detail close-up for: {{hook}}")),
            ColumnSpec("shot_3", "video", card=_video("Payoff wide shot for: {{hook}}")),
            ColumnSpec(
                "music",
                "audio",
                card={
                    "generation_type": "media",
                    "data": {"content_resource_id": STOCK_MUSIC_RESOURCE_ID},
                },
            ),
            FINAL,
        ),
        (
            LayerSpec("Shot 1", "video", "shot_1", {"start": 0.0, "end": 5.0}),
            LayerSpec("Shot 2", "video", "shot_2", {"start": 5.0, "end": 10.0}),
            LayerSpec("Shot 3", "video", "shot_3", {"start": 10.0, "end": 15.0}),
            LayerSpec("Music", "audio", "music", {"volume": 0.6}),
            _hook_layer(),
        ),
    ),
    TemplateSpec(
        "tiktok-vo-broll",
        "TikTok Voiceover + B-roll",
        "Single narrated voiceover over curated b-roll. Best for news/commentary/explainer.",
        ("narrated_vo",),
        "9:16",
        (
            HOOK,
            SCRIPT,
            VOICEOVER,
            ColumnSpec("broll", "video", card=_video("Cinematic b-roll illustrating: {{hook}}", 8)),
            FINAL,
        ),
        (
            LayerSpec("B-roll", "video", "broll", {"fit": "cover", "loop": True}),
            LayerSpec("Voiceover", "audio", "voiceover", {"volume": 1.0}),
            _hook_layer(),
        ),
    ),
    TemplateSpec(
        "tiktok-text-driven",
        "TikTok Text-Driven",
        "Kinetic text + music, no avatar. Best for list posts, '3 reasons why', quotes.",
        ("text_driven",),
        "9:16",
        (
            HOOK,
            SCRIPT,
            ColumnSpec("background", "image", card=_image("Bold minimal background for: {{hook}}")),
            FINAL,
        ),
        (
            LayerSpec("Background", "image", "background", {"fit": "cover", "ken_burns": True}),
            LayerSpec(
                "Script text", "text", "script", {"animation": "kinetic", "position": "center"}
            ),
            _hook_layer(),
        ),
    ),
    TemplateSpec(
        "tiktok-split-screen",
        "TikTok Split Screen",
        "Side-by-side reaction / comparison. Best for reviews, before/after, duets.",
        ("split_screen", "skit"),
        "9:16",
        (
            HOOK,
            SCRIPT,
            ColumnSpec("left", "video", card=_video("Before: {{hook}}")),
            ColumnSpec("right", "video", card=_video("After: {{hook}}")),
            FINAL,
        ),
        (
            LayerSpec("Left", "video", "left", {"region": "top"}),
            LayerSpec("Right", "video", "right", {"region": "bottom"}),
            _hook_layer(position="middle"),
        ),
    ),
    TemplateSpec(
        "ig-reel-story",
        "Instagram Reel Story",
        "Longer 30–60s vertical story with voiceover and two scenes.",
        ("narrated_vo", "montage", "pov_object"),
        "9:16",
        (
            HOOK,
            SCRIPT,
            VOICEOVER,
            ColumnSpec("scene_1", "video", card=_video("Scene one of the story: {{hook}}", 8)),
            ColumnSpec("scene_2", "video", card=_video("Scene two, the turn: {{script}}", 8)),
            FINAL,
        ),
        (
            LayerSpec("Scene 1", "video", "scene_1", {"start": 0.0, "end": 10.0}),
            LayerSpec("Scene 2", "video", "scene_2", {"start": 10.0, "end": 20.0}),
            LayerSpec("Voiceover", "audio", "voiceover", {"volume": 1.0}),
            _hook_layer(),
        ),
    ),
    TemplateSpec(
        "yt-short-explainer",
        "YouTube Short Explainer",
        "45s explainer with text + VO.",
        ("talking_avatar", "text_driven", "green_screen"),
        "9:16",
        (
            HOOK,
            SCRIPT,
            VOICEOVER,
            ColumnSpec("visual", "image", card=_image("Explainer visual for: {{hook}}")),
            ColumnSpec("captions", "video", card=_captions("voiceover")),
            FINAL,
        ),
        (
            LayerSpec("Visual", "image", "visual", {"fit": "contain"}),
            LayerSpec("Captions", "video", "captions", {"position": "bottom"}),
            LayerSpec("Voiceover", "audio", "voiceover", {"volume": 1.0}),
            _hook_layer(),
        ),
    ),
)
TEMPLATES_BY_SLUG: dict[str, TemplateSpec] = {t.slug: t for t in TEMPLATES}
