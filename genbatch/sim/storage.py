"""The simulator's object storage and CDN: presigned PUT URLs, a streamed blob
store, and a Range-aware byte server that can cut bodies short on purpose.

Why each piece exists:
- ``Presigner`` makes direct-upload URLs that behave like S3 presigned URLs
  (signature + expiry in the query, headers bound by the signature), so a client
  that sends other headers, a different Content-MD5, or uploads late is refused
  exactly as real storage would refuse it.
- ``BlobStore`` receives a PUT body in chunks straight to disk while hashing it,
  so a 1 GiB upload never sits in memory, and checks size and MD5 like S3.
- ``serve_bytes`` is the CDN: ``Range`` (206/416), ``Content-Length`` always,
  and a ``truncate`` fault that promises N bytes and delivers fewer.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import calendar
import contextlib
import hashlib
import hmac
import math
import os
import re
import secrets
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from pathlib import Path
from typing import Any, BinaryIO, Final, TypeVar
from urllib.parse import quote, urlsplit
from xml.sax.saxutils import escape

import aiofiles
import aiofiles.os
from aiofiles.threadpool.binary import AsyncBufferedReader
from aiohttp import web

#: Storage/CDN (sim/storage.py): path prefix of presigned upload URLs, the
#: streaming chunk (flat memory for 1 GiB bodies), and the share of a body a
#: `truncate` fault delivers before it drops the connection.
SIM_STORAGE_PREFIX: Final = "/_storage/uploads/"
SIM_STORAGE_CHUNK: Final = 1 << 20
SIM_TRUNCATE_FRACTION: Final = 0.5


__all__ = [
    "ALGORITHM",
    "BYTE_SIZE_PARAM",
    "EXPIRED_MESSAGE",
    "SIGNATURE_MESSAGE",
    "BlobStore",
    "Presigner",
    "RangeNotSatisfiableError",
    "parse_range",
    "redact_signature",
    "s3_error",
    "serve_bytes",
    "validate_key",
]

T = TypeVar("T")

ALGORITHM = "AWS4-HMAC-SHA256"
SIGNED_HEADERS = "content-md5;content-type"
#: The byte size is signed too; verify() only sees the query, so it travels there.
BYTE_SIZE_PARAM = "X-Amz-Content-Length"
EXPIRED_MESSAGE = "Request has expired"
SIGNATURE_MESSAGE = (
    "SignatureDoesNotMatch: The request signature we calculated does not match "
    "the signature you provided. Check your key and signing method."
)
_DATE_FORMAT = "%Y%m%dT%H%M%SZ"
_KEY_RE = re.compile(r"^[A-Za-z0-9._-]{1,200}$")
_REQUIRED = ("X-Amz-Algorithm", "X-Amz-Date", "X-Amz-Expires", "X-Amz-Signature", BYTE_SIZE_PARAM)


def validate_key(key: str) -> str:
    """Return ``key`` if it is a safe single path component, else raise ValueError.

    Keys are server-made random tokens, never user filenames; this is the belt to
    that braces, so a crafted URL can never address a file outside the store.
    """
    if not _KEY_RE.match(key) or ".." in key:
        raise ValueError(f"invalid storage key: {key!r}")
    return key


class Presigner:
    """Signs and verifies presigned PUT URLs (HMAC-SHA256 over method, path,
    content type, content MD5, byte size, date and expiry)."""

    def __init__(self, secret: bytes) -> None:
        if not secret:
            raise ValueError("presigner secret must not be empty")
        self._secret = secret

    def _signature(
        self,
        path: str,
        content_type: str,
        content_md5: str,
        byte_size: str,
        date: str,
        expires: str,
    ) -> str:
        canonical = "\n".join(
            ("PUT", path, content_type, content_md5, byte_size, date, expires, ALGORITHM)
        )
        return hmac.new(self._secret, canonical.encode(), hashlib.sha256).hexdigest()

    def sign(
        self,
        base_url: str,
        key: str,
        *,
        content_type: str,
        content_md5: str,
        byte_size: int,
        expires_in: float,
        now: float,
    ) -> str:
        """The full presigned URL for PUTting ``key`` (valid ``expires_in`` s from ``now``)."""
        validate_key(key)
        base = base_url.rstrip("/")
        path = urlsplit(base).path + SIM_STORAGE_PREFIX + key
        date = time.strftime(_DATE_FORMAT, time.gmtime(math.floor(now)))
        expires = str(max(0, math.ceil(expires_in)))
        size = str(int(byte_size))
        signature = self._signature(path, content_type, content_md5, size, date, expires)
        query = (
            f"X-Amz-Algorithm={ALGORITHM}&X-Amz-Date={date}&X-Amz-Expires={expires}"
            f"&{BYTE_SIZE_PARAM}={size}&X-Amz-SignedHeaders={quote(SIGNED_HEADERS, safe='')}"
            f"&X-Amz-Signature={signature}"
        )
        return f"{base}{SIM_STORAGE_PREFIX}{key}?{query}"

    def verify(
        self,
        path: str,
        query: Mapping[str, str],
        *,
        content_type: str | None,
        content_md5: str | None,
        now: float,
    ) -> str | None:
        """None when the PUT to ``path`` with these headers is allowed, else why not.

        Order: malformed query → signature → expiry, so a tampered date or
        expiry reads as a bad signature, and an honest late upload as expired.
        """
        _, sep, key = path.rpartition(SIM_STORAGE_PREFIX)
        if not sep:
            return "Invalid storage path"
        try:
            validate_key(key)
        except ValueError:
            return "Invalid storage key"
        missing = [name for name in _REQUIRED if not query.get(name)]
        if missing:
            return f"Query-string authentication requires {', '.join(missing)}"
        if query["X-Amz-Algorithm"] != ALGORITHM:
            return f"Unsupported X-Amz-Algorithm; expected {ALGORITHM}"
        date, expires, size = query["X-Amz-Date"], query["X-Amz-Expires"], query[BYTE_SIZE_PARAM]
        try:
            issued = _parse_amz_date(date)
            lifetime = int(expires)
        except ValueError:
            return "Invalid X-Amz-Date or X-Amz-Expires"
        expected = self._signature(path, content_type or "", content_md5 or "", size, date, expires)
        if not hmac.compare_digest(expected, query["X-Amz-Signature"]):
            return SIGNATURE_MESSAGE
        if now >= issued + lifetime:
            return EXPIRED_MESSAGE
        return None


def _parse_amz_date(value: str) -> float:
    """Seconds since the epoch of an ``X-Amz-Date`` (UTC, ``YYYYMMDDTHHMMSSZ``)."""
    return float(calendar.timegm(time.strptime(value, _DATE_FORMAT)))


def s3_error(status: int, code: str, message: str) -> web.Response:
    """An S3-style XML error body, as storage (not the GEN API) answers."""
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{escape(code)}</Code><Message>{escape(message)}</Message></Error>"
    )
    return web.Response(status=status, text=body, content_type="application/xml")


class BlobStore:
    """Files under ``root``, one per key, written by streamed, verified PUTs."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, key: str) -> Path:
        return self.root / validate_key(key)

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def size(self, key: str) -> int:
        return self.path(key).stat().st_size

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    async def receive_put(
        self, request: web.Request, key: str, *, expected_md5_b64: str, expected_size: int
    ) -> web.Response:
        """Stream the body to disk, check size and MD5, then publish it atomically.

        The body goes to a per-request ``<key>.<random>.part`` (two concurrent PUTs
        of one key — a client retrying a slow upload — never interleave) and is
        renamed into place only once size and digest match, so a reader never sees
        a partial blob.  Memory stays at about one chunk whatever the body size.
        """
        final = self.path(key)
        declared = request.content_length
        if declared is not None and declared != expected_size:
            return _incomplete(declared, expected_size)
        try:
            expected_digest = base64.b64decode(expected_md5_b64, validate=True)
        except (binascii.Error, ValueError):
            return s3_error(400, "InvalidDigest", "The Content-MD5 you specified was invalid.")
        part = final.with_name(f"{final.name}.{secrets.token_hex(6)}.part")
        md5 = hashlib.md5(usedforsecurity=False)
        received = 0
        pending: list[bytes] = []
        pending_size = 0
        # Open/close/rename/unlink are quick metadata calls made inline on purpose:
        # aiohttp cancels the handler when the client goes away, and cleanup that
        # awaits could itself be cancelled and leave a .part behind.
        out = part.open("wb", buffering=0)
        try:
            async for chunk in request.content.iter_any():
                received += len(chunk)
                if received > expected_size:
                    return _incomplete(received, expected_size)
                pending.append(chunk)
                pending_size += len(chunk)
                if pending_size >= SIM_STORAGE_CHUNK:
                    await _settled(asyncio.to_thread(_absorb, out, md5, pending))
                    pending, pending_size = [], 0
            if pending:
                await _settled(asyncio.to_thread(_absorb, out, md5, pending))
            out.close()
            if received != expected_size:
                return _incomplete(received, expected_size)
            if md5.digest() != expected_digest:
                return s3_error(
                    400,
                    "BadDigest",
                    "The Content-MD5 you specified did not match what we received.",
                )
            os.replace(part, final)
        finally:
            out.close()
            with contextlib.suppress(FileNotFoundError):
                os.remove(part)
        return web.Response(status=200, headers={"ETag": f'"{md5.hexdigest()}"'})


def _absorb(out: BinaryIO, md5: hashlib._Hash, chunks: list[bytes]) -> None:
    """Hash and write a batch of chunks — in a worker thread, so neither the MD5
    of a 1 GiB body nor disk writes stall the event loop (hashlib drops the GIL)."""
    for chunk in chunks:
        md5.update(chunk)
        out.write(chunk)


async def _settled(job: Coroutine[Any, Any, T]) -> T:
    """Await a worker-thread job; if cancelled meanwhile, first let the thread end
    (threads cannot be stopped) so the caller's cleanup never races it."""
    task = asyncio.ensure_future(job)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        while not task.done():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait([task])
        raise


def _incomplete(received: int, expected: int) -> web.Response:
    return s3_error(
        400,
        "IncompleteBody",
        f"You did not provide the number of bytes specified by the Content-Length "
        f"HTTP header (expected {expected}, got {received}).",
    )


class RangeNotSatisfiableError(ValueError):
    """The Range header is well formed but selects no byte of the body (→ 416)."""


def parse_range(header: str | None, total: int) -> tuple[int, int] | None:
    """Resolve a ``Range`` header against ``total`` bytes.

    Returns ``(start, end_inclusive)`` for one satisfiable range, or ``None`` to
    serve the whole body (no header, not ``bytes=``, malformed, or multi-range —
    which we do not implement and RFC 9110 lets us ignore).  Raises
    :class:`RangeNotSatisfiableError` when it selects nothing.
    """
    if not header:
        return None
    unit, _, spec = header.strip().partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, dash, last = spec.strip().partition("-")
    first, last = first.strip(), last.strip()
    if not dash or not (first.isdigit() or first == "") or not (last.isdigit() or last == ""):
        return None
    if first == "":
        if last == "":
            return None
        suffix = int(last)
        if suffix == 0 or total == 0:
            raise RangeNotSatisfiableError(header)
        return max(0, total - suffix), total - 1
    start = int(first)
    end = int(last) if last else total - 1
    if last and end < start:
        return None  # syntactically invalid: ignore the header
    if start >= total:
        raise RangeNotSatisfiableError(header)
    return start, min(end, total - 1)


async def serve_bytes(
    request: web.Request, data: bytes | Path, content_type: str, *, truncate: bool = False
) -> web.StreamResponse:
    """Serve ``data`` (in memory, or a file streamed in chunks) with Range support.

    A file is opened before its size is read, so a blob replaced mid-request is
    served consistently from the old inode; a missing one is a 404 ``NoSuchKey``.
    ``truncate=True`` is the CDN fault: headers promise the full length, about half
    the bytes are sent, then the connection is dropped so the client sees a short
    body (aiohttp: ``ClientPayloadError``) rather than waiting forever.
    """
    if isinstance(data, bytes):
        return await _serve(request, _memory_chunks(data), len(data), content_type, truncate)
    try:
        src = await aiofiles.open(data, "rb")
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return s3_error(404, "NoSuchKey", "The specified key does not exist.")
    try:
        total = os.fstat(src.fileno()).st_size
        return await _serve(request, _file_chunks(src), total, content_type, truncate)
    finally:
        await src.close()


ChunkReader = Callable[[int, int], AsyncIterator[bytes | memoryview]]


def _memory_chunks(data: bytes) -> ChunkReader:
    async def read(start: int, count: int) -> AsyncIterator[bytes | memoryview]:
        view = memoryview(data)[start : start + count]
        for offset in range(0, len(view), SIM_STORAGE_CHUNK):
            yield view[offset : offset + SIM_STORAGE_CHUNK]

    return read


def _file_chunks(src: AsyncBufferedReader) -> ChunkReader:
    async def read(start: int, count: int) -> AsyncIterator[bytes | memoryview]:
        await src.seek(start)
        while count > 0:
            chunk = await src.read(min(SIM_STORAGE_CHUNK, count))
            if not chunk:
                return
            yield chunk
            count -= len(chunk)

    return read


async def _serve(
    request: web.Request, read: ChunkReader, total: int, content_type: str, truncate: bool
) -> web.StreamResponse:
    try:
        selected = parse_range(request.headers.get("Range"), total)
    except RangeNotSatisfiableError:
        return web.Response(
            status=416,
            headers={"Content-Range": f"bytes */{total}", "Accept-Ranges": "bytes"},
        )
    response = web.StreamResponse(status=200)
    response.content_type = content_type
    response.headers["Accept-Ranges"] = "bytes"
    if selected is not None:
        start, end = selected
        response.set_status(206)
        response.headers["Content-Range"] = f"bytes {start}-{end}/{total}"
    else:
        start, end = 0, total - 1
    length = end - start + 1
    response.content_length = length
    to_send = int(length * SIM_TRUNCATE_FRACTION) if truncate else length
    if truncate:
        response.force_close()
    await response.prepare(request)
    if request.method == "HEAD":
        return response
    sent = 0
    async for chunk in read(start, to_send):
        await response.write(chunk)
        sent += len(chunk)
    if sent < length:
        # Short on purpose (truncate) or because the file shrank: drop the
        # connection, or a keep-alive client would wait for the missing bytes.
        if request.transport is not None:
            request.transport.close()
        return response
    await response.write_eof()
    return response


_SIGNATURE_RE = re.compile(r"(X-Amz-Signature=)[0-9A-Fa-f]+")


def redact_signature(text: str) -> str:
    """``text`` (a URL, a path with query, a log line) with any presigned URL
    signature masked: signatures must never reach a log."""
    return _SIGNATURE_RE.sub(r"\1REDACTED", text)
