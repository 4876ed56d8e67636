"""The documented video type → template mapping, and its overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from genbatch.agents.video_types import (
    ENGINE_VIDEO_TYPE_FALLBACK_TEMPLATE,
    VIDEO_TEMPLATES,
    VIDEO_TYPE_IDS,
    normalize_video_type,
    parse_overrides,
    template_for,
)
from genbatch.client.models import VIDEO_TYPE_IDS as CLIENT_VIDEO_TYPE_IDS
from genbatch.engine.recipe import default_recipe_slugs
from genbatch.engine.templates import STARTER_TEMPLATES


def test_every_reference_video_type_maps_to_a_template_tagged_with_it() -> None:
    # The reference's list: 0=Any, 1=Talking Avatar, ..., 8=Split Screen, 9=Skit.
    assert dict(VIDEO_TYPE_IDS) == CLIENT_VIDEO_TYPE_IDS
    assert VIDEO_TYPE_IDS is CLIENT_VIDEO_TYPE_IDS  # one copy: the API's vocabulary
    recipes = set(default_recipe_slugs())
    for vid, name in VIDEO_TYPE_IDS.items():
        slug = template_for(name, vid)
        assert slug in STARTER_TEMPLATES and slug in recipes, (name, slug)
        if name != "any":
            assert name in STARTER_TEMPLATES[slug].video_types, (name, slug)
    assert set(VIDEO_TEMPLATES) == set(VIDEO_TYPE_IDS.values()) - {"any"}


@pytest.mark.parametrize(
    ("video_type", "video_type_id", "expected"),
    [
        ("talking_avatar", 1, "tiktok-talking-avatar"),
        ("Talking Avatar", None, "tiktok-talking-avatar"),
        ("green-screen", None, "yt-short-explainer"),
        (None, 3, "tiktok-montage"),
        ("text_driven", 4, "tiktok-text-driven"),
        ("pov_object", 5, "ig-reel-story"),
        ("narrated_vo", 6, "tiktok-vo-broll"),
        ("split_screen", 8, "tiktok-split-screen"),
        ("skit", 9, "tiktok-split-screen"),
        # the name wins when name and id disagree (it is what people read and refine)
        ("montage", 1, "tiktok-montage"),
        # an unknown name falls back to the id
        ("hologram", 8, "tiktok-split-screen"),
        ("any", 0, ENGINE_VIDEO_TYPE_FALLBACK_TEMPLATE),
        (None, None, ENGINE_VIDEO_TYPE_FALLBACK_TEMPLATE),
        ("hologram", 7, ENGINE_VIDEO_TYPE_FALLBACK_TEMPLATE),
    ],
)
def test_template_for(video_type: str | None, video_type_id: int | None, expected: str) -> None:
    assert template_for(video_type, video_type_id) == expected


def test_overrides_by_name_id_and_default() -> None:
    over = {"montage": "ig-reel-story", "9": "my-skit-template", "default": "tiktok-text-driven"}
    assert template_for("montage", 3, over) == "ig-reel-story"
    assert template_for(None, 3, over) == "ig-reel-story"  # the id's type has a name override
    assert template_for("skit", None, over) == "my-skit-template"  # the name's id has one
    assert template_for("any", 0, over) == "tiktok-text-driven"
    assert template_for(None, None, over) == "tiktok-text-driven"
    assert template_for("talking_avatar", 1, over) == "tiktok-talking-avatar"  # untouched
    # a name override beats an id override for the same type
    assert template_for("skit", 9, {"skit": "a-slug", "9": "b-slug"}) == "a-slug"


def test_parse_overrides_from_cli_strings() -> None:
    assert parse_overrides(["Montage=ig-reel-story", "3=tiktok-montage", "DEFAULT=x1"]) == {
        "montage": "ig-reel-story",
        "3": "tiktok-montage",
        "default": "x1",
    }
    with pytest.raises(ValueError, match="expected VIDEO_TYPE=TEMPLATE"):
        parse_overrides(["montage"])
    with pytest.raises(ValueError, match="not a video type"):
        parse_overrides(["hologram=tiktok-montage"])
    with pytest.raises(ValueError, match="not a template slug"):
        parse_overrides(["montage=../../etc"])
    assert normalize_video_type("  Narrated / VO ") == "narrated_vo"
    assert normalize_video_type("  ") is None


@pytest.mark.parametrize("module", ["apply", "ideas", "video_types"])
def test_journey_modules_build_no_urls(module: str) -> None:
    # docs/design.md, layers: only the client builds URLs.
    from genbatch import agents

    text = Path(agents.__file__).with_name(f"{module}.py").read_text(encoding="utf-8")
    for forbidden in ("aiohttp", "genbatch.sim", "http://", "https://"):
        assert forbidden not in text, f"{module}.py mentions {forbidden}"
