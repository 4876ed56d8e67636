"""The import contract of docs/design.md §2, read from the AST of every module.

Every ``import`` and ``from … import`` counts, at module level or inside a
function (a lazy import is still a dependency).  The checker itself is tested
on a small package with known violations, so a silent pass cannot hide a
broken walk.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

import genbatch

PACKAGE = Path(genbatch.__file__).parent

_EVERY_LAYER = frozenset(
    {"client", "engine", "cli", "sim", "agents", "bench", "report", "notebook", "distributed"}
)
#: layer → the genbatch layers it must never import.
FORBIDDEN: dict[str, frozenset[str]] = {
    "client": frozenset(
        {"engine", "cli", "sim", "agents", "bench", "report", "notebook", "distributed"}
    ),
    "sim": frozenset(
        {"client", "engine", "cli", "agents", "bench", "report", "notebook", "distributed"}
    ),
    "engine": frozenset({"cli", "sim", "agents", "bench", "report", "notebook", "distributed"}),
    "agents": frozenset({"cli", "sim", "bench", "report", "notebook", "distributed"}),
    "bench": frozenset({"cli", "agents", "sim", "report", "notebook", "distributed"}),
    "report": frozenset({"cli", "sim", "agents", "distributed"}),
    "notebook": frozenset({"cli", "agents", "bench", "distributed"}),
    "distributed": frozenset({"cli", "sim", "agents", "bench", "report", "notebook"}),
    # Modules every layer shares sit below all of them.
    "errors": _EVERY_LAYER,
    "settings": _EVERY_LAYER,
    "cards": _EVERY_LAYER,
    "_constants": _EVERY_LAYER,
    "_lazy": _EVERY_LAYER,
}
#: bench drives a simulator process: the launcher and its config are the parts of sim it uses.
ALLOWED: dict[str, frozenset[str]] = {
    "bench": frozenset({"genbatch.sim.launch", "genbatch.sim.config"})
}
#: Only the entry points may import the command line.
CLI_IMPORTERS = frozenset({"cli", "__main__"})


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path, root: Path) -> Iterator[tuple[int, str]]:
    """(line, absolute module) for every import in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    here = _module_name(path, root).split(".")
    is_pkg = path.name == "__init__.py"
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = here if is_pkg else here[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            yield node.lineno, base
            for alias in node.names:  # `from genbatch import sim` imports genbatch.sim
                yield node.lineno, f"{base}.{alias.name}"


def _layer(module: str, top: str) -> str | None:
    parts = module.split(".")
    if parts[0] != top or len(parts) < 2:
        return None
    return parts[1]


def violations(root: Path) -> list[str]:
    """Every import in the package at ``root`` that breaks the contract."""
    top = root.name
    found: list[str] = []
    for path in sorted(root.rglob("*.py")):
        source = _layer(_module_name(path, root), top) or "__init__"
        for line, target in _imports(path, root):
            layer = _layer(target, top)
            if layer is None or layer == source:
                continue
            where = f"{path.relative_to(root.parent)}:{line} imports {target}"
            allowed = ALLOWED.get(source, frozenset())
            if any(target == a or target.startswith(a + ".") for a in allowed):
                continue
            if layer in FORBIDDEN.get(source, frozenset()):
                found.append(f"{where} ({source} must not import {layer})")
            elif layer == "cli" and source not in CLI_IMPORTERS:
                found.append(f"{where} (nothing imports cli)")
    return found


def test_genbatch_imports_point_down_only() -> None:
    assert violations(PACKAGE) == []


def test_every_layer_of_the_contract_exists() -> None:
    for layer in ("client", "engine", "agents", "bench", "sim", "cli"):
        assert (PACKAGE / layer / "__init__.py").is_file(), layer


def _write(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


@pytest.fixture
def broken(tmp_path: Path) -> Path:
    root = tmp_path / "genbatch"
    for pkg in ("", "client/", "engine/", "sim/", "cli/", "bench/", "agents/"):
        _write(root, f"{pkg}__init__.py", "")
    _write(root, "client/base.py", "from genbatch.engine import runner\n")
    _write(root, "sim/world.py", "def f():\n    import genbatch.client.models\n")
    _write(root, "engine/pipeline.py", "from genbatch import agents\n")
    _write(root, "engine/runner.py", "from ..cli import main\n")
    _write(root, "bench/run.py", "from genbatch.sim.launch import SimProcess\n")
    _write(root, "bench/other.py", "from genbatch.sim.world import World\n")
    _write(root, "agents/ideas.py", "from genbatch.engine.poller import PollHub\n")
    _write(root, "errors.py", "from genbatch.client import models\n")
    return root


def test_the_checker_finds_each_kind_of_violation(broken: Path) -> None:
    found = violations(broken)
    text = "\n".join(found)
    assert "client/base.py:1 imports genbatch.engine" in text  # client → engine
    assert "sim/world.py:2 imports genbatch.client.models" in text  # lazy import counts
    assert "engine/pipeline.py:1 imports genbatch.agents" in text  # `from genbatch import x`
    assert "engine/runner.py:1 imports genbatch.cli" in text  # relative import resolved
    assert "bench/other.py:1 imports genbatch.sim.world" in text  # only the launcher
    assert "errors.py:1 imports genbatch.client" in text  # shared modules sit below all
    assert not any("bench/run.py" in v or "agents/ideas.py" in v for v in found)
