"""Videos to object storage (``genbatch run --videos-to s3://bucket/prefix/``).

A night of 100,000 MP4s does not fit the laptop that ran it; teams keep media
in object storage.  Each video (and its thumbnail) is uploaded right after its
download, checked, and — unless ``--keep-local`` — its local copy removed; the
journal and the result table stay in ``--out``.  Any fsspec URL works; S3 and
S3-compatible stores (``s3://``, endpoint from ``AWS_ENDPOINT_URL``) through
s3fs, the optional extra ``genbatch[storage]``.  Credentials come from the
usual environment (``AWS_*`` variables, profiles); nothing here reads, logs or
prints them, and a URL carrying them (``s3://key:secret@bucket``) is refused.

How an object is known to be right — the checksum choice:

* every object carries our **sha256** as metadata (``x-amz-meta-sha256``, the
  same digest as the results' ``sha256`` column).  S3's ETag is not a content
  hash one can rely on: a multipart upload's is the MD5 of its parts' MD5s
  (it depends on the part size), and under SSE-KMS or SSE-C it is no MD5 at
  all.  Our own digest, stored with the object, is the same whatever the
  upload looked like, so a HEAD on resume tells "already there, these bytes"
  from "someone's other file" without reading the object back;
* after an upload, a HEAD checks the size, that metadata, and the ETag
  against the one computed from the local bytes for the part size we
  uploaded with (single PUT: their MD5; multipart: MD5 of the part MD5s,
  ``-N``) — proof S3 stored the bytes we hashed, not merely our claim.  Under
  SSE-KMS/SSE-C (the HEAD says so) the ETag check is left out and S3's own
  in-transit checksums (botocore sends one with every PUT and part) stand
  for it;
* other fsspec stores have no portable metadata or checksum, so the object
  is read back and hashed (one extra read per object).

An object already at a key with other bytes (a user's file, an earlier run's
video after ``--fresh`` or a changed row) is first copied aside as
``NAME.vN.EXT``, as :func:`genbatch.engine.naming.keep_earlier` does on disk:
genbatch never overwrites what it did not just write.

fsspec's calls are blocking (s3fs runs them on its own IO thread), so each
runs in a worker thread; the pipeline bounds how many at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

from genbatch.engine.naming import split_ext
from genbatch.errors import InputError, TransferError

#: The journal step that puts a row's video (and thumbnail) in the store.
STEP_STORE: Final = "store"
#: Multipart part size (S3's minimum is 5 MiB).  s3fs reads a file below two
#: parts, and each part in flight, into memory: this bounds it.
ENGINE_STORE_PART_BYTES: Final = 16 * 2**20
#: Parts of one object uploaded at once (memory: this times the part size).
ENGINE_STORE_PART_CONCURRENCY: Final = 2
#: Metadata key of the object's sha256 (``x-amz-meta-sha256`` on S3).
ENGINE_STORE_SHA256_META: Final = "sha256"
#: Local read size while hashing.
_READ: Final = 1 << 20
#: What to install for ``--videos-to``.
STORE_EXTRA_HINT: Final = "pip install 'genbatch[storage]'"
#: fsspec protocols served by s3fs.
_S3: Final = frozenset({"s3", "s3a"})
#: fsspec protocols of a local directory.
_LOCAL: Final = frozenset({"file", "local"})
_BUCKET: Final = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")
#: Server-side encryption under which S3's ETag is no MD5.
_OPAQUE_ETAG_SSE: Final = frozenset({"aws:kms", "aws:kms:dsse"})
#: botocore's "no credentials" family, known by name (botocore is optional).
_NO_CREDENTIALS: Final = frozenset(
    {"NoCredentialsError", "PartialCredentialsError", "CredentialRetrievalError"}
)

__all__ = [
    "ENGINE_STORE_PART_BYTES",
    "ENGINE_STORE_PART_CONCURRENCY",
    "ENGINE_STORE_SHA256_META",
    "STEP_STORE",
    "STORE_EXTRA_HINT",
    "LocalCopyMissing",
    "Placed",
    "StoreError",
    "StoreUnusable",
    "VideoStore",
    "expected_etag",
]


class StoreUnusable(InputError):
    """``--videos-to`` cannot work: extra missing, bad URL, no bucket, no credentials,
    no write access.  Found at preflight, before any paid call (exit 2)."""


class StoreError(TransferError):
    """One object did not reach the store intact (worth trying again)."""


class LocalCopyMissing(FileNotFoundError):
    """The local file to upload is gone and the store does not hold it either."""


@dataclass(frozen=True, slots=True)
class Placed:
    """An object in the store: its URL; ``uploaded`` False when it was already there;
    ``kept``: where other bytes found at its key were copied first."""

    url: str
    uploaded: bool
    kept: str | None = None


@dataclass(frozen=True, slots=True)
class _Head:
    size: int
    sha256: str | None
    etag: str | None
    #: False under SSE-KMS / SSE-C: the ETag is no MD5.
    etag_is_md5: bool


def _digests(path: Path, part: int) -> tuple[str, int, str, list[bytes]]:
    """sha256 hex, size, MD5 hex of the whole, and each ``part``-sized chunk's MD5."""
    sha, whole = hashlib.sha256(), hashlib.md5()  # noqa: S324 - S3's ETag is MD5
    parts: list[bytes] = []
    size = 0
    chunk = hashlib.md5()  # noqa: S324
    in_chunk = 0
    with path.open("rb") as fh:
        while data := fh.read(_READ):
            sha.update(data)
            whole.update(data)
            size += len(data)
            view = memoryview(data)
            while view:
                take = min(len(view), part - in_chunk)
                chunk.update(view[:take])
                in_chunk += take
                view = view[take:]
                if in_chunk == part:
                    parts.append(chunk.digest())
                    chunk, in_chunk = hashlib.md5(), 0  # noqa: S324
    if in_chunk:
        parts.append(chunk.digest())
    return sha.hexdigest(), size, whole.hexdigest(), parts


def expected_etag(etag: str, whole_md5: str, part_md5s: list[bytes]) -> str:
    """The ETag S3 gives the bytes hashed here, in the form ``etag`` has.

    ``"<md5>"`` for a single PUT; ``"<md5 of the part MD5s>-N"`` for N parts
    of :data:`ENGINE_STORE_PART_BYTES` (another part count: no match).
    """
    _, dash, count = etag.strip('"').partition("-")
    if not dash:
        return whole_md5
    if not count.isdigit() or int(count) != len(part_md5s):
        return ""
    joined = hashlib.md5(b"".join(part_md5s)).hexdigest()  # noqa: S324
    return f"{joined}-{len(part_md5s)}"


def _no_credentials(exc: BaseException) -> bool:
    return any(cls.__name__ in _NO_CREDENTIALS for cls in type(exc).__mro__)


class VideoStore:
    """Where ``--videos-to`` puts each video: one base URL, checked once, used by every row.

    Built from the flag (no I/O): a URL that cannot work, or the storage extra
    missing, raises :class:`StoreUnusable` here; :meth:`check` (preflight)
    then proves the store is there and writable with these credentials.
    """

    def __init__(self, url: str, *, keep_local: bool = False) -> None:
        self.keep_local = keep_local
        parts = urlsplit(url)
        protocol = parts.scheme.lower()
        if not protocol or "://" not in url:
            raise StoreUnusable(
                f"--videos-to {url!r} is not a URL: give one like s3://bucket/prefix/"
            )
        if "@" in parts.netloc:
            raise StoreUnusable(
                "--videos-to must not carry credentials: put them in the environment "
                "(AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, or AWS_PROFILE)"
            )
        if parts.query or parts.fragment:
            raise StoreUnusable(f"--videos-to {url!r}: a ? or # has no meaning here")
        if protocol in _S3 and not _BUCKET.match(parts.netloc):
            raise StoreUnusable(
                f"--videos-to {url!r}: {parts.netloc!r} is not an S3 bucket name "
                "(s3://bucket/prefix/)"
            )
        try:
            import fsspec  # type: ignore[import-untyped]  # the optional extra
        except ImportError:
            raise StoreUnusable(
                f"--videos-to needs the storage extra: {STORE_EXTRA_HINT}"
            ) from None
        try:
            fs_class = fsspec.get_filesystem_class(protocol)
        except ValueError:
            raise StoreUnusable(
                f"--videos-to {url!r}: unknown storage protocol {protocol!r}"
            ) from None
        except ImportError as exc:
            hint = STORE_EXTRA_HINT if protocol in _S3 else str(exc)
            raise StoreUnusable(f"--videos-to {protocol}:// needs a package: {hint}") from None
        self.protocol = protocol
        self.is_s3 = protocol in _S3
        #: The base URL, always ending in one ``/``.
        self.url = url.rstrip("/") + "/"
        self._class = fs_class
        self._root: str = fs_class._strip_protocol(self.url).rstrip("/")
        self._fs: Any = None

    def __repr__(self) -> str:
        return f"<VideoStore {self.url}{' keep-local' if self.keep_local else ''}>"

    # -- names -------------------------------------------------------------
    def object_url(self, name: str) -> str:
        """The URL of the object a (safe) file name becomes."""
        return self.url + name

    def _path(self, name: str) -> str:
        return f"{self._root}/{name}"

    @property
    def fs(self) -> Any:
        """The fsspec filesystem, made on first use (its own, not fsspec's shared one:
        the environment it read credentials from is this process's now)."""
        if self._fs is None:
            self._fs = self._class(skip_instance_cache=True)
        return self._fs

    # -- preflight ---------------------------------------------------------
    def check(self) -> None:
        """Prove the store is there and writable: write and remove a tiny probe object.

        Blocking; :class:`StoreUnusable` says what is wrong (bucket, credentials,
        access, endpoint).  A write, not a HEAD of the bucket: read-only
        credentials would otherwise pass here and fail every row after its
        render was paid for.
        """
        probe = self._path(f".genbatch-probe-{uuid.uuid4().hex}")
        try:
            self._mkdir()
            self.fs.pipe_file(probe, b"")
        except Exception as exc:
            raise self._unusable(exc) from None
        with contextlib.suppress(Exception):  # put-only credentials are enough for us
            self._remove_probe(probe)

    def _remove_probe(self, probe: str) -> None:
        """Remove the probe; in a versioned bucket its version too, not just hide it
        behind a delete marker (falls back to the marker without that permission)."""
        if self.is_s3:
            bucket, key, _ = self.fs.split_path(probe)
            version = self.fs.call_s3("head_object", Bucket=bucket, Key=key).get("VersionId")
            if version and version != "null":
                with contextlib.suppress(PermissionError):
                    self.fs.call_s3("delete_object", Bucket=bucket, Key=key, VersionId=version)
                    return
        self.fs.rm_file(probe)

    async def acheck(self) -> None:
        """:meth:`check` off the event loop."""
        await asyncio.to_thread(self.check)

    def _unusable(self, exc: BaseException) -> StoreUnusable:
        where = self.url
        if _no_credentials(exc):
            return StoreUnusable(
                f"no credentials for {where}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
                "(or AWS_PROFILE); for an S3-compatible store also AWS_ENDPOINT_URL"
            )
        if isinstance(exc, FileNotFoundError):
            what = "bucket" if self.is_s3 else "location"
            return StoreUnusable(f"{where}: the {what} does not exist ({exc})")
        if isinstance(exc, PermissionError):
            return StoreUnusable(
                f"{where}: access denied writing there ({exc}); check the credentials "
                "and the bucket's policy"
            )
        return StoreUnusable(f"{where}: cannot write there: {type(exc).__name__}: {exc}")

    # -- objects -----------------------------------------------------------
    def _head(self, path: str) -> _Head | None:
        """What the store says about ``path`` (None: absent)."""
        try:
            if self.is_s3:
                bucket, key, _ = self.fs.split_path(path)
                got = self.fs.call_s3("head_object", Bucket=bucket, Key=key)
                meta = {k.lower(): v for k, v in (got.get("Metadata") or {}).items()}
                opaque = (
                    got.get("ServerSideEncryption") in _OPAQUE_ETAG_SSE
                    or got.get("SSECustomerAlgorithm") is not None
                )
                return _Head(
                    int(got["ContentLength"]),
                    meta.get(ENGINE_STORE_SHA256_META),
                    str(got.get("ETag") or "") or None,
                    not opaque,
                )
            info = self.fs.info(path)
        except FileNotFoundError:
            return None
        if info.get("type") == "directory":
            return None
        return _Head(int(info.get("size") or 0), None, None, False)

    def _read_sha256(self, path: str) -> str:
        sha = hashlib.sha256()
        with self.fs.open(path, "rb") as fh:
            while data := fh.read(_READ):
                sha.update(data)
        return sha.hexdigest()

    def _holds(self, path: str, head: _Head | None, size: int, sha256: str) -> bool:
        """Whether the object at ``path`` is the file with this size and sha256."""
        if head is None or head.size != size:
            return False
        if self.is_s3:
            return head.sha256 == sha256
        return self._read_sha256(path) == sha256

    def _keep_aside(self, path: str, name: str) -> str:
        """Copy the object at ``path`` to the first free ``NAME.vN.EXT``; its URL."""
        stem, ext = split_ext(name)
        n = 1
        while self._head(self._path(kept := f"{stem}.v{n}{ext}")) is not None:
            n += 1
        self.fs.copy(path, self._path(kept))
        return self.object_url(kept)

    def place(self, local: Path | None, name: str, size: int, sha256: str) -> Placed:
        """Make the object ``name`` hold the file ``local`` (``size`` bytes, ``sha256``).

        Already there with that sha256: nothing is sent (a rerun never uploads
        twice).  Otherwise upload, then check (module docstring); an object
        with other bytes at that key is kept aside first.  Blocking; raises
        :class:`StoreError` (transient, checksum), :class:`LocalCopyMissing`
        (the local file is gone and the object is not there) or
        :class:`StoreUnusable` (credentials or access went away).
        """
        path, url = self._path(name), self.object_url(name)
        try:
            head = self._head(path)
            if self._holds(path, head, size, sha256):
                return Placed(url, uploaded=False)
            if local is None or not local.is_file():
                raise LocalCopyMissing(f"{local} is gone and {url} does not hold it")
            local_sha, local_size, whole_md5, part_md5s = _digests(local, ENGINE_STORE_PART_BYTES)
            if (local_sha, local_size) != (sha256, size):
                raise StoreError(
                    f"{local.name} changed since it was downloaded (size or sha256 differ)",
                    url=url,
                    code="local_changed",
                )
            kept = self._keep_aside(path, name) if head is not None else None
            self._put(local, path, sha256)
            after = self._head(path)
        except (LocalCopyMissing, StoreError):
            raise
        except Exception as exc:
            if isinstance(exc, FileNotFoundError) and (local is None or not local.is_file()):
                raise LocalCopyMissing(f"{local} is gone and {url} does not hold it") from None
            if _no_credentials(exc) or isinstance(exc, PermissionError | FileNotFoundError):
                # Credentials revoked, access or the bucket gone: no retry mends that.
                raise self._unusable(exc) from None
            raise StoreError(
                f"upload to {url}: {type(exc).__name__}: {exc}", url=url, code="store_error"
            ) from None
        self._verify(after, path, url, size, sha256, whole_md5, part_md5s)
        return Placed(url, uploaded=True, kept=kept)

    def _put(self, local: Path, path: str, sha256: str) -> None:
        if self.is_s3:
            self.fs.put_file(
                str(local),
                path,
                chunksize=ENGINE_STORE_PART_BYTES,
                max_concurrency=ENGINE_STORE_PART_CONCURRENCY,
                Metadata={ENGINE_STORE_SHA256_META: sha256},
            )
        else:
            self._mkdir()
            self.fs.put_file(str(local), path)

    def _mkdir(self) -> None:
        """A local directory is made; an object store's bucket never is (a typo
        would otherwise create one, and make it the user's to pay for)."""
        if self.protocol in _LOCAL:
            self.fs.makedirs(self._root, exist_ok=True)

    def _verify(
        self,
        head: _Head | None,
        path: str,
        url: str,
        size: int,
        sha256: str,
        whole_md5: str,
        part_md5s: list[bytes],
    ) -> None:
        """The uploaded object is the local file, or :class:`StoreError`."""
        problem = None
        if head is None:
            problem = "not there after the upload"
        elif head.size != size:
            problem = f"{head.size} bytes stored, {size} sent"
        elif self.is_s3:
            if head.sha256 != sha256:
                problem = "its sha256 metadata is not the file's"
            elif head.etag_is_md5 and head.etag is not None:
                want = expected_etag(head.etag, whole_md5, part_md5s)
                if head.etag.strip('"') != want:
                    problem = f"ETag {head.etag} is not the MD5 of the bytes sent"
        elif self._read_sha256(path) != sha256:
            problem = "the bytes read back differ from the file's"
        if problem is not None:
            raise StoreError(f"upload to {url}: {problem}", url=url, code="store_checksum")

    async def aplace(self, local: Path | None, name: str, size: int, sha256: str) -> Placed:
        """:meth:`place` off the event loop."""
        return await asyncio.to_thread(self.place, local, name, size, sha256)
