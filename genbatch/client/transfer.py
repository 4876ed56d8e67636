"""Streamed transfers: MD5 of a file, PUT to presigned storage, download from the CDN.

Memory stays flat whatever the size: files move in ``CLIENT_TRANSFER_CHUNK``
pieces, disk reads / writes / hashing run in a worker thread one chunk ahead
of the network (hashlib and file I/O release the GIL), so a 1 GiB file costs
a few MiB of RSS.

Storage never sees the API key: the PUT carries exactly the headers the
direct-upload answer listed (plus ``Content-Length``, which HTTP framing needs),
through a session without auth defaults, and redirects are not followed.
Every URL that appears in an exception or a log line is redacted first.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import os
import random
import re
import time
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import IO, Any, Final, NamedTuple

import aiohttp

from genbatch.client.redact import get_logger, redact, redact_url
from genbatch.client.retry import Failure, RetryCounters, RetryPolicy, classify_exception, decide
from genbatch.errors import ChecksumMismatch, TransferError

#: Transfer chunk: big enough for few executor hops, small enough for flat RSS.
CLIENT_TRANSFER_CHUNK: Final = 1 << 20
#: Resumes (Range requests) a single download may make after short bodies.
CLIENT_DOWNLOAD_MAX_RESUMES: Final = 5

__all__ = [
    "DownloadResult",
    "download",
    "md5_base64",
    "md5_base64_sync",
    "put_file",
]

log = get_logger("genbatch.client.transfer")

_S3_CODE = re.compile(rb"<Code>\s*([^<]*?)\s*</Code>")
_S3_MESSAGE = re.compile(rb"<Message>\s*([^<]*?)\s*</Message>")
_PLAIN_MD5_ETAG = re.compile(r'^"?([0-9a-fA-F]{32})"?$')
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")
#: aiohttp adds these by itself; storage needs none of them.
_SKIP_AUTO = frozenset({"User-Agent", "Accept", "Accept-Encoding"})


class DownloadResult(NamedTuple):
    """``(size, sha256)`` of a completed download."""

    size: int
    sha256: str


# -- MD5 ---------------------------------------------------------------------------
def md5_base64_sync(path: str | os.PathLike[str], chunk: int = CLIENT_TRANSFER_CHUNK) -> str:
    """base64 of the file's binary MD5 (``openssl md5 -binary f | base64``), streamed."""
    digest = hashlib.md5()  # noqa: S324 — the storage protocol's checksum, not security
    buf = bytearray(chunk)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(view):
            digest.update(view[:n])
    return base64.b64encode(digest.digest()).decode()


async def md5_base64(path: str | os.PathLike[str], chunk: int = CLIENT_TRANSFER_CHUNK) -> str:
    """``md5_base64_sync`` in a worker thread (keeps the event loop free)."""
    return await asyncio.to_thread(md5_base64_sync, path, chunk)


# -- upload --------------------------------------------------------------------------
async def _file_chunks(path: Path, chunk: int) -> AsyncIterator[bytes]:
    """The file's bytes, read in a thread one chunk ahead of the consumer."""
    loop = asyncio.get_running_loop()
    f: IO[bytes] = await asyncio.to_thread(open, path, "rb")
    try:
        pending = loop.run_in_executor(None, f.read, chunk)
        while True:
            data = await pending
            if not data:
                return
            pending = loop.run_in_executor(None, f.read, chunk)
            yield data
    finally:
        await asyncio.to_thread(f.close)


def _storage_error(status: int, body: bytes, url: str, what: str) -> TransferError:
    code_m = _S3_CODE.search(body)
    msg_m = _S3_MESSAGE.search(body)
    code = code_m.group(1).decode("utf-8", "replace") if code_m else None
    text = msg_m.group(1).decode("utf-8", "replace") if msg_m else ""
    message = redact(
        f"{what} {redact_url(url)} -> {status}"
        + (f" {code}" if code else "")
        + (f": {text}" if text else "")
    )
    cls = ChecksumMismatch if code == "BadDigest" else TransferError
    return cls(message, url=redact_url(url), status=status, code=code)


def _etag_mismatch(
    sent: Mapping[str, str], got: Mapping[str, str], url: str
) -> ChecksumMismatch | None:
    """A second net behind storage's own Content-MD5 check.

    S3 answers a plain PUT with ``ETag: "<md5 hex>"``; when storage did not
    verify Content-MD5 itself (some S3-compatibles and emulators do not), a
    different ETag still reveals that other bytes were stored.  Skipped for
    ETags that are not an MD5 (multipart ``-N``, SSE-KMS / SSE-C, other clouds).
    """
    md5_b64 = next((v for k, v in sent.items() if k.lower() == "content-md5"), None)
    m = _PLAIN_MD5_ETAG.match(got.get("ETag", ""))
    if md5_b64 is None or m is None:
        return None
    if got.get("x-amz-server-side-encryption") == "aws:kms" or got.get(
        "x-amz-server-side-encryption-customer-algorithm"
    ):
        return None
    try:
        expected = base64.b64decode(md5_b64, validate=True).hex()
    except ValueError:
        return None
    if m.group(1).lower() == expected:
        return None
    safe = redact_url(url)
    return ChecksumMismatch(
        f"upload {safe}: storage ETag {m.group(1)} is not the MD5 we signed ({expected})",
        url=safe,
        status=200,
        code="ETagMismatch",
    )


async def put_file(
    session: aiohttp.ClientSession,
    url: str,
    headers: Mapping[str, str],
    path: str | os.PathLike[str],
    *,
    policy: RetryPolicy | None = None,
    client_timeout: aiohttp.ClientTimeout | None = None,
    stats: RetryCounters | None = None,
    chunk: int = CLIENT_TRANSFER_CHUNK,
    digest_retries: int = 1,
    rng: random.Random | None = None,
) -> int:
    """PUT ``path`` to a presigned ``url`` with exactly ``headers``; return bytes sent.

    A PUT of the same bytes to the same key is idempotent, so connection
    errors and 5xx are retried per ``policy``; a ``BadDigest`` (MD5 mismatch,
    e.g. a flaky hop) — or a success whose plain-MD5 ETag differs from the
    signed Content-MD5 — is resent ``digest_retries`` times, then raised as
    ``ChecksumMismatch``.  403 (bad signature, ``Request has expired``) is
    raised at once as ``TransferError`` with ``code`` — get a new URL.
    """
    p = Path(path)
    size = (await asyncio.to_thread(p.stat)).st_size
    policy = policy or RetryPolicy()
    stats = stats if stats is not None else RetryCounters()
    rng = rng or random.Random()
    stats.calls += 1
    send_headers = dict(headers)
    if not any(k.lower() == "content-length" for k in send_headers):
        send_headers["Content-Length"] = str(size)
    attempt = 0
    digest_failures = 0
    while True:
        stats.requests += 1
        status: int | None = None
        failure: Failure | None = None
        detail = ""
        body = b""
        try:
            async with session.put(
                url,
                data=_file_chunks(p, chunk),
                headers=send_headers,
                skip_auto_headers=_SKIP_AUTO,
                allow_redirects=False,
                timeout=client_timeout,
            ) as resp:
                status = resp.status
                body = await resp.read()
                resp_headers = resp.headers
        except (TimeoutError, aiohttp.ClientError) as exc:
            failure = classify_exception(exc)
            detail = f"{type(exc).__name__}: {redact(str(exc))}"
        if status is not None:
            stats.status_counts[status] += 1
            if status < 300:
                mismatch = _etag_mismatch(send_headers, resp_headers, url)
                if mismatch is None:
                    return size
                if digest_failures < digest_retries:
                    digest_failures += 1
                    stats.retries_by_reason["etag_mismatch"] += 1
                    log.info("upload stored bytes with another MD5; resending once")
                    continue
                raise mismatch
            if 300 <= status < 400:
                raise TransferError(
                    f"upload {redact_url(url)} -> {status}: storage redirect not followed",
                    url=redact_url(url),
                    status=status,
                )
            err = _storage_error(status, body, url, "upload")
            if isinstance(err, ChecksumMismatch) and digest_failures < digest_retries:
                digest_failures += 1
                stats.retries_by_reason["bad_digest"] += 1
                log.info("upload -> BadDigest; resending once (%s)", redact_url(url))
                continue
            decision = decide(
                policy,
                attempt=attempt,
                method="PUT",
                idempotent=True,
                status=status,
                headers=resp_headers,
                now=time.time(),
                jitter=rng.random(),
            )
        else:
            decision = decide(
                policy,
                attempt=attempt,
                method="PUT",
                idempotent=True,
                failure=failure,
                now=time.time(),
                jitter=rng.random(),
            )
            err = TransferError(
                redact(f"upload {redact_url(url)}: {failure.value if failure else ''} ({detail})"),
                url=redact_url(url),
            )
        stats.record(decision)
        if not decision.retry:
            raise err
        log.info(
            "upload -> %s; retry in %.3fs (%s)", status or detail, decision.delay, decision.reason
        )
        await asyncio.sleep(decision.delay)
        attempt += 1


# -- download ------------------------------------------------------------------------
class _Sink:
    """Appends to a file and a sha256 in a worker thread, one buffer behind the network."""

    def __init__(self, f: IO[bytes]) -> None:
        self._f = f
        self._hash = hashlib.sha256()
        self._pending: asyncio.Future[None] | None = None
        self._buf: list[bytes] = []
        self._buffered = 0
        self.written = 0

    def _write(self, data: bytes) -> None:
        self._f.write(data)
        self._hash.update(data)

    async def feed(self, data: bytes, chunk: int) -> None:
        self._buf.append(data)
        self._buffered += len(data)
        self.written += len(data)
        if self._buffered >= chunk:
            await self._hand_off()

    async def _drain(self) -> bytes:
        """Wait for the write in flight; take what is buffered (b"" if nothing)."""
        if self._pending is not None:
            await self._pending
            self._pending = None
        data = self._buf[0] if len(self._buf) == 1 else b"".join(self._buf)
        self._buf.clear()
        self._buffered = 0
        return data

    async def _hand_off(self) -> None:
        data = await self._drain()
        if data:
            self._pending = asyncio.get_running_loop().run_in_executor(None, self._write, data)

    async def flush(self) -> None:
        await self._hand_off()
        if self._pending is not None:
            await self._pending
            self._pending = None

    async def finish(self, part: Path, target: Path) -> None:
        """Write the rest, fsync, close, rename ``part`` over ``target``, fsync the
        directory — in one worker-thread hop: a small file's whole write costs two
        (open, finish), not one per call."""
        data = await self._drain()
        await asyncio.to_thread(self._finish, data, part, target)

    def _finish(self, data: bytes, part: Path, target: Path) -> None:
        if data:
            self._write(data)
        _fsync_close(self._f)
        os.replace(part, target)
        _fsync_dir(target.parent)

    async def restart(self) -> None:
        """Discard everything written (the server sent the whole body again)."""
        await self.flush()
        await asyncio.to_thread(self._truncate)
        self._hash = hashlib.sha256()
        self.written = 0

    def _truncate(self) -> None:
        self._f.seek(0)
        self._f.truncate()

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


def _fsync_close(f: IO[bytes]) -> None:
    f.flush()
    os.fsync(f.fileno())
    f.close()


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


async def download(
    session: aiohttp.ClientSession,
    url: str,
    dest: str | os.PathLike[str],
    *,
    policy: RetryPolicy | None = None,
    client_timeout: aiohttp.ClientTimeout | None = None,
    stats: RetryCounters | None = None,
    chunk: int = CLIENT_TRANSFER_CHUNK,
    max_resumes: int = CLIENT_DOWNLOAD_MAX_RESUMES,
    rng: random.Random | None = None,
) -> DownloadResult:
    """Stream ``url`` to ``dest`` via ``dest.part``; return ``(size, sha256)``.

    A body shorter than its Content-Length (the connection dropped) is resumed
    with ``Range: bytes=N-`` (and ``If-Range`` when the server gave an ETag);
    a server that answers a range with the full body restarts the file.  On
    success the part file is fsynced and renamed over ``dest``; on failure
    it is removed — no partial file is ever left under the final name.
    """
    target = Path(dest)
    part = target.with_name(target.name + ".part")
    policy = policy or RetryPolicy()
    stats = stats if stats is not None else RetryCounters()
    rng = rng or random.Random()
    safe_url = redact_url(url)
    stats.calls += 1
    f = await _open_part(part)
    sink = _Sink(f)
    expected: int | None = None
    etag: str | None = None
    attempt = 0
    resumes = 0
    try:
        while True:
            headers: dict[str, str] = {}
            if sink.written:
                headers["Range"] = f"bytes={sink.written}-"
                if etag:
                    headers["If-Range"] = etag
            stats.requests += 1
            status: int | None = None
            failure: Failure | None = None
            detail = ""
            clean_eof = False
            try:
                async with session.get(
                    url,
                    headers=headers,
                    timeout=client_timeout,
                    read_bufsize=chunk,
                    auto_decompress=False,
                ) as resp:
                    status = resp.status
                    stats.status_counts[status] += 1
                    if status in (200, 206):
                        expected, etag = await _check_start(resp, sink, expected, etag, safe_url)
                        async for data in resp.content.iter_chunked(chunk):
                            await sink.feed(data, chunk)
                        clean_eof = True
                    else:
                        err_body = await resp.read()
                        resp_headers = resp.headers
            except (TimeoutError, aiohttp.ClientError) as exc:
                failure = classify_exception(exc)
                detail = f"{type(exc).__name__}: {redact(str(exc))}"
            if status in (200, 206) and (failure is None or failure is Failure.DISCONNECT):
                if expected is None and clean_eof:
                    break  # no Content-Length to check: a clean end is the end
                if expected is not None and sink.written == expected:
                    break
                if expected is not None and sink.written > expected:
                    raise TransferError(
                        f"download {safe_url}: got {sink.written} bytes, expected {expected}",
                        url=safe_url,
                        status=status,
                    )
                resumes += 1
                stats.retries_by_reason["short_body"] += 1
                if resumes > max_resumes:
                    raise TransferError(
                        f"download {safe_url}: body short ({sink.written}/{expected}) "
                        f"after {max_resumes} resumes",
                        url=safe_url,
                        status=status,
                    )
                log.info("download short (%s/%s); resuming with Range", sink.written, expected)
                continue
            if status is not None and status not in (200, 206):
                if status == 416 and sink.written:
                    await sink.restart()  # our offset is no longer valid: start over
                    expected = etag = None
                    resumes += 1
                    if resumes > max_resumes:
                        raise TransferError(
                            f"download {safe_url} -> 416", url=safe_url, status=status
                        )
                    continue
                decision = decide(
                    policy,
                    attempt=attempt,
                    method="GET",
                    idempotent=True,
                    status=status,
                    headers=resp_headers,
                    now=time.time(),
                    jitter=rng.random(),
                )
                err = _storage_error(status, err_body, url, "download")
            else:
                decision = decide(
                    policy,
                    attempt=attempt,
                    method="GET",
                    idempotent=True,
                    failure=failure,
                    now=time.time(),
                    jitter=rng.random(),
                )
                err = TransferError(
                    redact(f"download {safe_url}: {failure.value if failure else ''} ({detail})"),
                    url=safe_url,
                    status=status,
                )
            stats.record(decision)
            if not decision.retry:
                raise err
            await asyncio.sleep(decision.delay)
            attempt += 1
        finishing = asyncio.ensure_future(sink.finish(part, target))
        try:
            await asyncio.shield(finishing)
        except asyncio.CancelledError:
            # The thread runs to its end either way: never close the file under it.
            await _outlast(finishing)
            raise
        return DownloadResult(sink.written, sink.hexdigest())
    except BaseException:
        with contextlib.suppress(Exception):  # best effort; the original error matters
            await asyncio.shield(_discard(sink, f, part))
        raise


async def _outlast(work: asyncio.Future[Any]) -> None:
    """Wait for ``work`` to end, however many cancels come meanwhile (a worker
    thread cannot be stopped); its outcome is dropped: the cancel is what the
    caller hears."""
    while not work.done():
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait({work})
    if not work.cancelled():
        work.exception()  # retrieved


def _open_new(part: Path) -> IO[bytes]:
    part.parent.mkdir(parents=True, exist_ok=True)
    return open(part, "wb")  # the caller closes it


async def _open_part(part: Path) -> IO[bytes]:
    """Open the part file; a cancel during the open still removes what it made.

    The open runs in a thread that finishes whatever happens to the awaiting
    task, so a cancel there would otherwise leave an open handle and a
    ``.part`` behind: wait for the thread, close, unlink, then re-raise.
    """
    opening = asyncio.ensure_future(asyncio.to_thread(_open_new, part))
    try:
        return await asyncio.shield(opening)
    except asyncio.CancelledError:
        await _outlast(opening)
        if not opening.cancelled():
            with contextlib.suppress(Exception):  # the open's own error, or the close's
                opening.result().close()
        with contextlib.suppress(OSError):  # a parent that is not a directory: nothing made
            await asyncio.to_thread(part.unlink, missing_ok=True)
        raise


async def _discard(sink: _Sink, f: IO[bytes], part: Path) -> None:
    """Close and remove the part file, whatever the flush or close raise.

    On a full disk ``close`` flushes the file's buffer and raises ENOSPC
    again; the unlink must run regardless, or the ``.part`` is left behind.
    """
    try:
        try:
            await sink.flush()  # let a pending write finish before closing
        finally:
            await asyncio.to_thread(f.close)
    finally:
        await asyncio.to_thread(part.unlink, missing_ok=True)


async def _check_start(
    resp: aiohttp.ClientResponse,
    sink: _Sink,
    expected: int | None,
    etag: str | None,
    safe_url: str,
) -> tuple[int | None, str | None]:
    """Validate a 200/206 against what we already have; return (total, etag)."""
    if resp.status == 206:
        m = _CONTENT_RANGE.match(resp.headers.get("Content-Range", ""))
        start = int(m.group(1)) if m else -1
        total = int(m.group(3)) if m and m.group(3) != "*" else None
        if start != sink.written or (expected is not None and total not in (None, expected)):
            raise TransferError(
                f"download {safe_url}: range answer does not continue the file",
                url=safe_url,
                status=206,
            )
        return (total if total is not None else expected), etag
    # 200: the whole body from byte 0 — drop whatever a previous attempt wrote.
    if sink.written:
        await sink.restart()
    length = resp.headers.get("Content-Length")
    total = int(length) if length and length.isdigit() else None
    return total, resp.headers.get("ETag")
