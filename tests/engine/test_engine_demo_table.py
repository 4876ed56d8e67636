"""inputs/demo.csv plans cleanly with the default recipes (no network)."""

from __future__ import annotations

from pathlib import Path

from genbatch.engine.credits import Pricing
from genbatch.engine.naming import NameAllocator
from genbatch.engine.recipe import Recipe
from genbatch.engine.table import InputRow, Table
from genbatch.engine.templates import STARTER_TEMPLATES

DEMO = Path(__file__).resolve().parents[2] / "inputs" / "demo.csv"


def test_demo_table_plans_every_row() -> None:
    table = Table.open(DEMO, default_agent="1000", known_templates=STARTER_TEMPLATES)
    assert 10 <= table.row_count <= 15
    names = NameAllocator()
    templates = set()
    credits = 0.0
    pricing = Pricing.load()
    for row in table:
        assert isinstance(row, InputRow), str(row)
        recipe = Recipe.default(row.template or "")
        recipe.check_columns(table.placeholder_columns)
        plan = recipe.plan_row(row.placeholders())
        assert plan.render is not None and plan.publish is None
        assert names.assign(row.row_id, plan.output_name) == f"{row.row_id}.mp4"
        templates.add(row.template)
        credits += plan.credit_estimate(pricing)
    assert len(templates) >= 4  # a mix of starter templates
    assert credits > 0
