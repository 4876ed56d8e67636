"""Recipes: what to do with a row, as TOML, checked before anything is paid.

A recipe names a template, the values its ingredient cells get, which cells
to generate with which creation card, whether to render, how to name the
download and whether to publish.  Values are ``{column}`` placeholders filled
from the row — *only* simple names, never ``{x.attr}``/``{x[0]}``/``{x!r}``:
a table is untrusted and must not reach into Python objects.  ``{{``/``}}``
are literal braces.  A card value ``"@cell"`` stands for the output resource
id of that cell's generation; it is also how dependency order is declared
(``after = [...]`` adds order without data).

Everything checkable is checked at load time (unknown template cell, unknown
model, dependency cycle) or against the table's columns before the run
(:meth:`Recipe.check_columns`: a placeholder with no column names the recipe
field and the column).  :meth:`Recipe.plan_row` is pure: it turns one row's
values into a :class:`RowPlan` — concrete cell values, ordered generations
with their cards, render, publish — so ``genbatch plan`` can count requests
and credits without a network.

The reference's card lists (models, aspect ratios, durations, voice methods)
are :mod:`genbatch.cards`, the definition the client's typed cards use too;
:data:`CARD_RULES` says which of them a recipe checks for each type, so a bad card fails at load
time naming the recipe field.  The starter templates' columns live in
:data:`STARTER_TEMPLATES`.
"""

from __future__ import annotations

import re
import string
import tomllib
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any, Final, Literal, NoReturn, Protocol, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from genbatch import cards
from genbatch.errors import InputError

#: Default download name pattern; `{column}` placeholders from the row.
ENGINE_DEFAULT_OUTPUT_NAME: Final = "{row_id}.mp4"
#: The template cell that carries the layer stack and gets rendered.
ENGINE_FINAL_VIDEO_CELL: Final = "final_video"
#: TikTok caption limit; a longer description fails the row before any spend.
ENGINE_PUBLISH_DESCRIPTION_MAX_CHARS: Final = 2_200

__all__ = [
    "CARD_RULES",
    "STARTER_TEMPLATES",
    "STEP_CLONE",
    "STEP_DOWNLOAD",
    "STEP_FILL",
    "STEP_PUBLISH",
    "STEP_RENDER",
    "AssetPlan",
    "CardRule",
    "ColumnSpec",
    "GenerationPlan",
    "PricingLike",
    "PublishPlan",
    "Recipe",
    "RecipeError",
    "Ref",
    "RenderPlan",
    "RowPlan",
    "RowPlanError",
    "TemplateSpec",
    "default_recipe_slugs",
]

# Journal step names, shared by the planner and the pipeline.
STEP_CLONE = "clone"
STEP_FILL = "fill"
STEP_RENDER = "render"
STEP_DOWNLOAD = "download"
STEP_PUBLISH = "publish"


# --------------------------------------------------------------------------
# The reference's creation-card lists (GEN-API.md "Creation Card Types").
# --------------------------------------------------------------------------
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


# The value lists are genbatch.cards (the client's typed cards use the same
# aliases); this table says which of them a recipe checks, per type.
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


# --------------------------------------------------------------------------
# Starter templates (contract table): column name -> type, default card.
# --------------------------------------------------------------------------
ColumnType = Literal["text", "image", "video", "audio"]


@dataclass(frozen=True, slots=True)
class ColumnSpec:
    name: str
    type: ColumnType
    #: generation_type of the cell's default creation card (None for text).
    card: str | None = None


@dataclass(frozen=True, slots=True)
class TemplateSpec:
    slug: str
    aspect_ratio: str
    video_types: tuple[str, ...]
    columns: tuple[ColumnSpec, ...]

    def column(self, name: str) -> ColumnSpec | None:
        return next((c for c in self.columns if c.name == name), None)


def _t(
    slug: str, video_types: tuple[str, ...], *cols: tuple[str, ColumnType, str | None]
) -> TemplateSpec:
    columns = tuple(ColumnSpec(n, t, c) for n, t, c in cols)
    final = ColumnSpec(ENGINE_FINAL_VIDEO_CELL, "video", None)
    return TemplateSpec(slug, "9:16", video_types, (*columns, final))


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


# --------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------
class RecipeError(InputError, ValueError):
    """The recipe (or its fit with the table) is wrong: fix it before running."""


class RowPlanError(ValueError):
    """One row cannot be planned; the row fails before any paid call."""

    def __init__(self, field: str, message: str, column: str | None = None) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.column = column
        self.message = message


# --------------------------------------------------------------------------
# Placeholders
# --------------------------------------------------------------------------
_NAME = re.compile(r"^[^\W\d][\w\- ]*$")
_REF = re.compile(r"^@([A-Za-z_][\w-]*)$")
_FORMATTER = string.Formatter()


@dataclass(frozen=True, slots=True)
class _Template:
    """A parsed ``"text {col} more"`` string: literal/name parts, no eval."""

    parts: tuple[tuple[str, str | None], ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(n for _, n in self.parts if n is not None)

    def render(self, values: Mapping[str, str], field: str) -> str:
        out: list[str] = []
        for literal, name in self.parts:
            out.append(literal)
            if name is None:
                continue
            value = values.get(name)
            if value is None:
                raise RowPlanError(field, f"column {name!r} is empty for this row", column=name)
            out.append(value)
        return "".join(out)


def _parse(text: str, field: str) -> _Template:
    try:
        parsed = list(_FORMATTER.parse(text))
    except ValueError as exc:
        raise RecipeError(f"{field}: bad placeholder syntax in {text!r}: {exc}") from None
    parts: list[tuple[str, str | None]] = []
    for literal, name, spec, conversion in parsed:
        if name is None:
            parts.append((literal, None))
            continue
        if not _NAME.match(name) or spec or conversion:
            shown = (
                "{"
                + name
                + (f"!{conversion}" if conversion else "")
                + (f":{spec}" if spec else "")
                + "}"
            )
            raise RecipeError(
                f"{field}: {shown} is not a simple {{column}} placeholder "
                "(no attributes, indexes, conversions or format specs; {{ and }} for braces)"
            )
        parts.append((literal, name))
    return _Template(tuple(parts))


# --------------------------------------------------------------------------
# Plan objects (pure data; what the pipeline executes)
# --------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Ref:
    """A card value resolved at run time: a generated or uploaded resource id."""

    kind: Literal["output", "upload"]
    cell: str

    @property
    def key(self) -> str:
        """Key in the mapping given to :meth:`GenerationPlan.resolve`."""
        return f"{self.kind}:{self.cell}"


@dataclass(frozen=True, slots=True)
class AssetPlan:
    """A local file (relative to the table) to upload for ``cell``."""

    cell: str
    path: str

    @property
    def step(self) -> str:
        return f"upload:{self.cell}"


@dataclass(frozen=True, slots=True)
class GenerationPlan:
    """One cell generation: its card, and what it waits for."""

    cell: str
    generation_type: str
    data: Mapping[str, Any]
    needs: tuple[str, ...]

    @property
    def step(self) -> str:
        return f"generate:{self.cell}"

    @property
    def model(self) -> str | None:
        model = self.data.get("model")
        return model if isinstance(model, str) else None

    @property
    def refs(self) -> tuple[Ref, ...]:
        return tuple(_iter_refs(self.data))

    def resolve(self, resources: Mapping[str, object]) -> dict[str, Any]:
        """The card's ``data`` with every :class:`Ref` replaced by its id.

        ``resources`` maps :attr:`Ref.key` (``"output:voiceover"``,
        ``"upload:music"``) to the resource id the API returned.
        """

        def sub(value: Any) -> Any:
            if isinstance(value, Ref):
                if value.key not in resources:
                    raise KeyError(f"{self.step} needs {value.key}, which is not available yet")
                return resources[value.key]
            if isinstance(value, list | tuple):
                return [sub(v) for v in value]
            if isinstance(value, Mapping):
                return {k: sub(v) for k, v in value.items()}
            return value

        resolved: dict[str, Any] = sub(self.data)
        return resolved


@dataclass(frozen=True, slots=True)
class RenderPlan:
    cell: str
    step: str = STEP_RENDER


@dataclass(frozen=True, slots=True)
class PublishPlan:
    platform: str
    description: str
    schedule_type: Literal["now", "scheduled"]
    scheduled_time: str | None
    media_type: str = "VIDEO"

    def data(self, media_url: str) -> dict[str, str]:
        """The publish_content ``data`` object (the client JSON-encodes it)."""
        out = {
            "platform": self.platform,
            "media_url": media_url,
            "description": self.description,
            "schedule_type": self.schedule_type,
            "media_type": self.media_type,
        }
        if self.scheduled_time is not None:
            out["scheduled_time"] = self.scheduled_time
        return out


class PricingLike(Protocol):
    """What :meth:`RowPlan.credit_estimate` needs (see ``engine.credits``)."""

    def price(self, generation_type: str, model: str | None = None) -> float: ...


@dataclass(frozen=True, slots=True)
class RowPlan:
    """Everything one row will do, in order; no I/O has happened."""

    template: str
    cell_values: Mapping[str, str]
    assets: tuple[AssetPlan, ...]
    generations: tuple[GenerationPlan, ...]
    render: RenderPlan | None
    output_name: str
    publish: PublishPlan | None

    def waves(self) -> list[list[GenerationPlan]]:
        """Generations grouped so each wave only needs earlier waves.

        Cells in one wave are independent and may run concurrently.
        """
        done: set[str] = set()
        remaining = list(self.generations)
        waves: list[list[GenerationPlan]] = []
        while remaining:
            wave = [g for g in remaining if set(g.needs) <= done]
            waves.append(wave)
            done.update(g.cell for g in wave)
            remaining = [g for g in remaining if g not in wave]
        return waves

    @property
    def paid_steps(self) -> tuple[tuple[str, str, str | None], ...]:
        """``(step, generation_type, model)`` for every charged POST."""
        steps = [(g.step, g.generation_type, g.model) for g in self.generations]
        if self.render is not None:
            steps.append((self.render.step, "render", None))
        return tuple(steps)

    @property
    def job_count(self) -> int:
        """Jobs the poll hub will watch (generations, render, publish)."""
        return len(self.generations) + (self.render is not None) + (self.publish is not None)

    def credit_estimate(self, pricing: PricingLike) -> float:
        return sum(pricing.price(kind, model) for _, kind, model in self.paid_steps)


def _iter_refs(value: Any) -> Iterator[Ref]:
    if isinstance(value, Ref):
        yield value
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _iter_refs(v)
    elif isinstance(value, Mapping):
        for v in value.values():
            yield from _iter_refs(v)


# --------------------------------------------------------------------------
# The TOML model
# --------------------------------------------------------------------------
_Scalar = str | int | float | bool
_CardValue = _Scalar | list[_Scalar] | dict[str, _Scalar]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GenerateSpec(_Model):
    cell: str
    generation_type: str
    data: dict[str, _CardValue] = Field(default_factory=dict)
    after: list[str] = Field(default_factory=list)

    @field_validator("generation_type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        if value not in CARD_RULES:
            raise ValueError(
                f"unknown generation_type {value!r} (one of: {', '.join(sorted(CARD_RULES))})"
            )
        return value


class RenderSpec(_Model):
    enabled: bool = True
    cell: str = ENGINE_FINAL_VIDEO_CELL


class OutputSpec(_Model):
    name: str = ENGINE_DEFAULT_OUTPUT_NAME


class PublishSpec(_Model):
    #: "auto": publish exactly the rows that carry a ``publish_at``.
    enabled: bool | Literal["auto"] = "auto"
    platform: Literal["tiktok"] = "tiktok"
    description: str = "{hook}"
    hashtags: list[str] = Field(default_factory=list)

    @field_validator("hashtags")
    @classmethod
    def _tags(cls, value: list[str]) -> list[str]:
        tags = []
        for tag in value:
            bare = tag.lstrip("#")
            if not bare or any(ch.isspace() or ch == "#" for ch in bare):
                raise ValueError(f"hashtag {tag!r} must be one word")
            tags.append("#" + bare)
        return tags


class Recipe(_Model):
    """A validated recipe.  Build with :meth:`load`, :meth:`from_toml` or :meth:`default`."""

    template: str
    description: str = ""
    cells: dict[str, str] = Field(default_factory=dict)
    assets: dict[str, str] = Field(default_factory=dict)
    generate: list[GenerateSpec] = Field(default_factory=list)
    render: RenderSpec = Field(default_factory=RenderSpec)
    output: OutputSpec = Field(default_factory=OutputSpec)
    publish: PublishSpec = Field(default_factory=PublishSpec)

    # -- loading ---------------------------------------------------------
    @classmethod
    def from_toml(cls, text: str, source: str = "<recipe>") -> Recipe:
        try:
            raw = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise RecipeError(f"{source}: not valid TOML: {exc}") from None
        try:
            recipe = cls.model_validate(raw)
        except ValidationError as exc:
            lines = []
            for err in exc.errors():
                where = ".".join(str(p) for p in err["loc"]) or "recipe"
                lines.append(f"{where}: {err['msg'].removeprefix('Value error, ')}")
            raise RecipeError(f"{source}: " + "; ".join(lines)) from None
        try:
            recipe._check()
        except RecipeError as exc:
            raise RecipeError(f"{source}: {exc}") from None
        return recipe

    @classmethod
    def load(cls, path: Path | str) -> Recipe:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise RecipeError(f"{path}: cannot read recipe: {exc.strerror}") from None
        return cls.from_toml(text, source=str(path))

    @classmethod
    def default(cls, slug: str) -> Recipe:
        """The packaged default recipe for a starter template."""
        if slug not in default_recipe_slugs():
            raise RecipeError(
                f"no default recipe for template {slug!r} "
                f"(available: {', '.join(default_recipe_slugs())}); pass --recipe FILE"
            )
        res = resources.files("genbatch") / "recipes" / f"{slug}.toml"
        return cls.from_toml(res.read_text(encoding="utf-8"), source=f"default recipe {slug}")

    # -- static checks ---------------------------------------------------
    def _fields(self) -> Iterator[tuple[str, str]]:
        """Every placeholder-bearing string as ``(field path, text)``."""
        for cell, text in self.cells.items():
            yield f"cells.{cell}", text
        for gen in self.generate:
            yield from _walk_strings(f"generate.{gen.cell}.data", gen.data)
        yield "output.name", self.output.name
        if self.publish.enabled is not False:
            yield "publish.description", self.publish.description

    def _check(self) -> None:
        template = STARTER_TEMPLATES.get(self.template)
        generated = [g.cell for g in self.generate]
        if len(set(generated)) != len(generated):
            raise RecipeError("a cell is generated twice in [[generate]]")
        targets = set(generated) | set(self.assets)
        overlap = (set(self.cells) & targets) | (set(generated) & set(self.assets))
        if overlap:
            raise RecipeError(f"cell(s) {sorted(overlap)} are both filled and generated/uploaded")
        if self.render.cell in set(self.cells) | targets:
            raise RecipeError(
                f"render cell {self.render.cell!r} cannot also be filled or generated"
            )
        for field, text in self._fields():
            _parse(text, field)
        for cell, text in self.assets.items():
            _parse(text, f"assets.{cell}")
        for gen in self.generate:
            rule = CARD_RULES[gen.generation_type]
            for key in rule.required:
                if key not in gen.data:
                    raise RecipeError(
                        f"generate.{gen.cell}.data: {gen.generation_type} needs {key!r}"
                    )
            _check_card(gen.generation_type, _literal_card(gen.data), f"generate.{gen.cell}.data")
            for dep in self._deps(gen):
                if dep not in targets:
                    raise RecipeError(
                        f"generate.{gen.cell} refers to {dep!r}, which no [[generate]] or "
                        "[assets] entry produces"
                    )
        self._order()  # raises on a cycle
        if template is not None:
            self._check_template(template)

    def _check_template(self, template: TemplateSpec) -> None:
        names = [c.name for c in template.columns]
        for cell in self.cells:
            col = template.column(cell)
            if col is None:
                raise RecipeError(f"cells.{cell}: {self.template} has no column {cell!r} ({names})")
            if col.type != "text":
                raise RecipeError(
                    f"cells.{cell}: column is {col.type}; generate it or list it under [assets]"
                )
        for cell in [g.cell for g in self.generate] + list(self.assets):
            col = template.column(cell)
            if col is None or col.name == ENGINE_FINAL_VIDEO_CELL:
                raise RecipeError(
                    f"{cell!r} is not an ingredient column of {self.template} ({names})"
                )
        if template.column(self.render.cell) is None:
            raise RecipeError(f"render.cell: {self.template} has no column {self.render.cell!r}")

    def _deps(self, gen: GenerateSpec) -> list[str]:
        refs = [m.group(1) for _, text in _walk_strings("", gen.data) if (m := _REF.match(text))]
        return refs + list(gen.after)

    def _order(self) -> list[GenerateSpec]:
        """Generations in dependency order (stable: recipe order among equals)."""
        by_cell = {g.cell: g for g in self.generate}
        done: set[str] = set(self.assets)
        ordered: list[GenerateSpec] = []
        pending = list(self.generate)
        while pending:
            ready = [g for g in pending if all(d in done for d in self._deps(g))]
            if not ready:
                cycle = ", ".join(g.cell for g in pending)
                raise RecipeError(f"[[generate]] has a dependency cycle among: {cycle}")
            for g in ready:
                done.add(g.cell)
                ordered.append(g)
            pending = [g for g in pending if g.cell not in done]
        assert len(ordered) == len(by_cell)
        return ordered

    # -- against a table -------------------------------------------------
    def placeholders(self) -> dict[str, tuple[str, ...]]:
        """Required columns per recipe field (assets are optional)."""
        return {f: _parse(t, f).names for f, t in self._fields() if _parse(t, f).names}

    def check_columns(self, columns: Collection[str]) -> None:
        """Raise :class:`RecipeError` if a placeholder names no column.

        Call before the run with the table's columns (plus reserved names the
        defaults provide): a typo then stops everything before any spend.
        """
        available = set(columns)
        for field, names in self.placeholders().items():
            if field == "publish.description" and not self._may_publish(available):
                continue
            for name in names:
                if name not in available:
                    raise RecipeError(
                        f"recipe field {field} uses {{{name}}} but the table has no "
                        f"column {name!r} (columns: {', '.join(sorted(available))})"
                    )

    # -- per row -----------------------------------------------------------
    def _may_publish(self, columns: Collection[str]) -> bool:
        if self.publish.enabled == "auto":
            return "publish_at" in columns
        return bool(self.publish.enabled)

    def publishes(self, values: Mapping[str, str]) -> bool:
        """Whether this row gets a publish step (``"auto"``: it has publish_at)."""
        if self.publish.enabled == "auto":
            return bool(values.get("publish_at"))
        return bool(self.publish.enabled)

    def plan_row(self, values: Mapping[str, str]) -> RowPlan:
        """Turn one row's values into concrete actions (pure; no I/O).

        Raises :class:`RowPlanError` naming the field and column when the row
        lacks a value or fills a card with something the reference forbids.
        """
        cell_values = {
            c: _parse(t, f"cells.{c}").render(values, f"cells.{c}") for c, t in self.cells.items()
        }
        assets: list[AssetPlan] = []
        gens: list[GenerationPlan] = []
        for cell, text in self.assets.items():
            tmpl = _parse(text, f"assets.{cell}")
            if any(not values.get(n) for n in tmpl.names):
                continue  # optional: the template's own default stays
            assets.append(AssetPlan(cell, tmpl.render(values, f"assets.{cell}")))
            gens.append(
                GenerationPlan(cell, "media", {"content_resource_id": Ref("upload", cell)}, ())
            )
        uploaded = {a.cell for a in assets}
        skipped_assets = set(self.assets) - uploaded
        for gen in self._order():
            field = f"generate.{gen.cell}.data"
            deps = self._deps(gen)
            # A reference to an asset the row did not provide: drop the
            # dependency if it was only ordering; a data reference fails.
            data = _fill(gen.data, values, field, skipped_assets)
            _check_card(gen.generation_type, data, field, row=True)
            needs = tuple(d for d in dict.fromkeys(deps) if d not in skipped_assets)
            gens.append(GenerationPlan(gen.cell, gen.generation_type, data, needs))
        render = RenderPlan(self.render.cell) if self.render.enabled else None
        name = _parse(self.output.name, "output.name").render(values, "output.name")
        publish = self._plan_publish(values) if self.publishes(values) else None
        if publish is not None and render is None:
            raise RowPlanError(
                "publish", "publishing needs render enabled (it posts the render URL)"
            )
        return RowPlan(
            template=self.template,
            cell_values=cell_values,
            assets=tuple(assets),
            generations=tuple(gens),
            render=render,
            output_name=name,
            publish=publish,
        )

    def _plan_publish(self, values: Mapping[str, str]) -> PublishPlan:
        text = _parse(self.publish.description, "publish.description").render(
            values, "publish.description"
        )
        present = {w.casefold() for w in text.split()}
        tags = [t for t in self.publish.hashtags if t.casefold() not in present]
        description = " ".join([text, *tags]).strip()
        if len(description) > ENGINE_PUBLISH_DESCRIPTION_MAX_CHARS:
            raise RowPlanError(
                "publish.description",
                f"is {len(description):,} characters (TikTok allows "
                f"{ENGINE_PUBLISH_DESCRIPTION_MAX_CHARS:,})",
            )
        when = values.get("publish_at")
        if not when:
            return PublishPlan(self.publish.platform, description, "now", None)
        try:
            at = datetime.fromisoformat(when)
        except ValueError:
            raise RowPlanError("publish_at", f"{when!r} is not ISO 8601", "publish_at") from None
        if at.tzinfo is None:
            raise RowPlanError("publish_at", "needs a timezone", "publish_at")
        stamp = at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return PublishPlan(self.publish.platform, description, "scheduled", stamp)


def _walk_strings(prefix: str, value: Any) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield prefix, value
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _walk_strings(f"{prefix}[{i}]", v)
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _walk_strings(f"{prefix}.{k}" if prefix else k, v)


def _literal_card(data: Mapping[str, Any]) -> dict[str, Any]:
    """The card fields whose values contain no placeholder or reference."""
    out = {}
    for key, value in data.items():
        if isinstance(value, str) and (_REF.match(value) or _parse(value, key).names):
            continue
        out[key] = value
    return out


def _fill(value: Any, values: Mapping[str, str], field: str, skipped: set[str]) -> Any:
    if isinstance(value, str):
        if m := _REF.match(value):
            cell = m.group(1)
            if cell in skipped:
                raise RowPlanError(
                    field, f"needs asset {cell!r}, which this row does not provide", cell
                )
            return Ref("output", cell)
        return _parse(value, field).render(values, field)
    if isinstance(value, list):
        return [_fill(v, values, f"{field}[{i}]", skipped) for i, v in enumerate(value)]
    if isinstance(value, dict):
        return {k: _fill(v, values, f"{field}.{k}", skipped) for k, v in value.items()}
    return value


def _check_card(kind: str, data: Mapping[str, Any], field: str, *, row: bool = False) -> None:
    """Check a card against :data:`CARD_RULES`; coerce numeric fields in place."""
    rule = CARD_RULES[kind]

    def fail(key: str, message: str) -> NoReturn:
        if row:
            raise RowPlanError(f"{field}.{key}", message)
        raise RecipeError(f"{field}.{key}: {message}")

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
    allowed("voice_method", rule.voice_methods)


def _coerce(value: Any, kind: type[int] | type[float], fail: Any, key: str) -> Any:
    if isinstance(value, str):
        try:
            return kind(value.strip())
        except ValueError:
            fail(key, f"{value!r} is not a number")
    return value


def default_recipe_slugs() -> tuple[str, ...]:
    """Templates with a packaged default recipe."""
    folder = resources.files("genbatch") / "recipes"
    return tuple(
        sorted(
            entry.name.removesuffix(".toml")
            for entry in folder.iterdir()
            if entry.name.endswith(".toml") and entry.name != "pricing.toml"
        )
    )
