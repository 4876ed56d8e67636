"""The page in a real browser: headless Chromium renders it, and the screenshot is not blank."""

from __future__ import annotations

from pathlib import Path

import pytest
from reporthelp import png_pixels, run_table, screenshot, vo_rows, write_csv

from genbatch.report import write_report

#: Colours the page paints solid: the status badges and the generate step's area.
COMPLETED = bytes.fromhex("2e7d32")
FAILED = bytes.fromhex("c62828")
GENERATE = bytes.fromhex("f6b26b")


@pytest.mark.timeout(1500)  # the first use may install Chromium
async def test_chromium_renders_the_report(sim_factory, tmp_path: Path, chromium: str) -> None:
    sim = await sim_factory()
    table = write_csv(
        tmp_path / "t.csv",
        ["row_id", "hook", "script"],
        [*vo_rows(5, "shot"), ["no-script", "Hook only", ""]],
    )
    out = tmp_path / "out"
    assert (await run_table(sim, table, out, template="tiktok-vo-broll")).exit_code == 1
    page = write_report(out)
    png = tmp_path / "report.png"

    screenshot(chromium, page, png, tmp_path, size="1280,2400")

    width, height, rgb = png_pixels(png)
    assert (width, height) == (1280, 2400)
    pixels = [rgb[i : i + 3] for i in range(0, len(rgb), 3)]
    colours = set(pixels)
    assert len(colours) > 100, f"only {len(colours)} colours: a blank page?"
    luma = [0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2] for p in pixels[::7]]
    mean = sum(luma) / len(luma)
    assert sum((v - mean) ** 2 for v in luma) / len(luma) > 100  # not one flat colour
    # The styles and the inline SVG were applied: badges of both statuses, the step chart.
    assert {COMPLETED, FAILED, GENERATE} <= colours
