"""Every exception genbatch raises, as one tree.

Callers catch at the level of detail they care about: ``GenError`` for
"anything from genbatch", ``APIStatusError`` for "the server said no",
``RateLimitError`` to defer work, ``InsufficientCreditsError`` to stop paying.
Like httpx, the tree is drawn here so nobody has to reverse-engineer it::

    GenError
     ├── APIError                      a call to the GEN API did not succeed
     │    ├── APIStatusError           the server answered with an error status
     │    │    ├── AuthenticationError        401 unauthorized
     │    │    ├── PermissionDeniedError      403 forbidden / permission_denied
     │    │    ├── NotFoundError              404: missing, or not yours (no access)
     │    │    ├── RateLimitError             429 (retry_after: seconds | None)
     │    │    ├── UnprocessableError         422, any other error_code
     │    │    │    ├── InsufficientCreditsError   insufficient_credits_for_job
     │    │    │    ├── NoActiveCreditsError       usable_gen_credit_required
     │    │    │    ├── AgentNotFoundError         agent_not_found
     │    │    │    └── ValidationError            validation_error
     │    │    └── ServerError                5xx
     │    ├── APIConnectionError       no (complete) answer: reset, refused, DNS
     │    │    └── APITimeoutError     the answer did not arrive in time
     │    └── APIResponseValidationError   a 2xx body we could not parse
     ├── RequestValidationError        a request body failed validation locally
     ├── JobFailed                     a generation / job ended failed or stopped
     ├── WaitTimeout                   a wait() helper gave up (job still running)
     ├── TransferError                 an upload to storage or a download failed
     │    └── ChecksumMismatch         storage rejected the body's MD5 (BadDigest)
     └── InputError                    what the user gave cannot work: a table, recipe,
                                       pricing file, output path, journal or flag
                                       (engine and cli errors derive from it)

Every class carries ``exit_code``: the status a command ends with when the
error stops it (2, "could not start or go on"; docs/design.md §6).  The
command line maps errors to messages and codes in one place.

Messages carry the method, the route *pattern* (``GET /v1/generations/{id}``,
never a concrete URL with a query), the status, the ``error_code`` and the
server's message, all passed through redaction: no exception text or repr ever
shows an API key or a presigned signature.  Wrapped aiohttp exceptions are
never chained (their text may hold a signed URL); their type name and a
sanitised description go into the message instead.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIResponseValidationError",
    "APIStatusError",
    "APITimeoutError",
    "AgentNotFoundError",
    "AuthenticationError",
    "ChecksumMismatch",
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
    "TransferError",
    "UnprocessableError",
    "ValidationError",
    "WaitTimeout",
    "status_error_class",
]


class GenError(Exception):
    """Root of every genbatch exception."""

    #: The exit status of a command this error ends.
    exit_code: ClassVar[int] = 2

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class APIError(GenError):
    """A call to the GEN API did not succeed; names the call by its route pattern."""

    def __init__(self, message: str, *, method: str, route: str) -> None:
        super().__init__(message)
        self.method = method
        #: The route pattern, e.g. ``GET /v1/generations/{id}``.
        self.route = route


class APIStatusError(APIError):
    """The server answered with a non-success status."""

    status: int
    default_status: ClassVar[int | None] = None

    def __init__(
        self,
        message: str,
        *,
        method: str,
        route: str,
        status: int,
        error_code: str | None = None,
        server_message: str | None = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message, method=method, route=route)
        self.status = status
        self.error_code = error_code
        self.server_message = server_message
        #: Parsed error body (already redacted), for callers that need more.
        self.body = body
        #: Response headers (already redacted) — e.g. X-RateLimit-*.
        self.headers = headers or {}


class AuthenticationError(APIStatusError):
    """401 ``unauthorized``: missing or invalid API key."""


class PermissionDeniedError(APIStatusError):
    """403 ``forbidden`` / ``permission_denied``: the key may not touch this resource.

    Today's API answers most "not yours" with 404 instead (``NotFoundError``);
    403 remains on template clone, organizations, content resources and asset
    folders (docs/dialect.md §4).  Catch both for "no access or missing".
    """


class NotFoundError(APIStatusError):
    """404: the resource does not exist **or is not yours** — today's API answers
    "no access" with 404 (``not_found``, ``spreadsheet_not_found``, …;
    docs/dialect.md §4), so a 404 never proves the thing is absent."""


class RateLimitError(APIStatusError):
    """429: too many requests.

    ``retry_after`` is the server's wait in seconds (None when it gave none).
    Raised after retries ran out, or at once when the server asked for a wait
    longer than the client's cap — the caller can then defer the work.
    """

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class UnprocessableError(APIStatusError):
    """422 with an error_code this client has no narrower class for."""


class InsufficientCreditsError(UnprocessableError):
    """422 ``insufficient_credits_for_job``: stop starting paid work."""


class NoActiveCreditsError(UnprocessableError):
    """422 ``usable_gen_credit_required``: the workspace has no active credits."""


class AgentNotFoundError(UnprocessableError):
    """422 ``agent_not_found``: the ``agent_id`` is invalid."""


class ValidationError(UnprocessableError):
    """422 ``validation_error``: the server rejected the request body."""


class ServerError(APIStatusError):
    """5xx: the server failed; idempotent calls were already retried."""


class APIConnectionError(APIError):
    """No complete answer arrived (refused, reset, DNS, disconnected).

    ``maybe_sent`` tells a caller of a paid POST whether it must reconcile:
    False means the request provably never reached the server (connect
    failure), so sending it again cannot pay twice.
    """

    def __init__(self, message: str, *, method: str, route: str, maybe_sent: bool) -> None:
        super().__init__(message, method=method, route=route)
        self.maybe_sent = maybe_sent


class APITimeoutError(APIConnectionError):
    """The answer did not arrive within the timeout."""


class APIResponseValidationError(APIError):
    """A success response whose body is not what the contract describes."""

    def __init__(self, message: str, *, method: str, route: str, status: int) -> None:
        super().__init__(message, method=method, route=route)
        self.status = status


class RequestValidationError(GenError, ValueError):
    """A request body failed validation before anything was sent (no round trip paid)."""


class JobFailed(GenError):
    """A generation, render, user job, agent run or voice preview ended failed/stopped."""

    def __init__(self, *, kind: str, job_id: str, status: str, error: Any = None) -> None:
        detail = f": {error}" if error else ""
        super().__init__(f"{kind} {job_id} ended {status}{detail}")
        self.kind = kind
        self.job_id = job_id
        self.status = status
        self.error = error


class WaitTimeout(GenError, TimeoutError):
    """A wait() helper stopped waiting; the job itself may still finish."""

    def __init__(self, *, kind: str, job_id: str, status: str, waited: float) -> None:
        super().__init__(f"{kind} {job_id} still {status} after {waited:.1f}s")
        self.kind = kind
        self.job_id = job_id
        self.status = status
        self.waited = waited


class TransferError(GenError):
    """An upload to presigned storage or a CDN download failed.

    ``url`` is redacted (no signature); ``status`` is the HTTP status when
    there was one; ``code`` is storage's error code (S3 XML ``<Code>``).
    """

    def __init__(
        self, message: str, *, url: str, status: int | None = None, code: str | None = None
    ) -> None:
        super().__init__(message)
        self.url = url
        self.status = status
        self.code = code


class ChecksumMismatch(TransferError):
    """Storage computed a different MD5 than the one signed (``BadDigest``)."""


_BY_STATUS: dict[int, type[APIStatusError]] = {
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    429: RateLimitError,
    422: UnprocessableError,
}
_BY_CODE_422: dict[str, type[UnprocessableError]] = {
    "insufficient_credits_for_job": InsufficientCreditsError,
    "usable_gen_credit_required": NoActiveCreditsError,
    "agent_not_found": AgentNotFoundError,
    "validation_error": ValidationError,
}


def status_error_class(status: int, error_code: str | None) -> type[APIStatusError]:
    """The narrowest class for a status and the body's ``error_code``."""
    if status == 422 and error_code is not None and error_code in _BY_CODE_422:
        return _BY_CODE_422[error_code]
    if status >= 500:
        return ServerError
    return _BY_STATUS.get(status, APIStatusError)


class InputError(GenError):
    """What the user gave cannot work (table, recipe, pricing, output path, journal, flags)."""
