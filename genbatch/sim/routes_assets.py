"""Step 4 assets and Step 5 download: content resources (multipart or signed_id),
direct upload (ActiveStorage-style), asset library/folders, the presigned
storage PUT, and the public CDN (no auth, Range, the ``truncate`` fault)."""

from __future__ import annotations

import base64
import binascii
import secrets
from pathlib import Path
from typing import Final

import aiofiles
from aiohttp import BodyPartReader, web

from genbatch.sim import media
from genbatch.sim.clock import iso
from genbatch.sim.entities import (
    Agent,
    Blob,
    CdnObject,
    Folder,
    Json,
    Resource,
    forbidden,
    invalid,
    not_found,
    reject_unknown,
)
from genbatch.sim.routes_common import (
    PRESIGNER,
    SIM_PAGE_SIZE,
    STORE,
    agent_q,
    agent_w,
    jbody,
    jresp,
    now,
    page_of,
    resource_view,
    user_of,
    world_of,
    wrapped,
)
from genbatch.sim.storage import SIM_STORAGE_CHUNK, s3_error, serve_bytes
from genbatch.sim.world import World

#: Upload ceilings from the reference (Step 4): multipart vs direct upload.
SIM_MULTIPART_MAX_BYTES: Final = 50 * 1024 * 1024
SIM_DIRECT_UPLOAD_MAX_BYTES: Final = 1024 * 1024 * 1024
#: Lifetime of a presigned storage URL (seconds, wall clock, not scaled).
SIM_UPLOAD_URL_TTL: Final = 3600.0

routes = web.RouteTableDef()
# ASSUMPTION: multipart over 50 MB is 422 (docs/sim-assumptions.md, "multipart").
MULTIPART_FIELD = "content_resource[file]"


def _agent_resources(w: World, agent: Agent) -> list[Resource]:
    return [r for r in w.assets.resources.values() if r.workspace_id == agent.workspace_id]


def _resource(request: web.Request) -> tuple[World, Agent, Resource]:
    w, agent = world_of(request), agent_q(request)
    res = w.assets.resource(user_of(request), request.match_info["id"])
    if res.workspace_id is None:
        raise forbidden("stock resource (read-only)")
    return w, agent, res


@routes.get("/v1/content_resources")
async def list_resources(request: web.Request) -> web.Response:
    w, agent = world_of(request), agent_q(request)
    kind = request.query.get("type")
    items = [r for r in _agent_resources(w, agent) if not kind or r.object_type == kind]
    return jresp([resource_view(w, r) for r in page_of(request, items, SIM_PAGE_SIZE)])


@routes.get(r"/v1/content_resources/{id:\d+}")
async def read_resource(request: web.Request) -> web.Response:
    w = world_of(request)
    agent_q(request)
    return jresp(resource_view(w, w.assets.resource(user_of(request), request.match_info["id"])))


@routes.patch(r"/v1/content_resources/{id:\d+}")
async def update_resource(request: web.Request) -> web.Response:
    w, agent, res = _resource(request)
    body = wrapped(await jbody(request, required=True), "content_resource")
    reject_unknown(body, {"name", "asset_folder_id"})
    if "name" in body:
        if not isinstance(body["name"], str) or not body["name"].strip():
            raise invalid("name must be a non-empty string")
        res.name = body["name"]
    if "asset_folder_id" in body:
        fid = body["asset_folder_id"]
        if fid is not None and (
            fid not in w.assets.folders or w.assets.folders[fid].agent_id != agent.id
        ):
            raise invalid(f"asset folder {fid} not found")
        res.folder_id = fid
    return jresp(resource_view(w, res))


@routes.delete(r"/v1/content_resources/{id:\d+}")
async def delete_resource(request: web.Request) -> web.Response:
    w, _, res = _resource(request)
    del w.assets.resources[res.id]
    return jresp({"id": res.id, "deleted": True})


@routes.post("/v1/content_resources")
async def create_resource(request: web.Request) -> web.Response:
    w, agent, t = world_of(request), await agent_w(request), now()
    ws = w.accounts.workspaces[agent.workspace_id]
    if request.content_type.startswith("multipart/"):
        res = await _multipart(request, w, agent, t)
        w.assets.multipart_uploads.append(res.id)
        return jresp(resource_view(w, res), 201)
    body = wrapped(await jbody(request, required=True), "content_resource")
    signed = body.get("file")
    if not isinstance(signed, str) or not signed:
        raise invalid("content_resource.file must be a signed_id (or send multipart)")
    blob = w.assets.blob_for_signed_id(signed)
    if blob is None or blob.workspace_id != ws.id:
        raise invalid("content_resource.file is not a valid signed_id")
    if not blob.uploaded:
        raise invalid("the blob has not been uploaded yet: PUT it to direct_upload.url first")
    if blob.resource_id is None:
        res = w.assets.add_upload(
            ws=ws,
            agent=agent,
            filename=blob.filename,
            content_type=blob.content_type,
            byte_size=blob.byte_size,
            path=request.app[STORE].path(blob.key),
            source="direct_upload",
            now=t,
        )
        blob.resource_id = res.id
    return jresp(resource_view(w, w.assets.resources[blob.resource_id]), 201)


async def _multipart(request: web.Request, w: World, agent: Agent, t: float) -> Resource:
    """Stream ``content_resource[file]`` to disk; 422 past 50 MB (use direct upload)."""
    reader = await request.multipart()
    updir = w.data_dir / "multipart"
    updir.mkdir(parents=True, exist_ok=True)
    while True:
        part = await reader.next()
        if part is None:
            break
        if not isinstance(part, BodyPartReader) or part.name != MULTIPART_FIELD:
            continue
        path = updir / secrets.token_hex(12)
        size = 0
        async with aiofiles.open(path, "wb") as out:
            while chunk := await part.read_chunk(SIM_STORAGE_CHUNK):
                size += len(chunk)
                if size > SIM_MULTIPART_MAX_BYTES:
                    break
                await out.write(chunk)
        if size > SIM_MULTIPART_MAX_BYTES:
            path.unlink(missing_ok=True)
            raise invalid(
                "multipart uploads are limited to 50 MB; use direct upload for larger files"
            )
        ctype = part.headers.get("Content-Type", "application/octet-stream")
        return w.assets.add_upload(
            ws=w.accounts.workspaces[agent.workspace_id],
            agent=agent,
            filename=Path(part.filename or "upload.bin").name,
            content_type=ctype,
            byte_size=size,
            path=path,
            source="upload",
            now=t,
        )
    raise invalid(f"multipart body needs a {MULTIPART_FIELD} file part")


# ------------------------------------------------------------------ direct upload
# ASSUMPTION: the blob answer and URL lifetime (docs/sim-assumptions.md, "direct-upload").
@routes.post("/v1/direct_upload")
async def direct_upload(request: web.Request) -> web.Response:
    w, user, t = world_of(request), user_of(request), now()
    body = await jbody(request, required=True)
    blob_in = body.get("blob")
    if not isinstance(blob_in, dict):
        raise invalid('body must be {"blob": {filename, byte_size, checksum, content_type}}')
    filename, size = blob_in.get("filename"), blob_in.get("byte_size")
    checksum, ctype = blob_in.get("checksum"), blob_in.get("content_type")
    if not isinstance(filename, str) or not filename.strip():
        raise invalid("blob.filename is required")
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise invalid("blob.byte_size must be a positive integer")
    if size > SIM_DIRECT_UPLOAD_MAX_BYTES:
        raise invalid("blob.byte_size exceeds the 1 GB maximum")
    try:
        ok = isinstance(checksum, str) and len(base64.b64decode(checksum, validate=True)) == 16
    except (binascii.Error, ValueError):
        ok = False
    if not ok:
        raise invalid(
            "blob.checksum must be the base64 MD5 of the file (openssl md5 -binary | base64)"
        )
    if not isinstance(ctype, str) or "/" not in ctype:
        raise invalid("blob.content_type must be a MIME type")
    assert isinstance(checksum, str)
    if not user.workspace_ids:
        raise invalid("user has no workspace")
    blob_id = w.shared.next_id("blob")
    key = w.shared.token_hex(28)
    expired = w.faults.roll("upload_expired")
    sign_at = t - SIM_UPLOAD_URL_TTL - 1.0 if expired else t
    url = request.app[PRESIGNER].sign(
        w.base_url,
        key,
        content_type=ctype,
        content_md5=checksum,
        byte_size=size,
        expires_in=SIM_UPLOAD_URL_TTL,
        now=sign_at,
    )
    blob = Blob(
        blob_id,
        key,
        filename,
        size,
        checksum,
        ctype,
        w.assets.signed_id(blob_id),
        user.workspace_ids[0],
        t,
        expired,
    )
    w.assets.add_blob(blob)
    return jresp(
        {
            "id": blob.id,
            "key": blob.key,
            "filename": blob.filename,
            "byte_size": blob.byte_size,
            "checksum": blob.checksum,
            "content_type": blob.content_type,
            "service_name": "amazon",
            "metadata": {},
            "created_at": iso(t),
            "signed_id": blob.signed_id,
            "direct_upload": {
                "url": url,
                "headers": {"Content-Type": ctype, "Content-MD5": checksum},
            },
        }
    )


@routes.put("/_storage/uploads/{key}")
async def storage_put(request: web.Request) -> web.Response:
    w = world_of(request)
    error = request.app[PRESIGNER].verify(
        request.path,
        request.query,
        content_type=request.headers.get("Content-Type"),
        content_md5=request.headers.get("Content-MD5"),
        now=now(),
    )
    if error is not None:
        return s3_error(403, "AccessDenied", error)
    blob = w.assets.blobs_by_key.get(request.match_info["key"])
    if blob is None:
        return s3_error(404, "NoSuchUpload", "The specified upload does not exist.")
    if w.faults.roll("bad_digest"):
        async for _ in request.content.iter_chunked(SIM_STORAGE_CHUNK):
            pass
        return s3_error(
            400, "BadDigest", "The Content-MD5 you specified did not match what we received."
        )
    resp = await request.app[STORE].receive_put(
        request, blob.key, expected_md5_b64=blob.checksum, expected_size=blob.byte_size
    )
    if resp.status == 200:
        blob.uploaded = True
    return resp


# ------------------------------------------------------------------ asset library
@routes.get("/v1/asset_libraries")
async def asset_library(request: web.Request) -> web.Response:
    w, agent = world_of(request), agent_q(request)
    q = request.query
    folder = q.get("folder_id")
    kind = q.get("asset_type")
    search = (q.get("search") or "").lower()
    items = [r for r in w.assets.resources.values() if r.workspace_id in (None, agent.workspace_id)]
    items = [
        r
        for r in items
        if (not folder or str(r.folder_id) == folder)
        and (not kind or r.object_type == kind)
        and (not search or search in (r.name or r.filename).lower())
    ]
    return jresp([resource_view(w, r) for r in page_of(request, items, SIM_PAGE_SIZE)])


def _folder_view(f: Folder) -> Json:
    return {
        "id": f.id,
        "name": f.name,
        "parent_id": f.parent_id,
        "agent_id": f.agent_id,
        "created_at": iso(f.created_at),
    }


def _folder_fields(w: World, agent: Agent, body: Json) -> Json:
    reject_unknown(body, {"name", "parent_id"})
    if "name" in body and (not isinstance(body["name"], str) or not body["name"].strip()):
        raise invalid("name must be a non-empty string")
    parent = body.get("parent_id")
    if parent is not None and (
        parent not in w.assets.folders or w.assets.folders[parent].agent_id != agent.id
    ):
        raise invalid(f"parent folder {parent} not found")
    return body


@routes.post("/v1/asset_folders")
async def create_folder(request: web.Request) -> web.Response:
    w, agent = world_of(request), agent_q(request)
    body = _folder_fields(w, agent, wrapped(await jbody(request, required=True), "asset_folder"))
    if "name" not in body:
        raise invalid("asset_folder.name is required")
    f = Folder(w.shared.next_id("folder"), agent.id, body["name"], body.get("parent_id"), now())
    w.assets.folders[f.id] = f
    return jresp(_folder_view(f), 201)


def _folder(request: web.Request) -> tuple[World, Agent, Folder]:
    w, agent = world_of(request), agent_q(request)
    f = w.assets.folders.get(int(request.match_info["id"]))
    if f is None or f.agent_id != agent.id:
        raise not_found("asset folder", request.match_info["id"])
    return w, agent, f


@routes.patch(r"/v1/asset_folders/{id:\d+}")
async def update_folder(request: web.Request) -> web.Response:
    w, agent, f = _folder(request)
    body = _folder_fields(w, agent, wrapped(await jbody(request, required=True), "asset_folder"))
    f.name = body.get("name", f.name)
    if "parent_id" in body:
        if body["parent_id"] == f.id:
            raise invalid("a folder cannot be its own parent")
        f.parent_id = body["parent_id"]
    return jresp(_folder_view(f))


@routes.delete(r"/v1/asset_folders/{id:\d+}")
async def delete_folder(request: web.Request) -> web.Response:
    w, _, f = _folder(request)
    del w.assets.folders[f.id]
    for r in w.assets.resources.values():
        if r.folder_id == f.id:
            r.folder_id = None
    return jresp({"id": f.id, "deleted": True})


# ------------------------------------------------------------------ CDN
def cdn_bytes(obj: CdnObject) -> bytes | Path:
    """The bytes a CDN object serves; renders and samples are built on demand (cheap)."""
    if obj.kind == "file" and obj.path is not None:
        return obj.path
    if obj.kind == "thumbnail":
        return media.thumbnail_jpeg(obj.aspect_ratio)
    if obj.kind == "render":
        return media.render_mp4(obj.manifest or {}, obj.aspect_ratio)
    kind = obj.media_kind if obj.media_kind in ("video", "image", "audio") else "video"
    data, _, _ = media.sample_media(kind, obj.aspect_ratio, obj.manifest or {})  # type: ignore[arg-type]
    return data


@routes.get("/cdn/{folder}/{name}")
async def cdn(request: web.Request) -> web.StreamResponse:
    w = world_of(request)
    obj = w.shared.cdn.get(f"{request.match_info['folder']}/{request.match_info['name']}")
    if obj is None:
        return s3_error(404, "NoSuchKey", "The specified key does not exist.")
    truncate = request.method == "GET" and w.faults.roll("truncate")
    return await serve_bytes(request, cdn_bytes(obj), obj.content_type, truncate=truncate)
