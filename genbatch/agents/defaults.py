"""The agent commands' defaults, apart from the code that uses them.

``genbatch agents|ideas|research|train --help`` shows them; this module
imports nothing, so the help does not load the client or polars.
"""

from __future__ import annotations

from typing import Final

__all__ = ["ENGINE_AGENTS_CONCURRENCY", "ENGINE_IDEAS_CONCURRENCY"]

#: Agents read/compared/written at once (every call still passes the rate gate).
ENGINE_AGENTS_CONCURRENCY: Final = 8
#: Agents whose runs are in flight at once in `genbatch ideas|research`.
ENGINE_IDEAS_CONCURRENCY: Final = 16
