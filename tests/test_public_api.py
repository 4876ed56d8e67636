"""The package's public surface is exactly ``__all__``, and every name resolves."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys

import genbatch


def test_all_names_resolve_and_are_sorted() -> None:
    names = [n for n in genbatch.__all__ if n != "__version__"]
    assert names == sorted(names)
    for name in genbatch.__all__:
        assert hasattr(genbatch, name), name


def test_no_public_name_leaks_beyond_all() -> None:
    public = {n for n in vars(genbatch) if not n.startswith("_")}
    modules = {m.name for m in pkgutil.iter_modules(genbatch.__path__)}
    # Submodules become attributes once imported; they are reached by path, not re-exported.
    leaked = public - set(genbatch.__all__) - modules - {"annotations"}
    assert leaked == set()


def test_error_tree_roots_at_generror() -> None:
    for name in genbatch.__all__:
        obj = getattr(genbatch, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, genbatch.GenError), name


def test_every_module_imports() -> None:
    for info in pkgutil.walk_packages(genbatch.__path__, "genbatch."):
        if info.name in {"genbatch.__main__"}:
            continue
        importlib.import_module(info.name)


def test_run_frame_loads_lazily() -> None:
    """``import genbatch`` (the client alone) pulls in neither polars nor the engine;
    asking for ``run_frame`` does, and it is the notebook's."""
    code = (
        "import sys, genbatch\n"
        "print(sorted(m for m in ('polars', 'genbatch.engine', 'genbatch.notebook') "
        "if m in sys.modules))\n"
        "f = genbatch.run_frame\n"
        "print(f.__module__, genbatch.arun_frame.__module__, 'polars' in sys.modules)\n"
        "print('run_frame' in dir(genbatch))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.splitlines() == [
        "[]",
        "genbatch.notebook genbatch.notebook True",
        "True",
    ]
