"""The starter templates' columns, as the contract table lists them.

A recipe is checked against these before anything is paid: a cell it fills
must be a text column, a cell it generates or uploads must be an ingredient
column, and the render cell must exist.  Kept apart from the recipe model so
the column table can change without touching parsing or planning.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Final, Literal

#: The template cell that carries the layer stack and gets rendered.
ENGINE_FINAL_VIDEO_CELL: Final = "final_video"

__all__ = [
    "ENGINE_FINAL_VIDEO_CELL",
    "STARTER_TEMPLATES",
    "ColumnSpec",
    "ColumnType",
    "TemplateSpec",
    "default_recipe_slugs",
]

ColumnType = Literal["text", "image", "video", "audio"]


@dataclass(frozen=True, slots=True)
class ColumnSpec:
    """One template column: what a recipe may fill (text) or must generate/upload."""

    name: str
    type: ColumnType
    #: generation_type of the cell's default creation card (None for text).
    card: str | None = None


@dataclass(frozen=True, slots=True)
class TemplateSpec:
    """A starter template as a recipe is checked against it."""

    slug: str
    aspect_ratio: str
    video_types: tuple[str, ...]
    columns: tuple[ColumnSpec, ...]

    def column(self, name: str) -> ColumnSpec | None:
        return next((c for c in self.columns if c.name == name), None)


def _t(
    slug: str, video_types: tuple[str, ...], *cols: tuple[str, ColumnType, str | None]
) -> TemplateSpec:
    """A 9:16 template whose columns end with the rendered final video."""
    columns = tuple(ColumnSpec(n, t, c) for n, t, c in cols)
    final = ColumnSpec(ENGINE_FINAL_VIDEO_CELL, "video", None)
    return TemplateSpec(slug, "9:16", video_types, (*columns, final))


# Contract table: column name -> type, default card.
STARTER_TEMPLATES: Mapping[str, TemplateSpec] = {
    t.slug: t
    for t in (
        _t(
            "tiktok-talking-avatar",
            ("talking_avatar",),
            ("hook", "text", None),
            ("script", "text", None),
            ("voiceover", "audio", "speech_from_text"),
            ("avatar", "video", "video_from_text"),
            ("lipsync", "video", "lipsync"),
            ("captions", "video", "captions"),
        ),
        _t(
            "tiktok-montage",
            ("montage",),
            ("hook", "text", None),
            ("shot_1", "video", "video_from_text"),
            ("shot_2", "video", "video_from_text"),
            ("shot_3", "video", "video_from_text"),
            ("music", "audio", "media"),
        ),
        _t(
            "tiktok-vo-broll",
            ("narrated_vo",),
            ("hook", "text", None),
            ("script", "text", None),
            ("voiceover", "audio", "speech_from_text"),
            ("broll", "video", "video_from_text"),
        ),
        _t(
            "tiktok-text-driven",
            ("text_driven",),
            ("hook", "text", None),
            ("script", "text", None),
            ("background", "image", "image_from_text"),
        ),
        _t(
            "tiktok-split-screen",
            ("split_screen", "skit"),
            ("hook", "text", None),
            ("script", "text", None),
            ("left", "video", "video_from_text"),
            ("right", "video", "video_from_text"),
        ),
        _t(
            "ig-reel-story",
            ("narrated_vo", "montage", "pov_object"),
            ("hook", "text", None),
            ("script", "text", None),
            ("voiceover", "audio", "speech_from_text"),
            ("scene_1", "video", "video_from_text"),
            ("scene_2", "video", "video_from_text"),
        ),
        _t(
            "yt-short-explainer",
            ("talking_avatar", "text_driven", "green_screen"),
            ("hook", "text", None),
            ("script", "text", None),
            ("voiceover", "audio", "speech_from_text"),
            ("visual", "image", "image_from_text"),
            ("captions", "video", "captions"),
        ),
    )
}


def default_recipe_slugs() -> tuple[str, ...]:
    """Templates with a packaged default recipe (a file listing: no recipe is parsed)."""
    folder = resources.files("genbatch") / "recipes"
    return tuple(
        sorted(
            entry.name.removesuffix(".toml")
            for entry in folder.iterdir()
            if entry.name.endswith(".toml") and entry.name != "pricing.toml"
        )
    )
