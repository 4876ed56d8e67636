"""The object store behind ``--videos-to``, against moto's S3 server and a local fsspec store:
multipart uploads and their ETag, the sha256 metadata that makes a rerun free,
objects kept aside rather than overwritten, and the preflight's refusals."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from storagehelp import AWS_SECRET, S3, moto_s3, no_aws_env

from genbatch.engine.objectstore import (
    ENGINE_STORE_PART_BYTES,
    LocalCopyMissing,
    StoreError,
    StoreUnusable,
    VideoStore,
)

BUCKET = "genbatch-store"


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[S3]:
    for server in moto_s3():
        monkeypatch.setattr(os, "environ", {})  # the store reads only what the test sets
        os.environ.update(server.env())
        server.bucket(BUCKET, versioned=True)
        yield server


def _file(path: Path, size: int) -> tuple[Path, str]:
    data = os.urandom(size)
    path.write_bytes(data)
    return path, hashlib.sha256(data).hexdigest()


def test_multipart_upload_is_verified_and_not_sent_twice(tmp_path: Path, s3: S3) -> None:
    size = 2 * ENGINE_STORE_PART_BYTES + 12_345  # three parts
    local, sha = _file(tmp_path / "big.mp4", size)
    store = VideoStore(f"s3://{BUCKET}/night/")
    store.check()
    placed = store.place(local, "big.mp4", size, sha)
    assert placed.url == f"s3://{BUCKET}/night/big.mp4" and placed.uploaded
    head = s3.client.head_object(Bucket=BUCKET, Key="night/big.mp4")
    assert head["ETag"].strip('"').endswith("-3")  # a multipart upload ...
    assert head["Metadata"]["sha256"] == sha  # ... carrying the file's own digest
    assert head["ContentType"] == "video/mp4"
    again = VideoStore(f"s3://{BUCKET}/night").place(local, "big.mp4", size, sha)
    assert not again.uploaded  # found by HEAD: size and sha256 match
    assert len(s3.versions(BUCKET, "night/big.mp4")["night/big.mp4"]) == 1
    # Even with the local copy gone, a HEAD is enough to know it is there.
    local.unlink()
    assert not store.place(local, "big.mp4", size, sha).uploaded
    # The preflight's probe left nothing behind, not even an old version.
    assert set(s3.versions(BUCKET)) == {"night/big.mp4"}


def test_other_bytes_at_the_key_are_kept_aside_first(tmp_path: Path, s3: S3) -> None:
    s3.client.put_object(Bucket=BUCKET, Key="n/r1.mp4", Body=b"someone else's video")
    local, sha = _file(tmp_path / "r1.mp4", 5000)
    placed = VideoStore(f"s3://{BUCKET}/n/").place(local, "r1.mp4", 5000, sha)
    assert placed.uploaded and placed.kept == f"s3://{BUCKET}/n/r1.v1.mp4"
    assert s3.get(BUCKET, "n/r1.v1.mp4")[0] == b"someone else's video"
    data, meta = s3.get(BUCKET, "n/r1.mp4")
    assert hashlib.sha256(data).hexdigest() == sha == meta["sha256"]


def test_a_local_file_that_changed_is_not_uploaded(tmp_path: Path, s3: S3) -> None:
    local, sha = _file(tmp_path / "r1.mp4", 4000)
    local.write_bytes(b"\0" * 4000)  # same size, other bytes
    with pytest.raises(StoreError) as info:
        VideoStore(f"s3://{BUCKET}/n/").place(local, "r1.mp4", 4000, sha)
    assert info.value.code == "local_changed"
    assert s3.versions(BUCKET) == {}


def test_gone_locally_and_not_in_the_store(tmp_path: Path, s3: S3) -> None:
    with pytest.raises(LocalCopyMissing):
        VideoStore(f"s3://{BUCKET}/n/").place(tmp_path / "none.mp4", "none.mp4", 10, "0" * 64)


def test_preflight_refusals_name_the_fix(s3: S3) -> None:
    with pytest.raises(StoreUnusable, match="bucket does not exist"):
        VideoStore("s3://absent-bucket/x/").check()
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        del os.environ[var]
    os.environ.update({k: v for k, v in no_aws_env().items() if k.startswith("AWS_")})
    with pytest.raises(StoreUnusable, match="no credentials") as info:
        VideoStore(f"s3://{BUCKET}/x/").check()
    assert AWS_SECRET not in str(info.value)
    with pytest.raises(StoreUnusable, match="bucket name"):
        VideoStore("s3://Not_A_Bucket/x")


def test_any_fsspec_url_works_read_back_checked(tmp_path: Path) -> None:
    root = tmp_path / "nas" / "night"
    store = VideoStore(root.as_uri())
    store.check()
    local, sha = _file(tmp_path / "r1.mp4", 3000)
    placed = store.place(local, "r1.mp4", 3000, sha)
    assert placed.uploaded and placed.url == root.as_uri() + "/r1.mp4"
    assert (root / "r1.mp4").read_bytes() == local.read_bytes()
    assert not store.place(local, "r1.mp4", 3000, sha).uploaded  # read back: the same
    assert sorted(p.name for p in root.iterdir()) == ["r1.mp4"]  # no probe left
