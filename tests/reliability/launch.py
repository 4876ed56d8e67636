"""``python -m genbatch`` with the client's wall-clock waits shortened, for CI.

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

from genbatch import _constants as C
from genbatch.settings import Settings

_api = os.environ.get("GB_RELIABILITY_API_TIMEOUT")
if _api:
    Settings.model_fields["timeout"].default = float(_api)
    Settings.model_rebuild(force=True)
_stall = os.environ.get("GB_RELIABILITY_STALL_TIMEOUT")
if _stall:
    C.CLIENT_TRANSFER_SOCK_READ_TIMEOUT = float(_stall)  # type: ignore[misc]

_scale = os.environ.get("GB_RELIABILITY_BACKOFF_SCALE")
if _scale:
    from genbatch.client.retry import RetryPolicy

    # (max_retries, backoff_initial, backoff_max, retry_after_cap, unsafe_retry_on_429)
    _d = list(RetryPolicy.__init__.__defaults__ or ())
    _d[1], _d[2] = _d[1] * float(_scale), _d[2] * float(_scale)
    RetryPolicy.__init__.__defaults__ = tuple(_d)

from genbatch.cli import main  # noqa: E402 - after the patch, on purpose

raise SystemExit(main())
