"""``python -m genbatch`` with the client's wall-clock timeouts shortened, for CI.

Only the cases that wait for a timeout to fire (an answer that never comes,
a transfer that stalls) use this; the production values (60 s request
timeout, 60 s transfer stall) would cost a minute per fault.  Same code
path otherwise: the settings default and the transfer constant are the
only things changed, exactly as a user's config would change them.

    GB_RELIABILITY_API_TIMEOUT=1.5 GB_RELIABILITY_STALL_TIMEOUT=1 python launch.py run ...
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

from genbatch.cli import main  # noqa: E402 - after the patch, on purpose

raise SystemExit(main())
