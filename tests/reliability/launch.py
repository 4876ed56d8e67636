"""``python -m genbatch`` with test hooks: shortened waits, and a halt at a milestone.

``GENBATCH_TEST_HALT_AT=<milestone>`` makes the first row that reaches that
journal milestone (``clone_intent``, ``generate:<cell>:intent``,
``generate:<cell>:posted`` (accepted, id not yet journaled),
``generate:<cell>:submitted``, ``render:intent``, ``render:posted``,
``render:submitted``, ``download:start``) print ``GENBATCH-TEST-HALT ...`` to
stderr and park there, so a test can kill the process at a known point.  The
hook is the runner's ``RunOptions.milestone``, injected here by wrapping
``runner.execute``: production code reads no test variables.

Shortened waits:

Only the cases that wait for a timeout to fire (an answer that never comes,
a transfer that stalls) or for the client's retries to run out use this;
the production values (60 s request timeout, 60 s transfer stall, backoff
up to 8 s per retry) would cost a minute per fault.  Same code path
otherwise: the number of retries and every decision stay as shipped, only
the durations shrink.

    GB_RELIABILITY_API_TIMEOUT=1.5 GB_RELIABILITY_STALL_TIMEOUT=1 \
    GB_RELIABILITY_BACKOFF_SCALE=0.1 python launch.py run ...
"""

from __future__ import annotations

import os

from genbatch.settings import Settings

_api = os.environ.get("GB_RELIABILITY_API_TIMEOUT")
if _api:
    Settings.model_fields["timeout"].default = float(_api)
    Settings.model_rebuild(force=True)
_stall = os.environ.get("GB_RELIABILITY_STALL_TIMEOUT")
if _stall:
    from genbatch.client import base

    base.CLIENT_TRANSFER_SOCK_READ_TIMEOUT = float(_stall)  # type: ignore[misc]

_scale = os.environ.get("GB_RELIABILITY_BACKOFF_SCALE")
if _scale:
    from genbatch.client.retry import RetryPolicy

    # (max_retries, backoff_initial, backoff_max, retry_after_cap, unsafe_retry_on_429)
    _d = list(RetryPolicy.__init__.__defaults__ or ())
    _d[1], _d[2] = _d[1] * float(_scale), _d[2] * float(_scale)
    RetryPolicy.__init__.__defaults__ = tuple(_d)

_halt = os.environ.get("GENBATCH_TEST_HALT_AT")
if _halt:
    import asyncio
    import dataclasses
    import sys

    from genbatch.engine import runner

    _execute = runner.execute
    _fired = False

    async def _milestone(row_id: str, what: str) -> None:
        global _fired
        if _fired or what != _halt:
            return
        _fired = True
        print(f"GENBATCH-TEST-HALT row={row_id} at={what}", file=sys.stderr, flush=True)
        await asyncio.Event().wait()

    async def _execute_halting(opts: runner.RunOptions) -> runner.RunSummary:
        return await _execute(dataclasses.replace(opts, milestone=_milestone))

    runner.execute = _execute_halting  # type: ignore[assignment]

from genbatch.cli import main  # noqa: E402 - after the patches, on purpose

raise SystemExit(main())
