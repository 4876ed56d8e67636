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

from typing import TYPE_CHECKING, Final

from genbatch._lazy import exports

if TYPE_CHECKING:
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

_WHERE: Final[dict[str, str]] = {
    "CreditLedger": "genbatch.engine.credits",
    "CreditsRefused": "genbatch.engine.credits",
    "Pricing": "genbatch.engine.credits",
    "PricingError": "genbatch.engine.credits",
    "Reservation": "genbatch.engine.credits",
    "Intent": "genbatch.engine.journal",
    "Journal": "genbatch.engine.journal",
    "JournalError": "genbatch.engine.journal",
    "JournalLocked": "genbatch.engine.journal",
    "RowRecord": "genbatch.engine.journal",
    "StepRecord": "genbatch.engine.journal",
    "ConcurrencyCap": "genbatch.engine.limits",
    "Limits": "genbatch.engine.limits",
    "Priority": "genbatch.engine.limits",
    "RateGate": "genbatch.engine.limits",
    "through": "genbatch.engine.limits",
    "NameAllocator": "genbatch.engine.naming",
    "UnsafePathError": "genbatch.engine.naming",
    "open_nofollow": "genbatch.engine.naming",
    "resolve_inside": "genbatch.engine.naming",
    "safe_filename": "genbatch.engine.naming",
    "safe_join": "genbatch.engine.naming",
    "PollHub": "genbatch.engine.poller",
    "is_terminal": "genbatch.engine.poller",
    "Recipe": "genbatch.engine.recipe",
    "RecipeError": "genbatch.engine.recipe",
    "default_recipe_slugs": "genbatch.engine.recipe",
    "RowPlan": "genbatch.engine.rowplan",
    "RowPlanError": "genbatch.engine.rowplan",
    "InputRow": "genbatch.engine.table",
    "RowError": "genbatch.engine.table",
    "Table": "genbatch.engine.table",
    "TableError": "genbatch.engine.table",
    "STARTER_TEMPLATES": "genbatch.engine.templates",
}

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

__getattr__, __dir__ = exports(__name__, _WHERE, globals())
