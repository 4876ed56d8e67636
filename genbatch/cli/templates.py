"""``genbatch templates`` — the templates a key can clone and the columns each needs."""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

from genbatch.cli.target import add_target_args, target
from genbatch.engine.templates import default_recipe_slugs

__all__ = ["register"]


async def _templates(args: argparse.Namespace) -> list[dict[str, Any]]:
    from genbatch.client import GenClient
    from genbatch.engine.recipe import Recipe

    async with (
        target(args) as t,
        GenClient(t.api_key, api_url=t.api_url, agent_url=t.agent_url) as client,
    ):
        found = await client.templates.list()
    recipes = set(default_recipe_slugs())
    return [
        {
            "slug": tpl.slug,
            "title": tpl.title,
            "tags": tpl.tags,
            "default_recipe": tpl.slug in recipes,
            "columns": Recipe.default(tpl.slug).columns() if tpl.slug in recipes else None,
        }
        for tpl in found
    ]


def cmd_templates(args: argparse.Namespace) -> int:
    rows = asyncio.run(_templates(args))
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    # Plain lines, never cut: a slug is what a person copies into --template.
    for r in rows:
        title = f"  {r['title']}" if r["title"] else ""
        print(f"{r['slug']}{title}")
        if r["columns"] is not None:
            print(f"    columns: row_id, {', '.join(r['columns'])}")
        else:
            print("    no default recipe: pass --recipe FILE")
        if r["tags"]:
            print(f"    tags: {', '.join(r['tags'])}")
    return 0


def register(subparsers: Any) -> None:
    """Add ``templates`` to the CLI."""
    p = subparsers.add_parser(
        "templates",
        help="list the templates you can clone",
        description="The templates your key can clone, each with the table columns its "
        "default recipe needs (--template SLUG); GEN_API_KEY, or --sim.",
    )
    add_target_args(p, rate_help=argparse.SUPPRESS, json_help="JSON on stdout")
    p.set_defaults(func=cmd_templates)
