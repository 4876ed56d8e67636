"""Content resources, the asset library, and uploads (multipart or direct-to-storage).

``uploads.upload(path, agent_id)`` picks the path the reference prescribes:
multipart ``content_resources`` for small files, the ActiveStorage direct
upload (``direct_upload`` → PUT to presigned storage → ``content_resources``
with the ``signed_id``) above 50 MB, and a local error above 1 GB — before
any call is made.
"""

from __future__ import annotations

import asyncio
import mimetypes
import os
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any, Final, Literal

import aiohttp

from genbatch.client import routes as R
from genbatch.client._resource import Resource
from genbatch.client.base import mapping_body, validate_body
from genbatch.client.models import (
    CLIENT_DIRECT_UPLOAD_MAX_BYTES,
    CONTENT_RESOURCE_FILE_FIELD,
    AssetFolder,
    AssetItem,
    ContentResource,
    DirectUpload,
    DirectUploadBlob,
    DirectUploadTarget,
    content_resource_body,
    direct_upload_body,
)
from genbatch.client.redact import get_logger
from genbatch.client.transfer import md5_base64, put_file
from genbatch.errors import RequestValidationError, TransferError

#: The reference: multipart "small files", direct upload "> 50 MB, up to 1 GB".
#: Decimal 50 MB for multipart (the stricter reading); 1 GiB for the hard cap.
CLIENT_MULTIPART_MAX_BYTES: Final = 50_000_000

__all__ = ["Assets", "ContentResources", "Uploads"]

log = get_logger("genbatch.client.assets")


def _content_type(path: Path, given: str | None) -> str:
    return given or mimetypes.guess_type(path.name)[0] or "application/octet-stream"


class ContentResources(Resource):
    async def list(
        self, agent_id: str | int, *, type: str | None = None, page: int | None = None
    ) -> list[ContentResource]:
        return await self._client.request_list(
            ContentResource,
            R.CONTENT_RESOURCES_LIST,
            params={"agent_id": agent_id, "type": type, "page": page},
        )

    async def create_multipart(
        self,
        agent_id: str | int,
        path: str | os.PathLike[str],
        *,
        content_type: str | None = None,
        idempotency_key: str | None = None,
    ) -> ContentResource:
        """Upload a small file as multipart ``content_resource[file]`` (streamed from disk)."""
        p = Path(path)
        ctype = _content_type(p, content_type)

        def form() -> tuple[aiohttp.FormData, list[IO[bytes]]]:
            f = open(p, "rb")  # noqa: SIM115 — closed by the request loop
            fd = aiohttp.FormData()
            fd.add_field(CONTENT_RESOURCE_FILE_FIELD, f, filename=p.name, content_type=ctype)
            return fd, [f]

        return await self._client.request_model(
            ContentResource,
            R.CONTENT_RESOURCES_CREATE,
            params={"agent_id": agent_id},
            form=form,
            idempotency_key=idempotency_key,
        )

    async def create_from_signed_id(
        self, agent_id: str | int, signed_id: str, *, idempotency_key: str | None = None
    ) -> ContentResource:
        """Attach a direct-uploaded blob: ``{"content_resource": {"file": signed_id}}``."""
        return await self._client.request_model(
            ContentResource,
            R.CONTENT_RESOURCES_CREATE,
            params={"agent_id": agent_id},
            json=content_resource_body(signed_id),
            idempotency_key=idempotency_key,
        )

    async def get(self, resource_id: str | int, agent_id: str | int) -> ContentResource:
        return await self._client.request_model(
            ContentResource,
            R.CONTENT_RESOURCES_GET,
            path={"id": resource_id},
            params={"agent_id": agent_id},
        )

    async def update(
        self, resource_id: str | int, agent_id: str | int, body: Mapping[str, Any]
    ) -> ContentResource:
        return await self._client.request_model(
            ContentResource,
            R.CONTENT_RESOURCES_UPDATE,
            path={"id": resource_id},
            params={"agent_id": agent_id},
            json=mapping_body(body, "content_resources.update"),
        )

    async def delete(self, resource_id: str | int, agent_id: str | int) -> None:
        await self._client.request(
            R.CONTENT_RESOURCES_DELETE, path={"id": resource_id}, params={"agent_id": agent_id}
        )


class Assets(Resource):
    """The asset library and its folders."""

    async def libraries(
        self,
        agent_id: str | int,
        *,
        folder_id: str | int | None = None,
        asset_type: str | None = None,
        search: str | None = None,
    ) -> list[AssetItem]:
        return await self._client.request_list(
            AssetItem,
            R.ASSET_LIBRARIES,
            params={
                "agent_id": agent_id,
                "folder_id": folder_id,
                "asset_type": asset_type,
                "search": search,
            },
        )

    async def create_folder(self, agent_id: str | int, body: Mapping[str, Any]) -> AssetFolder:
        return await self._client.request_model(
            AssetFolder,
            R.ASSET_FOLDERS_CREATE,
            params={"agent_id": agent_id},
            json=mapping_body(body, "asset_folders.create"),
        )

    async def update_folder(
        self, folder_id: str | int, agent_id: str | int, body: Mapping[str, Any]
    ) -> AssetFolder:
        return await self._client.request_model(
            AssetFolder,
            R.ASSET_FOLDERS_UPDATE,
            path={"id": folder_id},
            params={"agent_id": agent_id},
            json=mapping_body(body, "asset_folders.update"),
        )

    async def delete_folder(self, folder_id: str | int, agent_id: str | int) -> None:
        await self._client.request(
            R.ASSET_FOLDERS_DELETE, path={"id": folder_id}, params={"agent_id": agent_id}
        )


class Uploads(Resource):
    """Direct upload (ActiveStorage) and the high-level ``upload``."""

    async def direct_upload(self, blob: DirectUploadBlob | Mapping[str, Any]) -> DirectUpload:
        """Ask for a presigned storage URL for ``blob`` (filename, byte_size, checksum, type)."""
        body = direct_upload_body(validate_body(DirectUploadBlob, blob))
        return await self._client.request_model(DirectUpload, R.DIRECT_UPLOAD, json=body)

    async def put(self, target: DirectUploadTarget, path: str | os.PathLike[str]) -> int:
        """PUT the file to ``target.url`` with exactly ``target.headers``; bytes sent."""
        client = self._client
        return await put_file(
            client.storage_session,
            target.url,
            target.headers,
            path,
            policy=client.policy,
            client_timeout=client.transfer_timeout,
            stats=client.stats,
        )

    async def upload(
        self,
        path: str | os.PathLike[str],
        agent_id: str | int,
        *,
        content_type: str | None = None,
        method: Literal["auto", "multipart", "direct"] = "auto",
        idempotency_key: str | None = None,
    ) -> ContentResource:
        """Upload a local file as a content resource, choosing the transfer by size.

        A presigned URL that expired before the PUT (403 ``Request has
        expired``) is replaced once with a fresh direct upload.
        """
        p = Path(path)
        try:
            size = (await asyncio.to_thread(p.stat)).st_size
        except OSError as exc:
            raise RequestValidationError(f"cannot read {p.name}: {exc.strerror}") from None
        if size <= 0:
            raise RequestValidationError(f"{p.name} is empty")
        if size > CLIENT_DIRECT_UPLOAD_MAX_BYTES:
            raise RequestValidationError(
                f"{p.name} is {size} bytes; the API accepts at most "
                f"{CLIENT_DIRECT_UPLOAD_MAX_BYTES} (1 GB)"
            )
        ctype = _content_type(p, content_type)
        if method == "multipart" or (method == "auto" and size <= CLIENT_MULTIPART_MAX_BYTES):
            if size > CLIENT_MULTIPART_MAX_BYTES:
                raise RequestValidationError(f"{p.name} is too big for multipart ({size} bytes)")
            return await ContentResources(self._client).create_multipart(
                agent_id, p, content_type=ctype, idempotency_key=idempotency_key
            )
        checksum = await md5_base64(p)
        blob = DirectUploadBlob(
            filename=p.name, byte_size=size, checksum=checksum, content_type=ctype
        )
        for fresh_url in (False, True):
            du = await self.direct_upload(blob)
            try:
                await self.put(du.direct_upload, p)
                break
            except TransferError as exc:
                expired = exc.status == 403 and "expired" in str(exc).lower()
                if fresh_url or not expired:
                    raise
                log.info("presigned URL expired before the PUT; asking for a new one")
        return await ContentResources(self._client).create_from_signed_id(
            agent_id, du.signed_id, idempotency_key=idempotency_key
        )
