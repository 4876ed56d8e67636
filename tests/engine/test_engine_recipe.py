"""Recipes: load-time checks, column checks, and pure per-row plans."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import pytest

from genbatch.engine.card_rules import CARD_RULES
from genbatch.engine.recipe import Recipe, RecipeError, default_recipe_slugs
from genbatch.engine.rowplan import Ref, RowPlanError
from genbatch.engine.templates import STARTER_TEMPLATES

ROW = {"row_id": "r1", "agent_id": "1000", "hook": "The $2 taco", "script": "At 2am it saved me."}


class FlatPricing:
    """Pricing stand-in: one flat price per generation type."""

    PRICES: ClassVar[dict[str, float]] = {
        "text": 1.0,
        "image_from_text": 4.0,
        "video_from_text": 20.0,
        "speech_from_text": 2.0,
        "lipsync": 10.0,
        "captions": 2.0,
        "media": 0.0,
        "render": 5.0,
    }

    def price(self, generation_type: str, card: Mapping[str, Any] | None = None) -> float:
        return self.PRICES[generation_type]


def recipe(body: str, template: str = "tiktok-vo-broll") -> Recipe:
    return Recipe.from_toml(f'template = "{template}"\n' + body, source="test")


def test_every_starter_template_has_a_default_recipe() -> None:
    assert set(default_recipe_slugs()) == set(STARTER_TEMPLATES)


@pytest.mark.parametrize("slug", sorted(STARTER_TEMPLATES))
def test_default_recipes_plan_a_row_with_hook_and_script(slug: str) -> None:
    r = Recipe.default(slug)
    assert r.template == slug
    r.check_columns({"row_id", "agent_id", "hook", "script"})
    plan = r.plan_row(ROW)
    assert plan.template == slug
    assert plan.cell_values["hook"] == ROW["hook"]
    assert plan.render is not None and plan.render.cell == "final_video"
    assert plan.output_name == "r1.mp4"
    assert plan.publish is None  # "auto" and no publish_at
    template = STARTER_TEMPLATES[slug]
    # Every non-text ingredient except media (music) is generated, in order.
    expected = {c.name for c in template.columns if c.card not in (None, "media")}
    assert {g.cell for g in plan.generations} == expected
    seen: set[str] = set()
    for gen in plan.generations:
        assert set(gen.needs) <= seen, f"{gen.cell} planned before {gen.needs}"
        assert gen.generation_type == template.column(gen.cell).card  # type: ignore[union-attr]
        seen.add(gen.cell)
    assert plan.credit_estimate(FlatPricing()) > 0


def test_vo_broll_plan_matches_the_contract() -> None:
    plan = Recipe.default("tiktok-vo-broll").plan_row(ROW)
    voice, broll = plan.generations
    assert voice.generation_type == "speech_from_text" and voice.data["script"] == ROW["script"]
    assert broll.data["model"] == "veo_3_fast"
    assert broll.data["aspect_ratio"] == "9:16" and broll.data["duration"] == 5
    assert ROW["hook"] in broll.data["prompt"]
    assert plan.credit_estimate(FlatPricing()) == 2 + 20 + 5
    assert [s for s, _, _ in plan.paid_steps] == ["generate:voiceover", "generate:broll", "render"]
    assert plan.job_count == 3
    assert [[g.cell for g in w] for w in plan.waves()] == [["voiceover", "broll"]]


def test_talking_avatar_resolves_references_in_dependency_order() -> None:
    plan = Recipe.default("tiktok-talking-avatar").plan_row(ROW)
    assert [[g.cell for g in w] for w in plan.waves()] == [
        ["voiceover", "avatar"],
        ["lipsync"],
        ["captions"],
    ]
    lipsync = next(g for g in plan.generations if g.cell == "lipsync")
    assert set(lipsync.refs) == {Ref("output", "avatar"), Ref("output", "voiceover")}
    data = lipsync.resolve({"output:avatar": 11, "output:voiceover": 12})
    assert data == {"model": "sync_so", "video_resource_id": 11, "audio_resource_id": 12}
    with pytest.raises(KeyError, match="output:avatar"):
        lipsync.resolve({"output:voiceover": 12})
    assert plan.credit_estimate(FlatPricing()) == 2 + 20 + 10 + 2 + 5


def test_montage_music_only_when_the_row_provides_it() -> None:
    r = Recipe.default("tiktok-montage")
    r.check_columns({"row_id", "hook"})  # music is optional: no column needed
    plan = r.plan_row(ROW)
    assert not plan.assets and "music" not in {g.cell for g in plan.generations}
    plan = r.plan_row({**ROW, "music": "assets/song.mp3"})
    (asset,) = plan.assets
    assert (
        asset.cell == "music" and asset.path == "assets/song.mp3" and asset.step == "upload:music"
    )
    media = next(g for g in plan.generations if g.cell == "music")
    assert media.generation_type == "media"
    assert media.resolve({"upload:music": 77}) == {"content_resource_id": 77}
    assert plan.credit_estimate(FlatPricing()) == 3 * 20 + 0 + 5


def test_missing_placeholder_column_names_field_and_column() -> None:
    r = Recipe.default("tiktok-vo-broll")
    with pytest.raises(RecipeError, match=r"cells\.script uses \{script\}.*column 'script'"):
        r.check_columns({"row_id", "hook"})


def test_empty_value_fails_only_that_row() -> None:
    r = Recipe.default("tiktok-vo-broll")
    with pytest.raises(RowPlanError) as info:
        r.plan_row({"row_id": "r1", "hook": "h"})
    assert info.value.column == "script"
    assert info.value.field == "cells.script"


def test_row_values_are_not_expanded_again() -> None:
    plan = Recipe.default("tiktok-vo-broll").plan_row({**ROW, "hook": "{script} {0.__class__}"})
    assert plan.cell_values["hook"] == "{script} {0.__class__}"


def test_literal_braces() -> None:
    r = recipe('[cells]\nhook = "{{hook}} is {hook}"\n[render]\nenabled = false\n')
    assert r.plan_row(ROW).cell_values["hook"] == "{hook} is The $2 taco"


@pytest.mark.parametrize(
    "placeholder", ["{hook.__class__}", "{hook[0]}", "{hook!r}", "{hook:>99}", "{0}", "{}", "{"]
)
def test_only_simple_placeholders(placeholder: str) -> None:
    with pytest.raises(RecipeError, match=r"cells\.hook"):
        recipe(f'[cells]\nhook = "{placeholder}"\n')


GEN = """
[[generate]]
cell = "broll"
generation_type = "video_from_text"
data = {{ prompt = "{{hook}}", model = "{model}", aspect_ratio = "{ar}", duration = {duration} }}
"""


def test_unknown_model_is_refused_at_load() -> None:
    with pytest.raises(RecipeError, match=r"generate\.broll\.data\.model: 'veo_9'.*veo_3_fast"):
        recipe(GEN.format(model="veo_9", ar="9:16", duration=5))


@pytest.mark.parametrize(
    ("ar", "duration", "match"),
    [("4:3", 5, "aspect_ratio"), ("9:16", 7, "duration")],
)
def test_card_lists_are_enforced(ar: str, duration: int, match: str) -> None:
    with pytest.raises(RecipeError, match=match):
        recipe(GEN.format(model="veo_3", ar=ar, duration=duration))


def test_card_values_from_columns_are_checked_per_row() -> None:
    r = recipe(GEN.format(model="{model}", ar="9:16", duration='"{secs}"'))
    plan = r.plan_row({**ROW, "model": "sora_2", "secs": "10"})
    assert plan.generations[0].data["duration"] == 10  # coerced to a number
    with pytest.raises(RowPlanError, match="model") as info:
        r.plan_row({**ROW, "model": "not_a_model", "secs": "10"})
    assert "not_a_model" in str(info.value)
    with pytest.raises(RowPlanError, match="not a number"):
        r.plan_row({**ROW, "model": "sora_2", "secs": "ten"})


def test_card_rules_cover_the_reference_types() -> None:
    assert set(CARD_RULES) == {
        "text",
        "image_from_text",
        "video_from_text",
        "video_from_image",
        "video_from_ingredients",
        "speech_from_text",
        "lipsync",
        "captions",
        "media",
    }


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ("bogus = 1\n", "bogus"),
        ('[cells]\nnope = "{hook}"\n', "has no column 'nope'"),
        ('[cells]\nbroll = "{hook}"\n', "column is video"),
        (
            '[[generate]]\ncell = "broll"\ngeneration_type = "hologram"\n',
            "unknown generation_type",
        ),
        (
            '[[generate]]\ncell = "broll"\ngeneration_type = "video_from_text"\n',
            "needs 'prompt'",
        ),
        (
            '[[generate]]\ncell = "broll"\ngeneration_type = "lipsync"\n'
            'data = { video_resource_id = "@ghost", audio_resource_id = "@voiceover" }\n',
            "'ghost'",
        ),
        (
            '[[generate]]\ncell = "final_video"\ngeneration_type = "text"\ndata = {prompt="x"}\n',
            "final_video",
        ),
        ("[render]\ncell = 'nowhere'\n", "render.cell"),
        ('[publish]\nhashtags = ["two words"]\n', "one word"),
        ('[publish]\nplatform = "myspace"\n', "platform"),
        ("template = 'dup'\n", "TOML"),
    ],
)
def test_bad_recipes_are_refused(body: str, match: str) -> None:
    with pytest.raises(RecipeError, match=match):
        recipe(body)


def test_dependency_cycle_is_refused() -> None:
    body = """
[[generate]]
cell = "voiceover"
generation_type = "captions"
data = { source_resource_id = "@broll" }
[[generate]]
cell = "broll"
generation_type = "captions"
data = { source_resource_id = "@voiceover" }
"""
    with pytest.raises(RecipeError, match="cycle"):
        recipe(body)


def test_after_orders_without_data() -> None:
    body = """
[[generate]]
cell = "broll"
generation_type = "video_from_text"
after = ["voiceover"]
data = { prompt = "{hook}" }
[[generate]]
cell = "voiceover"
generation_type = "speech_from_text"
data = { script = "{script}" }
"""
    plan = recipe(body).plan_row(ROW)
    assert [g.cell for g in plan.generations] == ["voiceover", "broll"]
    assert plan.generations[1].needs == ("voiceover",)


def test_custom_templates_skip_column_checks() -> None:
    r = recipe('[cells]\nanything = "{hook}"\n', template="my-own-template")
    assert r.plan_row(ROW).cell_values == {"anything": ROW["hook"]}


def test_unknown_default_recipe() -> None:
    with pytest.raises(RecipeError, match="--recipe"):
        Recipe.default("tiktok-nope")


def test_load_from_file(tmp_path: Path) -> None:
    path = tmp_path / "r.toml"
    path.write_text('template = "tiktok-text-driven"\n[cells]\nhook = "{hook}"\n')
    assert Recipe.load(path).cells == {"hook": "{hook}"}
    with pytest.raises(RecipeError, match="cannot read"):
        Recipe.load(tmp_path / "missing.toml")


def test_output_name_pattern() -> None:
    r = recipe('[output]\nname = "{row_id}-{hook}.mp4"\n')
    assert r.plan_row(ROW).output_name == "r1-The $2 taco.mp4"


def test_publish_now_scheduled_and_hashtags() -> None:
    r = recipe(
        '[publish]\nenabled = true\ndescription = "{hook} #tacotok"\n'
        'hashtags = ["#tacotok", "streetfood"]\n'
    )
    now = r.plan_row(ROW).publish
    assert now is not None and now.schedule_type == "now" and now.scheduled_time is None
    assert now.description == "The $2 taco #tacotok #streetfood"
    data = now.data("https://cdn/x.mp4")
    assert data["media_url"] == "https://cdn/x.mp4" and "scheduled_time" not in data
    later = r.plan_row({**ROW, "publish_at": "2030-04-20T17:00:00+02:00"}).publish
    assert later is not None and later.schedule_type == "scheduled"
    assert later.scheduled_time == "2030-04-20T15:00:00Z"


def test_publish_auto_follows_publish_at() -> None:
    r = Recipe.default("tiktok-vo-broll")
    assert r.plan_row(ROW).publish is None
    plan = r.plan_row({**ROW, "publish_at": "2030-01-01T00:00:00Z"})
    assert plan.publish is not None and plan.job_count == 4


def test_publish_description_too_long_fails_the_row() -> None:
    r = recipe('[publish]\nenabled = true\ndescription = "{script}"\n')
    with pytest.raises(RowPlanError, match="TikTok"):
        r.plan_row({**ROW, "script": "x" * 3000})


def test_publish_without_render_fails_the_row() -> None:
    r = recipe("[render]\nenabled = false\n[publish]\nenabled = true\n")
    with pytest.raises(RowPlanError, match="render"):
        r.plan_row(ROW)


def test_veo_clips_longer_than_8_seconds_are_refused_at_load() -> None:
    body = (
        '[[generate]]\ncell = "broll"\ngeneration_type = "video_from_text"\n'
        'data = { prompt = "x", model = "veo_3", aspect_ratio = "9:16", duration = 10 }\n'
    )
    with pytest.raises(RecipeError, match="veo_3 clips are at most 8 s, not 10"):
        recipe(body)
    ok = recipe(body.replace("duration = 10", "duration = 8"))
    assert ok.plan_row(ROW).paid_steps[0][2]["duration"] == 8
