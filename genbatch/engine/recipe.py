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
values into a :class:`~genbatch.engine.rowplan.RowPlan` — concrete cell
values, ordered generations with their cards, render, publish — so
``genbatch plan`` can count requests and credits without a network.

Neighbours, one concern each: :mod:`genbatch.engine.card_rules` (which card
values the reference allows), :mod:`genbatch.engine.templates` (the starter
templates' columns), :mod:`genbatch.engine.rowplan` (the plan a row gets).
"""

from __future__ import annotations

import re
import string
import tomllib
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any, Final, Literal, NoReturn

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from genbatch.engine.card_rules import CARD_RULES, check_card
from genbatch.engine.rowplan import (
    AssetPlan,
    GenerationPlan,
    PublishPlan,
    Ref,
    RenderPlan,
    RowPlan,
    RowPlanError,
)
from genbatch.engine.templates import (
    ENGINE_FINAL_VIDEO_CELL,
    STARTER_TEMPLATES,
    TemplateSpec,
    default_recipe_slugs,
)
from genbatch.errors import InputError

#: Default download name pattern; `{column}` placeholders from the row.
ENGINE_DEFAULT_OUTPUT_NAME: Final = "{row_id}.mp4"
#: TikTok caption limit; a longer description fails the row before any spend.
ENGINE_PUBLISH_DESCRIPTION_MAX_CHARS: Final = 2_200

__all__ = [
    "ENGINE_DEFAULT_OUTPUT_NAME",
    "ENGINE_PUBLISH_DESCRIPTION_MAX_CHARS",
    "GenerateSpec",
    "OutputSpec",
    "PublishSpec",
    "Recipe",
    "RecipeError",
    "RenderSpec",
    "default_recipe_slugs",
]


class RecipeError(InputError, ValueError):
    """The recipe (or its fit with the table) is wrong: fix it before running."""


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

    def columns(self) -> list[str]:
        """The table columns this recipe fills its cards from, in recipe order
        (``row_id`` and ``publish_at`` aside: every table has or may have them)."""
        names: dict[str, None] = {}
        for used in self.placeholders().values():
            for name in used:
                if name not in {"row_id", "publish_at"}:
                    names[name] = None
        return list(names)

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
    """Check a card (see :func:`check_card`): a recipe error at load, a row error per row."""

    def fail(key: str, message: str) -> NoReturn:
        if row:
            raise RowPlanError(f"{field}.{key}", message)
        raise RecipeError(f"{field}.{key}: {message}")

    check_card(kind, data, fail)
