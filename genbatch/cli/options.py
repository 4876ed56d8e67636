"""Options more than one command takes: the table and what each row runs."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["add_table_args"]


def add_table_args(p: argparse.ArgumentParser) -> None:
    """``TABLE``, ``--recipe | --template``, ``--agent``, ``--pricing``, ``--limit``
    (``run`` and ``plan`` read a table the same way)."""
    p.add_argument("table", type=Path, help="input table (.csv or .parquet)")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--recipe", type=Path, metavar="F", help="recipe TOML for every row")
    which.add_argument(
        "--template", metavar="SLUG", help="template (default recipe) for rows without one"
    )
    p.add_argument("--agent", metavar="ID", help="agent id for rows without an agent_id")
    p.add_argument(
        "--pricing",
        type=Path,
        metavar="F",
        help="pricing TOML (default: GEN's published typical costs, genbatch/recipes/pricing.toml)",
    )
    p.add_argument("--limit", type=int, metavar="N", help="only the first N rows (default: all)")
