"""Presigned URLs, the streamed blob store and the Range/truncate byte server,
driven through a real aiohttp server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import time
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from genbatch.sim.storage import (
    BYTE_SIZE_PARAM,
    EXPIRED_MESSAGE,
    SIGNATURE_MESSAGE,
    SIM_STORAGE_PREFIX,
    BlobStore,
    Presigner,
    RangeNotSatisfiableError,
    parse_range,
    redact_signature,
    s3_error,
    serve_bytes,
    validate_key,
)

SECRET = b"sim-test-secret"
NOW = 1_790_000_000.0
DATA = bytes(range(256)) * 40  # 10240 bytes, every offset distinguishable mod 256
MiB = 1 << 20
PRESIGNER = web.AppKey("presigner", Presigner)
#: Each finished PUT handler reports its outcome (a status, or the exception's name).
PUT_DONE = web.AppKey("put_done", asyncio.Queue[str])

ClientFactory = Callable[[web.Application], Awaitable[TestClient[web.Request, web.Application]]]
Client = TestClient[web.Request, web.Application]


def md5_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def _query(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query))


# ---------------------------------------------------------------- presigner (unit)


def _sign(presigner: Presigner, **overrides: object) -> str:
    args: dict[str, object] = {
        "content_type": "video/mp4",
        "content_md5": md5_b64(DATA),
        "byte_size": len(DATA),
        "expires_in": 3600.0,
        "now": NOW,
    }
    args.update(overrides)
    return presigner.sign("http://127.0.0.1:9/", "k3yToken_1", **args)  # type: ignore[arg-type]


def _verify(presigner: Presigner, url: str, **overrides: object) -> str | None:
    args: dict[str, object] = {
        "content_type": "video/mp4",
        "content_md5": md5_b64(DATA),
        "now": NOW + 10,
    }
    args.update(overrides)
    parts = urlsplit(url)
    return presigner.verify(parts.path, _query(url), **args)  # type: ignore[arg-type]


def test_signed_url_has_the_s3_shape_and_verifies() -> None:
    presigner = Presigner(SECRET)
    url = _sign(presigner)
    assert url.startswith(f"http://127.0.0.1:9{SIM_STORAGE_PREFIX}k3yToken_1?X-Amz-Algorithm=")
    query = _query(url)
    assert query["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"
    assert query["X-Amz-Date"] == time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(NOW))
    assert query["X-Amz-Expires"] == "3600"
    assert query["X-Amz-SignedHeaders"] == "content-md5;content-type"
    assert len(query["X-Amz-Signature"]) == 64
    int(query["X-Amz-Signature"], 16)
    assert query[BYTE_SIZE_PARAM] == str(len(DATA))
    assert _verify(presigner, url) is None


def test_tampering_with_anything_signed_is_refused() -> None:
    presigner = Presigner(SECRET)
    url = _sign(presigner)
    parts = urlsplit(url)
    assert _verify(presigner, url, content_type="image/png") == SIGNATURE_MESSAGE
    assert _verify(presigner, url, content_md5=md5_b64(b"other")) == SIGNATURE_MESSAGE
    assert _verify(presigner, url, content_type=None) == SIGNATURE_MESSAGE
    for name, value in [
        ("X-Amz-Signature", "0" * 64),
        ("X-Amz-Expires", "999999"),  # trying to extend the lifetime
        ("X-Amz-Date", "20991231T000000Z"),
        (BYTE_SIZE_PARAM, str(len(DATA) + 1)),
    ]:
        query = _query(url) | {name: value}
        assert (
            presigner.verify(
                parts.path, query, content_type="video/mp4", content_md5=md5_b64(DATA), now=NOW
            )
            == SIGNATURE_MESSAGE
        ), name
    other_key = parts.path.replace("k3yToken_1", "k3yToken_2")
    assert (
        presigner.verify(
            other_key, _query(url), content_type="video/mp4", content_md5=md5_b64(DATA), now=NOW
        )
        == SIGNATURE_MESSAGE
    )
    assert _verify(Presigner(b"another secret"), url) == SIGNATURE_MESSAGE


def test_expiry_and_malformed_queries() -> None:
    presigner = Presigner(SECRET)
    url = _sign(presigner, expires_in=60)
    assert _verify(presigner, url, now=NOW + 59) is None
    assert _verify(presigner, url, now=NOW + 60) == EXPIRED_MESSAGE
    assert _verify(presigner, _sign(presigner, expires_in=0), now=NOW) == EXPIRED_MESSAGE
    parts = urlsplit(url)
    query = _query(url)
    del query["X-Amz-Signature"]
    message = presigner.verify(parts.path, query, content_type="video/mp4", content_md5="", now=NOW)
    assert message is not None and "X-Amz-Signature" in message
    bad_alg = _query(url) | {"X-Amz-Algorithm": "AWS4-HMAC-MD5"}
    assert presigner.verify(parts.path, bad_alg, content_type="", content_md5="", now=NOW)
    bad_date = _query(url) | {"X-Amz-Date": "yesterday"}
    assert presigner.verify(parts.path, bad_date, content_type="", content_md5="", now=NOW)


@pytest.mark.parametrize("key", ["", "a/b", "..", "a..b", "../etc", "k ey", "%2e%2e", "a\x00"])
def test_unsafe_keys_are_refused(key: str) -> None:
    with pytest.raises(ValueError):
        validate_key(key)
    with pytest.raises(ValueError):
        Presigner(SECRET).sign(
            "http://h", key, content_type="", content_md5="", byte_size=1, expires_in=1, now=NOW
        )
    path = SIM_STORAGE_PREFIX + key
    assert Presigner(SECRET).verify(path, {}, content_type="", content_md5="", now=NOW)


def test_signature_covers_a_base_url_path_prefix() -> None:
    presigner = Presigner(SECRET)
    url = presigner.sign(
        "http://h/prefix",
        "abc",
        content_type="a/b",
        content_md5="x",
        byte_size=1,
        expires_in=10,
        now=NOW,
    )
    path = urlsplit(url).path
    assert path == f"/prefix{SIM_STORAGE_PREFIX}abc"
    assert presigner.verify(path, _query(url), content_type="a/b", content_md5="x", now=NOW) is None


# ---------------------------------------------------------------- Range parsing (unit)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("", None),
        ("bytes=0-99", (0, 99)),
        ("bytes=100-", (100, 999)),
        ("bytes=-10", (990, 999)),
        ("bytes=-5000", (0, 999)),
        ("bytes=990-5000", (990, 999)),
        ("bytes=999-999", (999, 999)),
        ("bytes=0-1,5-6", None),  # multi-range: ignored → full body
        ("bytes=5-1", None),  # invalid → ignored
        ("items=0-1", None),
        ("bytes=abc", None),
        ("bytes=-", None),
    ],
)
def test_parse_range(header: str | None, expected: tuple[int, int] | None) -> None:
    assert parse_range(header, 1000) == expected


@pytest.mark.parametrize(
    ("header", "total"), [("bytes=1000-", 1000), ("bytes=-0", 1000), ("bytes=0-", 0)]
)
def test_parse_range_unsatisfiable(header: str, total: int) -> None:
    with pytest.raises(RangeNotSatisfiableError):
        parse_range(header, total)


def test_s3_error_is_escaped_xml() -> None:
    response = s3_error(400, "BadDigest", "a < b & c")
    assert response.status == 400
    assert response.content_type == "application/xml"
    assert response.text is not None
    assert response.text.startswith("<?xml")
    assert (
        "<Error><Code>BadDigest</Code><Message>a &lt; b &amp; c</Message></Error>" in response.text
    )


# ---------------------------------------------------------------- through a real server


@pytest.fixture
def store(tmp_path: Path) -> BlobStore:
    return BlobStore(tmp_path / "blobs")


@pytest.fixture
async def client(aiohttp_client: ClientFactory, store: BlobStore) -> Client:
    """A tiny storage+CDN app wired the way the simulator wires these pieces."""
    presigner = Presigner(SECRET)

    done: asyncio.Queue[str] = asyncio.Queue()

    async def put(request: web.Request) -> web.Response:
        try:
            response = await _put(request)
        except BaseException as exc:
            done.put_nowait(type(exc).__name__)
            raise
        done.put_nowait(str(response.status))
        return response

    async def _put(request: web.Request) -> web.Response:
        message = presigner.verify(
            request.path,
            request.query,
            content_type=request.headers.get("Content-Type"),
            content_md5=request.headers.get("Content-MD5"),
            now=time.time(),
        )
        if message is not None:
            return s3_error(403, "AccessDenied", message)
        return await store.receive_put(
            request,
            request.match_info["key"],
            expected_md5_b64=request.headers["Content-MD5"],
            expected_size=int(request.query[BYTE_SIZE_PARAM]),
        )

    async def blob(request: web.Request) -> web.StreamResponse:
        truncate = request.query.get("truncate") == "1"
        path = store.path(request.match_info["key"])
        return await serve_bytes(request, path, "video/mp4", truncate=truncate)

    async def memory(request: web.Request) -> web.StreamResponse:
        truncate = request.query.get("truncate") == "1"
        return await serve_bytes(request, DATA, "video/mp4", truncate=truncate)

    app = web.Application()
    app[PRESIGNER] = presigner
    app[PUT_DONE] = done
    app.router.add_put(SIM_STORAGE_PREFIX + "{key}", put)
    app.router.add_get("/cdn/blob/{key}", blob)
    app.router.add_get("/cdn/memory.mp4", memory)
    return await aiohttp_client(app)


def _presign(
    client: Client, key: str, data: bytes, *, content_type: str = "video/mp4", **kw: float
) -> str:
    presigner = client.app[PRESIGNER]
    return presigner.sign(
        str(client.make_url("")).rstrip("/"),
        key,
        content_type=content_type,
        content_md5=md5_b64(data),
        byte_size=len(data),
        expires_in=kw.get("expires_in", 600.0),
        now=kw.get("now", time.time()),
    )


async def _chunks(data: bytes, size: int = 4096) -> AsyncIterator[bytes]:
    for offset in range(0, len(data), size):
        yield data[offset : offset + size]


async def test_streamed_put_with_correct_md5_is_stored(client: Client, store: BlobStore) -> None:
    url = _presign(client, "blobA", DATA)
    headers = {"Content-Type": "video/mp4", "Content-MD5": md5_b64(DATA)}
    async with client.session.put(url, data=_chunks(DATA), headers=headers) as response:
        assert response.status == 200
        assert response.headers["ETag"] == f'"{hashlib.md5(DATA).hexdigest()}"'
        assert await response.read() == b""
    assert store.exists("blobA") and store.size("blobA") == len(DATA)
    assert store.path("blobA").read_bytes() == DATA
    assert not list(store.root.glob("*.part"))
    store.delete("blobA")
    store.delete("blobA")  # idempotent
    assert not store.exists("blobA")


async def test_wrong_md5_is_bad_digest_and_nothing_is_kept(
    client: Client, store: BlobStore
) -> None:
    # The URL is signed for the header the client sends; only the body differs.
    lie = DATA[:-1] + b"\x00"
    url = _presign(client, "blobB", DATA)
    headers = {"Content-Type": "video/mp4", "Content-MD5": md5_b64(DATA)}
    async with client.session.put(url, data=lie, headers=headers) as response:
        assert response.status == 400
        assert response.content_type == "application/xml"
        assert "<Code>BadDigest</Code>" in await response.text()
    assert not store.exists("blobB")
    assert list(store.root.iterdir()) == []


@pytest.mark.parametrize("body", [DATA[:-100], DATA + b"extra"])
async def test_wrong_length_is_incomplete_body(
    client: Client, store: BlobStore, body: bytes
) -> None:
    url = _presign(client, "blobC", DATA)
    headers = {"Content-Type": "video/mp4", "Content-MD5": md5_b64(DATA)}
    # Streamed (chunked: no Content-Length) so the server must count, not trust headers.
    async with client.session.put(url, data=_chunks(body), headers=headers) as response:
        assert response.status == 400
        assert "<Code>IncompleteBody</Code>" in await response.text()
    async with client.session.put(url, data=body, headers=headers) as response:  # declared length
        assert response.status == 400
        assert "<Code>IncompleteBody</Code>" in await response.text()
    assert list(store.root.iterdir()) == []


async def test_bad_signature_and_expiry_are_access_denied(client: Client, store: BlobStore) -> None:
    url = _presign(client, "blobD", DATA)
    wrong_type = {"Content-Type": "application/octet-stream", "Content-MD5": md5_b64(DATA)}
    async with client.session.put(url, data=DATA, headers=wrong_type) as response:
        assert response.status == 403
        text = await response.text()
        assert "<Code>AccessDenied</Code>" in text and "SignatureDoesNotMatch" in text
    expired = _presign(client, "blobD", DATA, now=time.time() - 3600, expires_in=60)
    headers = {"Content-Type": "video/mp4", "Content-MD5": md5_b64(DATA)}
    async with client.session.put(expired, data=DATA, headers=headers) as response:
        assert response.status == 403
        assert f"<Message>{EXPIRED_MESSAGE}</Message>" in await response.text()
    assert not store.exists("blobD")


async def test_range_requests_on_memory_and_file(client: Client, store: BlobStore) -> None:
    store.path("f1").write_bytes(DATA)
    total = len(DATA)
    for path in ("/cdn/memory.mp4", "/cdn/blob/f1"):
        async with client.get(path) as response:
            assert response.status == 200
            assert response.headers["Accept-Ranges"] == "bytes"
            assert response.headers["Content-Length"] == str(total)
            assert response.headers["Content-Type"] == "video/mp4"
            assert await response.read() == DATA
        async with client.get(path, headers={"Range": "bytes=100-199"}) as response:
            assert response.status == 206
            assert response.headers["Content-Range"] == f"bytes 100-199/{total}"
            assert response.headers["Content-Length"] == "100"
            assert await response.read() == DATA[100:200]
        async with client.get(path, headers={"Range": "bytes=10000-"}) as response:
            assert response.status == 206
            assert await response.read() == DATA[10000:]
        async with client.get(path, headers={"Range": "bytes=-7"}) as response:
            assert response.status == 206
            assert response.headers["Content-Range"] == f"bytes {total - 7}-{total - 1}/{total}"
            assert await response.read() == DATA[-7:]
        async with client.get(path, headers={"Range": f"bytes={total}-"}) as response:
            assert response.status == 416
            assert response.headers["Content-Range"] == f"bytes */{total}"
        async with client.get(path, headers={"Range": "bytes=0-1,4-5"}) as response:
            assert response.status == 200
            assert await response.read() == DATA
        async with client.head(path, headers={"Range": "bytes=0-9"}) as response:
            assert response.status == 206
            assert response.headers["Content-Length"] == "10"


async def test_large_file_is_served_in_chunks_with_exact_ranges(
    client: Client, store: BlobStore
) -> None:
    blob = bytes(range(251)) * (3 * MiB // 251)  # > 2 chunks, period prime to chunk size
    store.path("big").write_bytes(blob)
    async with client.get("/cdn/blob/big") as response:
        assert response.headers["Content-Length"] == str(len(blob))
        assert await response.read() == blob
    start = MiB - 3
    async with client.get("/cdn/blob/big", headers={"Range": f"bytes={start}-"}) as response:
        assert await response.read() == blob[start:]


@pytest.mark.parametrize("path", ["/cdn/memory.mp4?truncate=1", "/cdn/blob/f2?truncate=1"])
async def test_truncate_promises_full_length_but_sends_less(
    client: Client, store: BlobStore, path: str
) -> None:
    store.path("f2").write_bytes(DATA)
    async with client.get(path) as response:
        assert response.status == 200
        assert response.headers["Content-Length"] == str(len(DATA))
        with pytest.raises(aiohttp.ClientPayloadError):
            await response.read()
    # A truncated range response is short too, and the server keeps serving.
    async with client.get(path, headers={"Range": "bytes=0-999"}) as response:
        assert response.status == 206
        assert response.headers["Content-Length"] == "1000"
        received = bytearray()
        with pytest.raises(aiohttp.ClientPayloadError):
            async for chunk in response.content.iter_any():
                received += chunk
        assert 0 < len(received) < 1000
        assert bytes(received) == DATA[: len(received)]
    async with client.get(path.split("?")[0]) as response:
        assert await response.read() == DATA


async def test_64_mib_put_is_not_buffered_in_memory(client: Client, store: BlobStore) -> None:
    """The server writes as it reads: peak Python allocation stays far below the body."""
    chunk = bytes(range(256)) * (MiB // 256)
    n_chunks = 64
    digest = hashlib.md5()
    for _ in range(n_chunks):
        digest.update(chunk)
    checksum = base64.b64encode(digest.digest()).decode()
    presigner = client.app[PRESIGNER]
    url = presigner.sign(
        str(client.make_url("")).rstrip("/"),
        "huge",
        content_type="video/mp4",
        content_md5=checksum,
        byte_size=n_chunks * MiB,
        expires_in=600,
        now=time.time(),
    )

    async def body() -> AsyncIterator[bytes]:
        for _ in range(n_chunks):
            yield chunk  # the same object every time: the client allocates nothing

    headers = {"Content-Type": "video/mp4", "Content-MD5": checksum}
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        async with client.session.put(url, data=body(), headers=headers) as response:
            assert response.status == 200
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert store.size("huge") == n_chunks * MiB
    print(f"peak traced allocation while receiving 64 MiB: {peak / MiB:.1f} MiB")
    assert peak < 16 * MiB, f"peak {peak / MiB:.1f} MiB while receiving 64 MiB"


async def test_client_dying_mid_upload_leaves_nothing_behind(
    client: Client, store: BlobStore
) -> None:
    url = urlsplit(_presign(client, "blobE", DATA))
    assert client.port is not None
    _reader, writer = await asyncio.open_connection("127.0.0.1", client.port)
    head = (
        f"PUT {url.path}?{url.query} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Content-Type: video/mp4\r\nContent-MD5: {md5_b64(DATA)}\r\n"
        f"Content-Length: {len(DATA)}\r\n\r\n"
    )
    writer.write(head.encode() + DATA[: len(DATA) // 2])
    await writer.drain()
    writer.close()
    await writer.wait_closed()
    outcome = await asyncio.wait_for(client.app[PUT_DONE].get(), timeout=30)
    assert outcome != "200", outcome
    assert list(store.root.iterdir()) == []


async def test_concurrent_puts_of_one_key_do_not_interleave(
    client: Client, store: BlobStore
) -> None:
    url = _presign(client, "blobF", DATA)
    headers = {"Content-Type": "video/mp4", "Content-MD5": md5_b64(DATA)}

    async def put() -> int:
        async with client.session.put(url, data=_chunks(DATA, 512), headers=headers) as response:
            return response.status

    assert await asyncio.gather(*(put() for _ in range(4))) == [200] * 4
    assert store.path("blobF").read_bytes() == DATA
    assert [p.name for p in store.root.iterdir()] == ["blobF"]


async def test_missing_blob_is_404_no_such_key(client: Client) -> None:
    async with client.get("/cdn/blob/nope") as response:
        assert response.status == 404
        assert "<Code>NoSuchKey</Code>" in await response.text()


def test_redact_signature_masks_only_the_signature() -> None:
    url = _sign(Presigner(SECRET))
    signature = _query(url)["X-Amz-Signature"]
    redacted = redact_signature(f"PUT {url} 200")
    assert signature not in redacted
    assert "X-Amz-Signature=REDACTED" in redacted
    assert "X-Amz-Date=" in redacted and redacted.startswith("PUT http://127.0.0.1:9/")
