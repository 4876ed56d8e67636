"""The batch producer: rows in, videos out.  Knows rows, not HTTP details.

Building blocks, one concern each: ``table`` (read and validate the input),
``recipe`` (what to do with a row), ``templates`` (the starter templates'
columns), ``card_rules`` (allowed card values), ``rowplan`` (one row's
plan), ``plan`` (recipes per row, costs), ``naming`` (safe output names),
``journal`` (durable intents and row states), ``limits`` (rate and
concurrency gates), ``credits`` (budget), ``poller`` (one scheduler for every
pending job).  The names below are the surface the pipeline is built on.
"""

from __future__ import annotations

from genbatch.engine.credits import (
    CreditLedger,
    CreditsRefused,
    Pricing,
    PricingError,
    Reservation,
)
from genbatch.engine.journal import (
    Intent,
    Journal,
    JournalError,
    JournalLocked,
    RowRecord,
    StepRecord,
)
from genbatch.engine.limits import ConcurrencyCap, Limits, Priority, RateGate, through
from genbatch.engine.naming import (
    NameAllocator,
    UnsafePathError,
    open_nofollow,
    resolve_inside,
    safe_filename,
    safe_join,
)
from genbatch.engine.poller import PollHub, is_terminal
from genbatch.engine.recipe import Recipe, RecipeError, default_recipe_slugs
from genbatch.engine.rowplan import RowPlan, RowPlanError
from genbatch.engine.table import InputRow, RowError, Table, TableError
from genbatch.engine.templates import STARTER_TEMPLATES

__all__ = [
    "STARTER_TEMPLATES",
    "ConcurrencyCap",
    "CreditLedger",
    "CreditsRefused",
    "InputRow",
    "Intent",
    "Journal",
    "JournalError",
    "JournalLocked",
    "Limits",
    "NameAllocator",
    "PollHub",
    "Pricing",
    "PricingError",
    "Priority",
    "RateGate",
    "Recipe",
    "RecipeError",
    "Reservation",
    "RowError",
    "RowPlan",
    "RowPlanError",
    "RowRecord",
    "StepRecord",
    "Table",
    "TableError",
    "UnsafePathError",
    "default_recipe_slugs",
    "is_terminal",
    "open_nofollow",
    "resolve_inside",
    "safe_filename",
    "safe_join",
    "through",
]
