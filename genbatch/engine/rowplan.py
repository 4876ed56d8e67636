"""A row's plan: what one row will do, in order, as pure data.

:meth:`genbatch.engine.recipe.Recipe.plan_row` builds a :class:`RowPlan`
from a row's values; the pipeline executes it and ``genbatch plan`` counts
its requests and credits.  Nothing here does I/O or knows the recipe's
syntax, so the pipeline depends on the plan alone.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

__all__ = [
    "STEP_CLONE",
    "STEP_DOWNLOAD",
    "STEP_FILL",
    "STEP_PUBLISH",
    "STEP_RENDER",
    "AssetPlan",
    "GenerationPlan",
    "PricingLike",
    "PublishPlan",
    "Ref",
    "RenderPlan",
    "RowPlan",
    "RowPlanError",
]

# Journal step names, shared by the planner and the pipeline.
STEP_CLONE = "clone"
STEP_FILL = "fill"
STEP_RENDER = "render"
STEP_DOWNLOAD = "download"
STEP_PUBLISH = "publish"


class RowPlanError(ValueError):
    """One row cannot be planned; the row fails before any paid call."""

    def __init__(self, field: str, message: str, column: str | None = None) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.column = column
        self.message = message


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
    """Render the template's final cell (one paid job)."""

    cell: str
    step: str = STEP_RENDER


@dataclass(frozen=True, slots=True)
class PublishPlan:
    """Post the rendered video; the description is checked when the row is planned."""

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

    def price(self, generation_type: str, card: Mapping[str, Any] | None = None) -> float: ...


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
    def paid_steps(self) -> tuple[tuple[str, str, Mapping[str, Any]], ...]:
        """``(step, generation_type, card data)`` for every charged POST."""
        steps = [(g.step, g.generation_type, g.data) for g in self.generations]
        if self.render is not None:
            steps.append((self.render.step, "render", {}))
        return tuple(steps)

    @property
    def job_count(self) -> int:
        """Jobs the poll hub will watch (generations, render, publish)."""
        return len(self.generations) + (self.render is not None) + (self.publish is not None)

    def credit_estimate(self, pricing: PricingLike) -> float:
        return sum(pricing.price(kind, card) for _, kind, card in self.paid_steps)


def _iter_refs(value: Any) -> Iterator[Ref]:
    if isinstance(value, Ref):
        yield value
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _iter_refs(v)
    elif isinstance(value, Mapping):
        for v in value.values():
            yield from _iter_refs(v)
