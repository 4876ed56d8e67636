"""Streamed MD5, PUT and download against a small real aiohttp server of our own.

The server here plays storage and CDN with exactly the misbehaviours we must
survive: bodies cut short under a full Content-Length, servers that ignore
Range, BadDigest, expired URLs, redirects.  It is a real socket server, not a
mock; the simulator-based tests cover the same paths end to end.
"""

from __future__ import annotations

import asyncio
import base64
import errno
import hashlib
import os
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from genbatch.client import GenClient, transfer
from genbatch.client.models import DirectUploadTarget
from genbatch.client.retry import RetryPolicy
from genbatch.client.transfer import download, md5_base64, md5_base64_sync, put_file
from genbatch.errors import ChecksumMismatch, TransferError

DATA = os.urandom(3 * (1 << 20) + 12345)
FAST = RetryPolicy(max_retries=2, backoff_initial=0.001, backoff_max=0.002)


@dataclass
class Storage:
    truncate_next: int = 0
    ignore_range: bool = False
    fail_next_get: int = 0
    gets: list[dict[str, str]] = field(default_factory=list)
    puts: list[dict[str, str]] = field(default_factory=list)
    put_bodies: list[bytes] = field(default_factory=list)
    bad_digest_next: int = 0


def _b64md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def make_app(st: Storage) -> web.Application:
    async def blob(request: web.Request) -> web.StreamResponse:
        st.gets.append(dict(request.headers))
        if st.fail_next_get:
            st.fail_next_get -= 1
            return web.Response(status=503, headers={"Retry-After": "0"})
        start = 0
        rng = request.headers.get("Range")
        if rng and not st.ignore_range:
            start = int(rng.split("=")[1].rstrip("-"))
            if start >= len(DATA):
                return web.Response(status=416)
        body = DATA[start:]
        resp = web.StreamResponse(status=206 if start else 200)
        resp.content_length = len(body)
        resp.headers["ETag"] = '"v1"'
        if start:
            resp.headers["Content-Range"] = f"bytes {start}-{len(DATA) - 1}/{len(DATA)}"
        await resp.prepare(request)
        if st.truncate_next:
            st.truncate_next -= 1
            await resp.write(body[: len(body) // 3])
            assert request.transport is not None
            request.transport.close()  # the connection dies mid-body
            return resp
        await resp.write(body)
        await resp.write_eof()
        return resp

    async def put(request: web.Request) -> web.Response:
        st.puts.append(dict(request.headers))
        h = hashlib.md5()
        chunks = []
        async for chunk in request.content.iter_chunked(1 << 16):
            h.update(chunk)
            chunks.append(chunk)
        st.put_bodies.append(b"".join(chunks))
        if st.bad_digest_next:
            st.bad_digest_next -= 1
            return _s3_error(400, "BadDigest", "The Content-MD5 you specified did not match")
        if base64.b64encode(h.digest()).decode() != request.headers.get("Content-MD5"):
            return _s3_error(400, "BadDigest", "The Content-MD5 you specified did not match")
        return web.Response(status=200)

    async def expired(request: web.Request) -> web.Response:
        async for _ in request.content.iter_chunked(1 << 16):
            pass
        return _s3_error(403, "AccessDenied", "Request has expired")

    async def lax(request: web.Request) -> web.Response:
        # storage that does not verify Content-MD5 but reports the MD5 it stored
        h = hashlib.md5()
        async for chunk in request.content.iter_chunked(1 << 16):
            h.update(chunk)
        st.puts.append(dict(request.headers))
        headers = {"ETag": f'"{h.hexdigest()}"'}
        if request.query.get("kms"):
            headers["x-amz-server-side-encryption"] = "aws:kms"
        return web.Response(status=200, headers=headers)

    async def missing(request: web.Request) -> web.Response:
        return web.Response(status=404)

    async def small(request: web.Request) -> web.Response:
        # fits the file object's buffer: a full disk shows only at flush/close
        return web.Response(body=DATA[:1000])

    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPTemporaryRedirect("/put")

    app = web.Application()
    app.router.add_get("/blob", blob)
    app.router.add_get("/missing", missing)
    app.router.add_get("/small", small)
    app.router.add_put("/put", put)
    app.router.add_put("/expired", expired)
    app.router.add_put("/lax", lax)
    app.router.add_put("/redirect", redirect)
    return app


def _s3_error(status: int, code: str, message: str) -> web.Response:
    xml = f"<?xml version='1.0'?><Error><Code>{code}</Code><Message>{message}</Message></Error>"
    return web.Response(status=status, text=xml, content_type="application/xml")


@pytest.fixture
async def storage() -> AsyncIterator[tuple[Storage, str]]:
    st = Storage()
    server = TestServer(make_app(st), host="127.0.0.1")
    await server.start_server()
    try:
        yield st, str(server.make_url("")).rstrip("/")
    finally:
        await server.close()


@pytest.fixture
def blob_file(tmp_path: Path) -> Path:
    p = tmp_path / "upload.bin"
    p.write_bytes(DATA)
    return p


async def test_md5_streamed_matches_openssl_form(blob_file: Path) -> None:
    expected = _b64md5(DATA)
    assert md5_base64_sync(blob_file, chunk=4096) == expected
    assert await md5_base64(blob_file) == expected


async def test_download_plain(storage: tuple[Storage, str], tmp_path: Path) -> None:
    _st, base = storage
    async with aiohttp.ClientSession() as s:
        size, sha = await download(s, base + "/blob", tmp_path / "out.mp4", policy=FAST)
    assert size == len(DATA) and sha == hashlib.sha256(DATA).hexdigest()
    assert (tmp_path / "out.mp4").read_bytes() == DATA
    assert not (tmp_path / "out.mp4.part").exists()


async def test_download_resumes_short_body_with_range(
    storage: tuple[Storage, str], tmp_path: Path
) -> None:
    st, base = storage
    st.truncate_next = 2
    async with aiohttp.ClientSession() as s:
        size, sha = await download(s, base + "/blob", tmp_path / "out.mp4", policy=FAST)
    assert (size, sha) == (len(DATA), hashlib.sha256(DATA).hexdigest())
    assert (tmp_path / "out.mp4").read_bytes() == DATA
    ranges = [g.get("Range") for g in st.gets]
    assert ranges[0] is None and all(r and r.startswith("bytes=") for r in ranges[1:])
    assert len(ranges) == 3
    assert all(g.get("If-Range") == '"v1"' for g in st.gets[1:])


@pytest.mark.parametrize("path", ["/small", "/blob"])
async def test_download_on_a_full_disk_leaves_no_part_file(
    storage: tuple[Storage, str], tmp_path: Path, path: str
) -> None:
    # /dev/full fails every write with ENOSPC, so the part file's write,
    # flush and close all raise: the discard must remove it all the same.
    if not os.path.exists("/dev/full"):  # noqa: ASYNC240 — a test-side check
        pytest.skip("no /dev/full here")
    _st, base = storage
    dest = tmp_path / "out.mp4"
    (tmp_path / "out.mp4.part").symlink_to("/dev/full")
    async with aiohttp.ClientSession() as s:
        with pytest.raises(OSError) as info:
            await download(s, base + path, dest, policy=FAST)
    assert info.value.errno == errno.ENOSPC
    assert not any(tmp_path.iterdir())  # noqa: ASYNC240 — a test-side check


async def test_download_cancelled_while_opening_leaves_no_part_file(tmp_path: Path) -> None:
    # A FIFO at the part path blocks open(..., "wb") until a reader appears, so the
    # cancel lands exactly while the open runs in its thread.
    dest = tmp_path / "out.mp4"
    part = tmp_path / "out.mp4.part"
    os.mkfifo(part)
    async with aiohttp.ClientSession() as s:
        task = asyncio.create_task(download(s, "http://127.0.0.1:9/never", dest, policy=FAST))
        await asyncio.sleep(0.2)
        assert not task.done()
        task.cancel()
        reader = await asyncio.to_thread(os.open, part, os.O_RDONLY)  # unblocks the writer
        with pytest.raises(asyncio.CancelledError):
            await task
        os.close(reader)
    assert not part.exists()
    assert not dest.exists()


async def test_download_cancelled_while_finishing_completes_the_file(
    storage: tuple[Storage, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The last write, fsync, rename and directory fsync run in one thread hop; a
    # cancel landing there waits for it (the file is never closed under the
    # thread), so the name holds the whole body and no .part is left.
    entered, release = threading.Event(), threading.Event()
    real = transfer._fsync_dir

    def held(path: Path) -> None:
        entered.set()
        release.wait(5)
        real(path)

    monkeypatch.setattr(transfer, "_fsync_dir", held)
    _st, base = storage
    dest = tmp_path / "out.mp4"
    async with aiohttp.ClientSession() as s:
        task = asyncio.create_task(download(s, base + "/blob", dest, policy=FAST))
        assert await asyncio.to_thread(entered.wait, 5)
        task.cancel()
        await asyncio.sleep(0.05)
        assert not task.done()  # still waiting for the thread
        task.cancel()  # and a second cancel does not cut the wait short
        await asyncio.sleep(0.05)
        assert not task.done()
        release.set()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert dest.read_bytes() == DATA
    assert not (tmp_path / "out.mp4.part").exists()


async def test_download_restarts_when_range_ignored(
    storage: tuple[Storage, str], tmp_path: Path
) -> None:
    st, base = storage
    st.truncate_next = 1
    st.ignore_range = True
    async with aiohttp.ClientSession() as s:
        size, sha = await download(s, base + "/blob", tmp_path / "out.mp4", policy=FAST)
    assert size == len(DATA) and sha == hashlib.sha256(DATA).hexdigest()
    assert (tmp_path / "out.mp4").read_bytes() == DATA


async def test_download_gives_up_and_leaves_no_partial(
    storage: tuple[Storage, str], tmp_path: Path
) -> None:
    st, base = storage
    st.truncate_next = 100
    async with aiohttp.ClientSession() as s:
        with pytest.raises(TransferError, match="short"):
            await download(s, base + "/blob", tmp_path / "out.mp4", policy=FAST, max_resumes=2)
        with pytest.raises(TransferError) as info:
            await download(s, base + "/missing?Signature=sekrit99", tmp_path / "m.mp4", policy=FAST)
    assert info.value.status == 404 and "sekrit99" not in str(info.value) + repr(info.value)
    assert not any(tmp_path.iterdir())  # noqa: ASYNC240 — a test-side check


async def test_download_retries_5xx(storage: tuple[Storage, str], tmp_path: Path) -> None:
    st, base = storage
    st.fail_next_get = 1
    async with aiohttp.ClientSession() as s:
        size, _ = await download(s, base + "/blob", tmp_path / "out.mp4", policy=FAST)
    assert size == len(DATA) and len(st.gets) == 2


async def test_put_sends_exactly_the_given_headers(
    storage: tuple[Storage, str], blob_file: Path
) -> None:
    st, base = storage
    md5 = _b64md5(DATA)
    async with aiohttp.ClientSession() as s:
        sent = await put_file(
            s, base + "/put", {"Content-Type": "video/mp4", "Content-MD5": md5}, blob_file
        )
    assert sent == len(DATA) and st.put_bodies == [DATA]
    got = {k.lower(): v for k, v in st.puts[0].items()}
    assert got["content-md5"] == md5 and got["content-type"] == "video/mp4"
    assert got["content-length"] == str(len(DATA)) and "transfer-encoding" not in got
    # nothing else rides along: no auth, no UA, no encodings
    assert set(got) <= {"host", "content-type", "content-md5", "content-length"}


async def test_put_bad_digest_is_checksum_mismatch(
    storage: tuple[Storage, str], blob_file: Path
) -> None:
    st, base = storage
    headers = {"Content-Type": "video/mp4", "Content-MD5": _b64md5(b"other bytes")}
    async with aiohttp.ClientSession() as s:
        with pytest.raises(ChecksumMismatch) as info:
            await put_file(s, base + "/put", headers, blob_file, policy=FAST)
    assert info.value.code == "BadDigest" and info.value.status == 400
    assert len(st.puts) == 2  # one resend, then it is the file (not the hop) that is wrong


async def test_put_transient_bad_digest_is_resent_once(
    storage: tuple[Storage, str], blob_file: Path
) -> None:
    st, base = storage
    st.bad_digest_next = 1
    async with aiohttp.ClientSession() as s:
        await put_file(s, base + "/put", {"Content-MD5": _b64md5(DATA)}, blob_file, policy=FAST)
    assert len(st.puts) == 2


async def test_put_expired_and_redirect_are_not_followed(
    storage: tuple[Storage, str], blob_file: Path
) -> None:
    st, base = storage
    async with aiohttp.ClientSession() as s:
        with pytest.raises(TransferError) as info:
            await put_file(
                s, base + "/expired?X-Amz-Signature=abcdef123", {"Content-MD5": "x"}, blob_file
            )
        assert info.value.status == 403 and info.value.code == "AccessDenied"
        assert "expired" in str(info.value) and "abcdef123" not in str(info.value)
        with pytest.raises(TransferError, match="redirect"):
            await put_file(s, base + "/redirect", {"Content-MD5": _b64md5(DATA)}, blob_file)
    assert st.puts == []  # the redirect target was never hit


async def test_client_transfers_never_carry_the_key(
    storage: tuple[Storage, str], blob_file: Path, tmp_path: Path
) -> None:
    st, base = storage
    key = "transfer-canary-key-5566"
    # even an injected session that carries the key by default must not leak it
    async with (
        aiohttp.ClientSession(headers={"X-API-Key": key}) as injected,
        GenClient(key, api_url=base + "/v1", agent_url=base + "/v1", session=injected) as gen,
    ):
        target = DirectUploadTarget(
            url=base + "/put", headers={"Content-MD5": _b64md5(DATA), "Content-Type": "x/y"}
        )
        await gen.uploads.put(target, blob_file)
        size, _ = await gen.download(base + "/blob", tmp_path / "d.bin")
    assert size == len(DATA)
    for h in st.puts + st.gets:
        assert key not in " ".join(f"{k}: {v}" for k, v in h.items())
        assert "Authorization" not in h and "X-API-Key" not in h


async def test_put_etag_catches_storage_that_skips_md5(
    storage: tuple[Storage, str], blob_file: Path
) -> None:
    st, base = storage
    async with aiohttp.ClientSession() as s:
        await put_file(s, base + "/lax", {"Content-MD5": _b64md5(DATA)}, blob_file, policy=FAST)
        with pytest.raises(ChecksumMismatch) as info:
            await put_file(s, base + "/lax", {"Content-MD5": _b64md5(b"x")}, blob_file, policy=FAST)
        assert info.value.code == "ETagMismatch"
        # an SSE-KMS ETag is not an MD5: no false alarm
        await put_file(s, base + "/lax?kms=1", {"Content-MD5": _b64md5(b"x")}, blob_file)
    assert len(st.puts) == 1 + 2 + 1
