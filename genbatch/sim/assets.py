"""Content resources and how they arrive: stock, multipart uploads, direct-upload blobs, folders.

Generation outputs are resources too (the generations store registers them
here), so one lookup answers every ``content_resource_id`` a card names.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import mimetypes
import re
from pathlib import Path

from genbatch.sim import templates
from genbatch.sim.entities import (
    Agent,
    Blob,
    CdnObject,
    Folder,
    Json,
    Resource,
    Shared,
    User,
    Workspace,
    as_int,
    not_found,
)
from genbatch.sim.media.sniff import kind_of, read_head

# ASSUMPTION: the reference examples' ids exist as stock (docs/sim-assumptions.md, "stock").
#: Public stock resources; their ids are those the reference's card examples use.
STOCK: tuple[tuple[int, str, str, str], ...] = (
    (4821, "stock_taco_truck.jpg", "image/jpeg", "image"),
    (4822, "stock_taco_closeup.jpg", "image/jpeg", "image"),
    (4823, "stock_street_night.jpg", "image/jpeg", "image"),
    (5921, "stock_voiceover.m4a", "audio/mp4", "audio"),
    (6001, "stock_presenter.mp4", "video/mp4", "video"),
    (templates.STOCK_MUSIC_RESOURCE_ID, "stock_music_upbeat.m4a", "audio/mp4", "audio"),
)
#: Stock clips ideas cite as selected assets (``assets/stock_clip_N.mp4``).
STOCK_CLIPS = 8
#: Stock stills ideas cite as image assets (``assets/stock_still_N.jpg``).
STOCK_STILLS = 8
STOCK_CLIP_PREFIX = "assets/stock_clip_"
STOCK_STILL_PREFIX = "assets/stock_still_"


class Assets:
    """Resources (stock, uploads, outputs), direct-upload blobs and asset folders."""

    def __init__(self, sh: Shared, *, now: float) -> None:
        self._sh = sh
        self.resources: dict[int, Resource] = {}
        self.blobs: dict[int, Blob] = {}
        self.blobs_by_key: dict[str, Blob] = {}
        self.blobs_by_signed_id: dict[str, Blob] = {}
        self.multipart_uploads: list[int] = []  # resource ids, for the ledger
        self.folders: dict[int, Folder] = {}
        for rid, fname, ctype, otype in STOCK:
            cdn_key = f"stock/{fname}"
            self.resources[rid] = Resource(
                rid, None, None, fname, ctype, otype, None, cdn_key, None, now, "stock"
            )
            sh.cdn[cdn_key] = CdnObject(
                "sample", ctype, media_kind=otype, manifest={"stock": fname}
            )
        for i in range(STOCK_CLIPS):
            name = f"{STOCK_CLIP_PREFIX}{i + 1}.mp4"
            sh.cdn[name] = CdnObject("sample", "video/mp4", manifest={"asset": name})
        for i in range(STOCK_STILLS):
            name = f"{STOCK_STILL_PREFIX}{i + 1}.jpg"
            sh.cdn[name] = CdnObject(
                "sample", "image/jpeg", media_kind="image", manifest={"asset": name}
            )

    def stock_asset_urls(self, prefix: str) -> list[str]:
        """CDN URLs of the stock clips (MP4) or stills (JPEG) ideas cite, by ``STOCK_*_PREFIX``."""
        if prefix == STOCK_CLIP_PREFIX:
            return [self._sh.url(f"{prefix}{i + 1}.mp4") for i in range(STOCK_CLIPS)]
        return [self._sh.url(f"{prefix}{i + 1}.jpg") for i in range(STOCK_STILLS)]

    def resource(self, user: User, resource_id: object) -> Resource:
        rid = as_int(resource_id)
        res = self.resources.get(rid) if rid is not None else None
        if res is None or (
            res.workspace_id is not None and res.workspace_id not in user.workspace_ids
        ):
            raise not_found("content resource", resource_id)  # not yours looks like missing
        return res

    def add_upload(
        self,
        *,
        ws: Workspace,
        agent: Agent,
        filename: str,
        content_type: str,
        byte_size: int,
        path: Path,
        source: str,
        now: float,
    ) -> Resource:
        """Register uploaded bytes at ``path`` as a resource served from /cdn/uploads/.

        Its type comes from the bytes (``content_type`` is only the client's hint):
        curl's ``-F file=@local.mp4`` declares application/octet-stream.
        """
        # ASSUMPTION: the bytes decide the type (docs/sim-assumptions.md, "upload-type").
        otype, content_type = kind_of(read_head(path), content_type, filename)
        rid = self._sh.next_id("resource")
        ext = re.sub(r"[^A-Za-z0-9]", "", Path(filename).suffix)[:8]
        if not ext:
            ext = (mimetypes.guess_extension(content_type) or ".bin").lstrip(".")
        cdn_key = f"uploads/{self._sh.token_hex(16)}.{ext.lower()}"
        self._sh.cdn[cdn_key] = CdnObject("file", content_type, media_kind=otype, path=path)
        res = Resource(
            rid,
            ws.id,
            agent.id,
            filename,
            content_type,
            otype,
            byte_size,
            cdn_key,
            None,
            now,
            source,
        )
        self.resources[rid] = res
        return res

    # ------------------------------------------------------------------ direct upload
    def signed_id(self, blob_id: int) -> str:
        """An ActiveStorage-style signed id: base64 JSON payload, ``--``, HMAC digest."""
        payload = base64.b64encode(
            ('{"_rails":{"data":' + str(blob_id) + ',"pur":"blob_id"}}').encode()
        ).decode()
        mac = hmac.new(self._sh.secret, payload.encode(), hashlib.sha1).hexdigest()
        return f"{payload}--{mac}"

    def blob_for_signed_id(self, signed_id: str) -> Blob | None:
        return self.blobs_by_signed_id.get(signed_id)

    def add_blob(self, blob: Blob) -> None:
        self.blobs[blob.id] = blob
        self.blobs_by_key[blob.key] = blob
        self.blobs_by_signed_id[blob.signed_id] = blob

    def ledger(self) -> list[Json]:
        """The ledger's ``uploads``: every direct-upload blob, then every multipart upload."""
        blobs = [
            {
                "id": b.id,
                "via": "direct_upload",
                "key": b.key,
                "filename": b.filename,
                "byte_size": b.byte_size,
                "checksum": b.checksum,
                "content_type": b.content_type,
                "uploaded": b.uploaded,
                "content_resource_id": b.resource_id,
                "created_at": b.created_at,
            }
            for b in self.blobs.values()
        ]
        multipart = [
            {
                "id": rid,
                "via": "multipart",
                "filename": self.resources[rid].filename,
                "byte_size": self.resources[rid].byte_size,
                "content_type": self.resources[rid].content_type,
                "uploaded": True,
                "content_resource_id": rid,
                "created_at": self.resources[rid].created_at,
            }
            for rid in self.multipart_uploads
            if rid in self.resources
        ]
        return blobs + multipart
