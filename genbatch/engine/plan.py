"""Planning: which recipe each row runs, what it will cost, and the run's inputs.

Shared by ``genbatch plan`` (validates every row and adds up credits and
requests without a network) and the run (:mod:`genbatch.engine.runner`
plans each row as it admits it).  :func:`prepare` opens the table, the
recipe(s) and the prices once, so both start from the same checked inputs
and a bad input stops everything with :class:`StartError` before any spend.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from genbatch.engine.credits import Pricing, PricingError
from genbatch.engine.poller import ENGINE_POLL_SEED_DEFAULT, ENGINE_POLL_SEED_SECONDS
from genbatch.engine.recipe import Recipe, RecipeError, default_recipe_slugs
from genbatch.engine.rowplan import RowPlan, RowPlanError
from genbatch.engine.table import InputRow, RowError, Table, TableError
from genbatch.errors import InputError

__all__ = [
    "PlanReport",
    "RecipeBook",
    "StartError",
    "estimate_requests",
    "plan_row",
    "plan_rows",
    "prepare",
    "row_key",
    "row_seconds",
]


class StartError(InputError):
    """The run cannot start (bad table/recipe, journal locked, key refused): exit 2."""


class RecipeBook:
    """Which recipe a row runs: ``--recipe`` for all, else its template's default.

    A default recipe is loaded (and checked against the table's columns) the
    first time a row asks for it; a failure fails exactly the rows of that
    template, with the reason.
    """

    def __init__(self, fixed: Recipe | None, template: str | None, columns: frozenset[str]):
        self.fixed = fixed
        self.template = template
        self._columns = columns
        self._loaded: dict[str, Recipe | RecipeError] = {}

    @classmethod
    def create(cls, fixed: Recipe | None, template: str | None, table: Table) -> RecipeBook:
        """Check what can be checked before the run (raises RecipeError)."""
        book = cls(fixed, template, table.placeholder_columns)
        if fixed is not None:
            fixed.check_columns(table.placeholder_columns)
        elif template is not None:
            loaded = book._default(template)
            if isinstance(loaded, RecipeError):
                raise loaded
        return book

    @staticmethod
    def known_templates(recipe: Path | None) -> frozenset[str] | None:
        """Templates a row may name (None: the recipe decides)."""
        return None if recipe is not None else frozenset(default_recipe_slugs())

    def _default(self, slug: str) -> Recipe | RecipeError:
        found = self._loaded.get(slug)
        if found is None:
            try:
                found = Recipe.default(slug)
                found.check_columns(self._columns)
            except RecipeError as exc:
                found = exc
            self._loaded[slug] = found
        return found

    def for_row(self, row: InputRow) -> Recipe:
        if self.fixed is not None:
            if row.template is not None and row.template != self.fixed.template:
                raise RowPlanError(
                    "template",
                    f"row asks for {row.template!r} but --recipe is for {self.fixed.template!r}",
                    "template",
                )
            return self.fixed
        slug = row.template or self.template
        if slug is None:
            raise RowPlanError(
                "engine_id", "rows with an engine_id need --recipe FILE or --template SLUG"
            )
        found = self._default(slug)
        if isinstance(found, RecipeError):
            raise RowPlanError("recipe", str(found))
        return found


def plan_row(book: RecipeBook, row: InputRow) -> RowPlan:
    """The row's plan (raises RowPlanError with the reason)."""
    return book.for_row(row).plan_row(row.placeholders())


def row_fingerprint(row: InputRow, plan: RowPlan) -> str:
    """What a row asks for: its values and the plan its recipe made of them.

    Equal on a rerun when nothing the row's video depends on changed (a
    changed hook, model or template changes it); stable across processes
    (sorted JSON, no set or hash order).
    """
    doc = {"row": row.model_dump(mode="json"), "plan": dataclasses.asdict(plan)}
    text = json.dumps(doc, sort_keys=True, default=str, ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def row_key(item: InputRow | RowError) -> str:
    """The journal key of a table item (an invalid row without an id: its number)."""
    if isinstance(item, InputRow):
        return item.row_id
    return item.row_id if item.row_id else f"#{item.row_number}"


def estimate_requests(plan: RowPlan) -> int:
    """API requests one row needs at best (one poll per job; CDN not counted)."""
    n = 1  # clone
    n += 1 if plan.cell_values else 0
    n += len(plan.assets)  # multipart upload (direct upload: 2 more)
    n += 2 * len(plan.generations)  # POST + one poll
    n += 2 if plan.render is not None else 0
    n += 2 if plan.publish is not None else 0
    return n


def _typical(kind: str) -> float:
    return ENGINE_POLL_SEED_SECONDS.get(kind, ENGINE_POLL_SEED_DEFAULT)


def row_seconds(plan: RowPlan) -> float:
    """A row's own duration at GEN's typical latencies: its generation waves one
    after another (the slowest job of each), then its render and publish.

    No rate limit makes a run shorter than its longest row, and the last row
    admitted still has all of it to go when the requests are spent."""
    total = sum(max(_typical(g.generation_type) for g in wave) for wave in plan.waves())
    total += _typical("render") if plan.render is not None else 0.0
    total += _typical("publish_content") if plan.publish is not None else 0.0
    return total


@dataclass(slots=True)
class PlanReport:
    """What ``genbatch plan`` shows: rows checked, and the cost of the valid ones."""

    rows: int
    valid: int
    invalid: list[tuple[str, str]]
    credits: float
    requests: int
    #: The longest valid row's own duration (:func:`row_seconds`), in GEN seconds.
    row_seconds: float = 0.0

    def lower_bound(self, rate: float) -> float:
        """Seconds the requests take at best at ``rate`` requests per second."""
        return self.requests / rate if rate > 0 else float("inf")

    def estimate(self, rate: float, time_scale: float = 1.0) -> float:
        """Seconds a run takes, about: the requests at ``rate`` plus the last
        rows' own jobs (latencies x ``time_scale``: a simulator's speed)."""
        return self.lower_bound(rate) + self.row_seconds * time_scale


def plan_rows(
    table: Table, book: RecipeBook, pricing: Pricing, limit: int | None = None
) -> PlanReport:
    """Validate every row and add up credits and requests; spends nothing."""
    report = PlanReport(0, 0, [], 0.0, 0)
    for n, item in enumerate(table, 1):
        report.rows += 1
        if limit is not None and n > limit:
            continue
        if isinstance(item, RowError):
            report.invalid.append((row_key(item), item.reason))
            continue
        try:
            plan = plan_row(book, item)
            report.credits += plan.credit_estimate(pricing)
        except (RowPlanError, PricingError) as exc:
            report.invalid.append((item.row_id, str(exc)))
            continue
        report.valid += 1
        report.requests += estimate_requests(plan)
        report.row_seconds = max(report.row_seconds, row_seconds(plan))
    return report


def prepare(
    table_path: Path,
    *,
    recipe: Path | None,
    template: str | None,
    agent: str | None,
    pricing: Path | None,
    require_agent: bool = True,
) -> tuple[Table, RecipeBook, Pricing]:
    """Open the table, load and check the recipe(s) and prices (raises StartError).

    ``require_agent=False`` (``plan``, which sends nothing): a table with no
    agent yet is planned all the same."""
    try:
        fixed = Recipe.load(recipe) if recipe is not None else None
        table = Table.open(
            table_path,
            default_agent=agent,
            default_template=fixed.template if fixed is not None else template,
            known_templates=RecipeBook.known_templates(recipe),
            require_agent=require_agent,
        )
        book = RecipeBook.create(fixed, template, table)
        prices = Pricing.load(pricing)
    except (TableError, RecipeError, PricingError) as exc:
        raise StartError(str(exc)) from None
    return table, book, prices
