"""``python -m genbatch`` that parks the Nth row to reach a journal milestone.

``GENBATCH_TEST_HALT_AT=<milestone>`` and ``GENBATCH_TEST_HALT_NTH=<n>``: the n-th
row to reach the milestone (``store:start``, ``store:verified``, ...) prints
``GENBATCH-TEST-HALT row=<id> at=<milestone>`` to stderr and waits there
forever; the other rows go on, so the test can kill the process with some rows
done, one caught between its upload and its record, and others not begun.
The hook is ``RunOptions.milestone``, injected by wrapping ``runner.execute``
(production code reads no test variables), as tests/reliability/launch.py does.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import sys

from genbatch.engine import runner

_AT = os.environ["GENBATCH_TEST_HALT_AT"]
_NTH = int(os.environ.get("GENBATCH_TEST_HALT_NTH", "1"))
_seen = 0
_execute = runner.execute


async def _milestone(row_id: str, what: str) -> None:
    global _seen
    if what != _AT:
        return
    _seen += 1
    if _seen != _NTH:
        return
    print(f"GENBATCH-TEST-HALT row={row_id} at={what}", file=sys.stderr, flush=True)
    await asyncio.Event().wait()


async def _execute_halting(opts: runner.RunOptions) -> runner.RunSummary:
    return await _execute(dataclasses.replace(opts, milestone=_milestone))


runner.execute = _execute_halting  # type: ignore[assignment]

from genbatch.cli import main  # noqa: E402 - after the patch, on purpose

raise SystemExit(main())
