"""Lazy package exports (PEP 562): a name is imported the first time it is used.

The packages' ``__init__`` modules re-export their public names; importing
them all up front would load polars, pydantic and aiohttp for
``genbatch --help``.  Type checkers see the real imports (under
``TYPE_CHECKING``); at run time :func:`exports` resolves each name on first
access and caches it in the package's namespace.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["exports"]


def exports(
    package: str, where: Mapping[str, str], namespace: dict[str, Any]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``; ``where`` maps name -> module.

    A name that maps to its own module path (``"models": "genbatch.client.models"``)
    is that submodule."""

    def __getattr__(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        loaded = importlib.import_module(module)
        value = loaded if module == f"{package}.{name}" else getattr(loaded, name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace, *where})

    return __getattr__, __dir__
