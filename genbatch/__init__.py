"""genbatch: spreadsheet rows in, rendered and published GEN videos out.

The public API is what ``__all__`` lists (a test keeps it honest): the typed
client, its settings, the exception tree, and ``run_frame``/``arun_frame``
(a polars DataFrame through the batch engine, for notebooks).  Everything else
is internal and may change between releases.

Every public name loads on first use (:mod:`genbatch._lazy`), so ``import
genbatch`` (and ``genbatch --help``) loads neither aiohttp, pydantic, polars
nor the engine until a name that needs them is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING as _TYPE_CHECKING
from typing import Final as _Final

from genbatch._lazy import exports as _exports

if _TYPE_CHECKING:
    from genbatch.client import GenClient
    from genbatch.errors import (
        AgentNotFoundError,
        APIConnectionError,
        APIError,
        APIResponseValidationError,
        APIStatusError,
        APITimeoutError,
        AuthenticationError,
        ChecksumMismatch,
        GenError,
        InputError,
        InsufficientCreditsError,
        JobFailed,
        NoActiveCreditsError,
        NotFoundError,
        PermissionDeniedError,
        RateLimitError,
        RequestValidationError,
        ServerError,
        TransferError,
        UnprocessableError,
        ValidationError,
        WaitTimeout,
    )
    from genbatch.notebook import arun_frame, run_frame
    from genbatch.settings import Settings

__version__ = "0.1.0"

#: Where each public name lives; loaded when first asked for.
_WHERE: _Final[dict[str, str]] = {
    "GenClient": "genbatch.client",
    "Settings": "genbatch.settings",
    "arun_frame": "genbatch.notebook",
    "run_frame": "genbatch.notebook",
    "AgentNotFoundError": "genbatch.errors",
    "APIConnectionError": "genbatch.errors",
    "APIError": "genbatch.errors",
    "APIResponseValidationError": "genbatch.errors",
    "APIStatusError": "genbatch.errors",
    "APITimeoutError": "genbatch.errors",
    "AuthenticationError": "genbatch.errors",
    "ChecksumMismatch": "genbatch.errors",
    "GenError": "genbatch.errors",
    "InputError": "genbatch.errors",
    "InsufficientCreditsError": "genbatch.errors",
    "JobFailed": "genbatch.errors",
    "NoActiveCreditsError": "genbatch.errors",
    "NotFoundError": "genbatch.errors",
    "PermissionDeniedError": "genbatch.errors",
    "RateLimitError": "genbatch.errors",
    "RequestValidationError": "genbatch.errors",
    "ServerError": "genbatch.errors",
    "TransferError": "genbatch.errors",
    "UnprocessableError": "genbatch.errors",
    "ValidationError": "genbatch.errors",
    "WaitTimeout": "genbatch.errors",
}

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIResponseValidationError",
    "APIStatusError",
    "APITimeoutError",
    "AgentNotFoundError",
    "AuthenticationError",
    "ChecksumMismatch",
    "GenClient",
    "GenError",
    "InputError",
    "InsufficientCreditsError",
    "JobFailed",
    "NoActiveCreditsError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "RequestValidationError",
    "ServerError",
    "Settings",
    "TransferError",
    "UnprocessableError",
    "ValidationError",
    "WaitTimeout",
    "__version__",
    "arun_frame",
    "run_frame",
]

__getattr__, __dir__ = _exports(__name__, _WHERE, globals())
