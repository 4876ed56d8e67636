"""The engine package's public surface is importable and explicit."""

from __future__ import annotations

from pathlib import Path

import pytest

import genbatch.engine as engine


def test_all_names_resolve() -> None:
    assert len(set(engine.__all__)) == len(engine.__all__)
    for name in engine.__all__:
        assert getattr(engine, name) is not None, name


@pytest.mark.parametrize(
    "module", ["table", "recipe", "journal", "limits", "credits", "poller", "naming"]
)
def test_building_blocks_know_rows_not_http(module: str) -> None:
    # docs/design.md §2: the engine never builds URLs; these blocks never touch HTTP.
    text = Path(engine.__file__).with_name(f"{module}.py").read_text(encoding="utf-8")
    for forbidden in ("aiohttp", "genbatch.client", "genbatch.sim", "http://", "https://"):
        assert forbidden not in text, f"{module}.py mentions {forbidden}"
