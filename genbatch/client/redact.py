"""Scrub API keys and presigned-URL signatures from text, headers and log records.

Three nets, because any one alone misses something:
- known secret *values* (every key a GenClient was given is registered here);
- header shapes (``X-API-Key: …``, ``Authorization: Bearer …``) for keys we
  were never told about;
- presigned query values (``X-Amz-Signature``, ``Signature``, ``signature``,
  credentials, security tokens) in any URL.

A ``logging.Filter`` applies them to every record of the loggers it is
installed on (``install()`` puts it on the ``genbatch`` logger and the
client's own loggers; an application can also put ``RedactingFilter()`` on a
handler to cover everything that handler emits).
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable, Mapping
from typing import Final

#: Keys shorter than this are too short to mask by value without mangling logs
#: (header-based redaction still applies).
CLIENT_REDACT_MIN_SECRET_LEN: Final = 6

__all__ = [
    "MASK",
    "RedactingFilter",
    "install",
    "redact",
    "redact_headers",
    "redact_url",
    "register_secret",
]

MASK = "[REDACTED]"

_QUERY_SECRET = re.compile(
    r"(?i)((?:[?&;]|&amp;|%26)(?:x-amz-signature|x-amz-credential|x-amz-security-token|"
    r"x-goog-signature|x-goog-credential|signature|sig|token|api_key|apikey|key)"
    r"(?:=|%3D))[^&#\s\"'<>;]*"
)
_HEADER_SECRET = re.compile(
    r"(?i)((?:x-api-key|authorization|x-sim-admin-key)[\"']?\s*[:=,]\s*[\"']?(?:bearer\s+)?)"
    r"(?!\[REDACTED\])[^\s\"',;}\])]+"
)
_SECRET_HEADERS = frozenset({"x-api-key", "authorization", "x-sim-admin-key", "cookie"})

_lock = threading.Lock()
_secrets: set[str] = set()
_secret_re: re.Pattern[str] | None = None


def register_secret(value: str | None) -> None:
    """Mask ``value`` wherever it appears from now on (keys too short to mask are skipped)."""
    global _secret_re
    if not value or len(value) < CLIENT_REDACT_MIN_SECRET_LEN:
        return
    with _lock:
        if value in _secrets:
            return
        _secrets.add(value)
        # Longest first so a key that contains another is masked whole.
        alts = sorted(_secrets, key=len, reverse=True)
        _secret_re = re.compile("|".join(re.escape(s) for s in alts))


def redact(text: str) -> str:
    """``text`` with every known secret, auth header value and URL signature masked."""
    pattern = _secret_re
    if pattern is not None:
        text = pattern.sub(MASK, text)
    if "=" in text or "%3D" in text or "%3d" in text:
        text = _QUERY_SECRET.sub(rf"\g<1>{MASK}", text)
    lowered = text.lower()
    if "key" in lowered or "authorization" in lowered:
        text = _HEADER_SECRET.sub(rf"\g<1>{MASK}", text)
    return text


def redact_url(url: object) -> str:
    """A URL safe to print: signature-like query values masked, path kept for debugging."""
    return redact(str(url))


def redact_headers(headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> dict[str, str]:
    """A copy of ``headers`` with auth headers masked and other values scrubbed."""
    items = headers.items() if isinstance(headers, Mapping) else headers
    return {k: (MASK if k.lower() in _SECRET_HEADERS else redact(str(v))) for k, v in items}


class RedactingFilter(logging.Filter):
    """Rewrite a record's message, args and traceback text through :func:`redact`.

    The message is formatted once here (then args are dropped) so a secret
    passed as a ``%s`` argument is caught too.  Never drops a record.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string must not hide the record
            message = str(record.msg)
        record.msg = redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


_FILTER = RedactingFilter()


def install(*logger_names: str) -> None:
    """Put the (single, shared) redacting filter on these loggers (default: ``genbatch``).

    Logger filters only see records created on that very logger, so every
    module logger that can carry a secret must be listed; the client's are.
    """
    for name in logger_names or ("genbatch",):
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)


def get_logger(name: str) -> logging.Logger:
    """A module logger that already carries the redacting filter."""
    install(name)
    return logging.getLogger(name)


install("genbatch", "genbatch.client")
