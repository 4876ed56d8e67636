"""The client's direct-upload PUT against a real S3 implementation (moto's server).

boto3 presigns a PUT with Content-MD5 and Content-Type as *signed* headers,
exactly as ActiveStorage does; the client must send those headers verbatim.
S3 accepts the right bytes.  For a body whose MD5 differs, real S3 answers
400 BadDigest (the simulator's storage does too, see test_sim_transfers);
moto 5.2 does not check Content-MD5 (a TODO in its source) and stores the
bytes — the client still refuses to report success, because the stored
object's ETag (its MD5) is not the MD5 that was signed.  Either way the
caller gets ``ChecksumMismatch``.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import boto3
import pytest
from botocore.config import Config
from moto.server import ThreadedMotoServer

from genbatch.client.retry import RetryPolicy
from genbatch.client.transfer import md5_base64, put_file
from genbatch.errors import ChecksumMismatch

BUCKET = "genbatch-uploads"
FAST = RetryPolicy(max_retries=1, backoff_initial=0.001, backoff_max=0.002)


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for var, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(var, value)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        client = boto3.client(
            "s3",
            endpoint_url=f"http://{host}:{port}",
            region_name="us-east-1",
            config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
        )
        client.create_bucket(Bucket=BUCKET)
        yield client
    finally:
        server.stop()


def _presign(s3: Any, key: str, md5: str, ctype: str) -> str:
    url: str = s3.generate_presigned_url(
        "put_object",
        Params={"Bucket": BUCKET, "Key": key, "ContentMD5": md5, "ContentType": ctype},
        ExpiresIn=300,
    )
    return url


async def test_presigned_put_accepted_and_bad_md5_rejected(s3: Any, tmp_path: Path) -> None:
    data = os.urandom(2 * (1 << 20) + 7)
    path = tmp_path / "hero.mp4"
    path.write_bytes(data)
    md5 = await md5_base64(path)
    assert md5 == base64.b64encode(hashlib.md5(data).digest()).decode()

    url = _presign(s3, "uploads/hero.mp4", md5, "video/mp4")
    signed = parse_qs(urlsplit(url).query)["X-Amz-SignedHeaders"][0].split(";")
    assert {"content-md5", "content-type", "host"} <= set(signed)
    async with aiohttp.ClientSession() as session:
        sent = await put_file(
            session, url, {"Content-MD5": md5, "Content-Type": "video/mp4"}, path, policy=FAST
        )
    assert sent == len(data)
    obj = s3.get_object(Bucket=BUCKET, Key="uploads/hero.mp4")
    assert obj["Body"].read() == data
    assert obj["ContentType"] == "video/mp4"

    # A body whose MD5 differs from the signed one: S3 refuses to store it.
    wrong = base64.b64encode(hashlib.md5(b"not these bytes").digest()).decode()
    url2 = _presign(s3, "uploads/bad.mp4", wrong, "video/mp4")
    async with aiohttp.ClientSession() as session:
        with pytest.raises(ChecksumMismatch) as info:
            await put_file(
                session,
                url2,
                {"Content-MD5": wrong, "Content-Type": "video/mp4"},
                path,
                policy=FAST,
            )
    # real S3: BadDigest (400); moto: stored, caught by the ETag check
    assert info.value.code in {"BadDigest", "ETagMismatch"}
    signature = parse_qs(urlsplit(url2).query)["X-Amz-Signature"][0]
    assert signature not in str(info.value) and signature not in repr(info.value)
    if info.value.code == "ETagMismatch":
        head = s3.head_object(Bucket=BUCKET, Key="uploads/bad.mp4")
        assert head["ETag"].strip('"') == hashlib.md5(data).hexdigest()
        assert base64.b64decode(wrong).hex() != hashlib.md5(data).hexdigest()
