"""genbatch: spreadsheet rows in, rendered and published GEN videos out.

The public API is what ``__all__`` lists (a test keeps it honest): the typed
client, its settings, and the exception tree.  Everything else is internal and
may change between releases.
"""

from __future__ import annotations

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
from genbatch.settings import Settings

__version__ = "0.1.0"

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
]
