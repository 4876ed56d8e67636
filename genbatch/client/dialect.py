"""Which GEN dialect a session speaks: today's ``/v1/vidsheet`` or the teaching document's.

The vendor moved every engine route from ``/v1/autocontentengine`` to
``/v1/vidsheet`` (docs/dialect.md §1); a server of either era may answer.  A
client starts with today's prefix and learns from the first engine-family
answer which prefix this server serves (``assumptions.prefix_proves``); from
then on the session uses that prefix only.  Bodies that the two dialects spell
differently travel as :class:`ByDialect` and are resolved per attempt.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

from genbatch.client import assumptions as A
from genbatch.client.routes import ENGINE_PREFIX, Dialect

__all__ = ["ByDialect", "DialectChoice", "DialectState", "other_dialect", "resolve_body"]

#: What a caller may ask for: "auto" (detect), or one dialect forced.
DialectChoice = Literal["auto", "today", "legacy"]

T = TypeVar("T")


def other_dialect(dialect: Dialect) -> Dialect:
    return "legacy" if dialect == "today" else "today"


@dataclass(frozen=True, slots=True)
class ByDialect(Generic[T]):
    """A request body spelled per dialect; resolved when the attempt's dialect is known."""

    today: T
    legacy: T

    def get(self, dialect: Dialect) -> T:
        return self.today if dialect == "today" else self.legacy


def resolve_body(body: Any, dialect: Dialect) -> Any:
    """``body`` as ``dialect`` spells it (a plain body is the same in both)."""
    return body.get(dialect) if isinstance(body, ByDialect) else body


class DialectState:
    """One client's knowledge of the server's dialect (per instance, never global).

    ``confirmed`` is None until an engine-family answer proves a prefix;
    ``misses`` counts the 404s the detection cost (one per session when the
    server speaks the dialect not tried first).  ``lock`` serialises requests
    while the dialect is unknown, so concurrent first calls pay one 404, not N.
    """

    __slots__ = ("_first", "confirmed", "lock", "misses")

    def __init__(self, choice: DialectChoice = "auto") -> None:
        if choice not in ("auto", "today", "legacy"):
            raise ValueError(f"dialect must be auto, today or legacy, not {choice!r}")
        self.confirmed: Dialect | None = None if choice == "auto" else choice
        self._first: Dialect = A.DIALECT_FIRST if choice == "auto" else choice
        self.misses = 0
        self.lock = asyncio.Lock()

    @property
    def current(self) -> Dialect:
        """The dialect the next request uses: the confirmed one, else the first guess."""
        return self.confirmed if self.confirmed is not None else self._first

    @property
    def engine_prefix(self) -> str:
        """The engine prefix in use, e.g. ``/v1/vidsheet``."""
        return "/v1" + ENGINE_PREFIX[self.current]

    def confirm(self, dialect: Dialect) -> None:
        if self.confirmed is None:
            self.confirmed = dialect
