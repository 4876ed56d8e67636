"""Give a row's layers content so its render is accepted (render refuses empty layers)."""

from __future__ import annotations

from typing import Any

import aiohttp
from simhelp import call, cell_url

from genbatch.sim import templates


def layer_sources(slug: str) -> list[str]:
    """The columns a starter template's final_video layers read, in stack order."""
    return [layer.source_column for layer in templates.TEMPLATES_BY_SLUG[slug].layers]


async def fill_layers(
    http: aiohttp.ClientSession, eng: dict[str, Any], slug: str = "tiktok-montage", row: int = 0
) -> list[str]:
    """PATCH a value into every still-empty cell the row's layers read (free: nothing is
    generated, nothing charged); returns the columns it filled."""
    filled = []
    for column in layer_sources(slug):
        cell = await call(http, "GET", cell_url(eng, column, row=row), 200)
        if cell["value"] in (None, ""):
            body = {"spreadsheet_cell": {"value": f"{column} for row {row}"}}
            await call(http, "PATCH", cell_url(eng, column, row=row), 200, json=body)
            filled.append(column)
    return filled
