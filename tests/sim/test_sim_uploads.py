"""Content resources: multipart (≤ 50 MB), the ActiveStorage direct upload with a
presigned storage PUT, resource CRUD, asset library and folders."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import aiohttp
from simhelp import AGENT, call, cell_url, clone, ledger, poll

from genbatch.sim.routes_assets import SIM_MULTIPART_MAX_BYTES

RES = f"/v1/content_resources?agent_id={AGENT}"


def md5_b64(data: bytes) -> str:
    """What ``openssl md5 -binary FILE | base64`` prints."""
    return base64.b64encode(hashlib.md5(data).digest()).decode()


async def direct(http: aiohttp.ClientSession, data: bytes, **over: Any) -> dict[str, Any]:
    blob = {
        "filename": "clip.mp4",
        "byte_size": len(data),
        "checksum": md5_b64(data),
        "content_type": "video/mp4",
    }
    body: dict[str, Any] = await call(
        http, "POST", "/v1/direct_upload", 200, json={"blob": {**blob, **over}}
    )
    return body


async def test_direct_upload_three_steps(http: aiohttp.ClientSession) -> None:
    data = bytes(range(256)) * 4000
    blob = await direct(http, data)
    for key in ("id", "key", "filename", "byte_size", "checksum", "content_type", "signed_id"):
        assert key in blob
    up = blob["direct_upload"]
    assert up["headers"] == {"Content-Type": "video/mp4", "Content-MD5": md5_b64(data)}
    assert "X-Amz-Signature=" in up["url"] and "X-Amz-Expires=" in up["url"]
    early = await call(
        http, "POST", RES, 422, json={"content_resource": {"file": blob["signed_id"]}}
    )
    assert "uploaded" in early["error"]
    async with (
        aiohttp.ClientSession() as storage,
        storage.put(up["url"], data=data, headers=up["headers"]) as r,
    ):
        assert r.status == 200
    res = await call(http, "POST", RES, 201, json={"content_resource": {"file": blob["signed_id"]}})
    assert {"id", "url", "content_type", "byte_size", "filename", "object_type"} <= set(res)
    assert (res["byte_size"], res["content_type"], res["object_type"]) == (
        len(data),
        "video/mp4",
        "video",
    )
    async with (
        aiohttp.ClientSession() as anon,
        anon.get(res["url"], headers={"Range": "bytes=10-"}) as r,
    ):
        assert r.status == 206 and await r.read() == data[10:]
    uploads = (await ledger(http))["uploads"]
    assert uploads[0]["uploaded"] is True and uploads[0]["content_resource_id"] == res["id"]


async def test_storage_refuses_bad_requests(http: aiohttp.ClientSession) -> None:
    data = b"hello world" * 100
    blob = await direct(http, data)
    up = blob["direct_upload"]
    async with aiohttp.ClientSession() as storage:
        tampered = up["url"].replace("X-Amz-Expires=3600", "X-Amz-Expires=99999")
        async with storage.put(tampered, data=data, headers=up["headers"]) as r:
            assert r.status == 403 and "<Code>AccessDenied</Code>" in await r.text()
        wrong = {**up["headers"], "Content-MD5": md5_b64(b"other")}
        async with storage.put(up["url"], data=data, headers=wrong) as r:
            assert r.status == 403  # the signature binds the headers
        async with storage.put(up["url"], data=data[:-1] + b"X", headers=up["headers"]) as r:
            assert r.status == 400 and "<Code>BadDigest</Code>" in await r.text()
    assert (await ledger(http))["uploads"][0]["uploaded"] is False


async def test_direct_upload_validation(http: aiohttp.ClientSession) -> None:
    ok = {
        "filename": "a.mp4",
        "byte_size": 10,
        "checksum": md5_b64(b"0123456789"),
        "content_type": "video/mp4",
    }
    for bad in (
        {"byte_size": 2 * 1024**3},
        {"byte_size": 0},
        {"checksum": "BASE64MD5=="},
        {"content_type": "mp4"},
        {"filename": ""},
    ):
        err = await call(http, "POST", "/v1/direct_upload", 422, json={"blob": {**ok, **bad}})
        assert err["error_code"] == "validation_error"
    bogus = await call(
        http, "POST", RES, 422, json={"content_resource": {"file": "eyJfcmFpbHMi--0"}}
    )
    assert bogus["error_code"] == "validation_error"


async def test_multipart_limit_and_resource_crud(http: aiohttp.ClientSession) -> None:
    form = aiohttp.FormData()
    form.add_field(
        "content_resource[file]", b"\xff\xd8jpeg", filename="pic.jpg", content_type="image/jpeg"
    )
    pic = await call(http, "POST", RES, 201, data=form)
    assert pic["object_type"] == "image" and pic["filename"] == "pic.jpg"
    big = aiohttp.FormData()
    big.add_field(
        "content_resource[file]", b"\0" * (SIM_MULTIPART_MAX_BYTES + 1), filename="big.mp4"
    )
    err = await call(http, "POST", RES, 422, data=big)
    assert "50 MB" in err["error"]
    listed = await call(http, "GET", f"{RES}&type=image", 200)
    assert [r["id"] for r in listed] == [pic["id"]]
    one = f"/v1/content_resources/{pic['id']}?agent_id={AGENT}"
    folder = await call(
        http,
        "POST",
        f"/v1/asset_folders?agent_id={AGENT}",
        201,
        json={"asset_folder": {"name": "Tacos"}},
    )
    renamed = await call(
        http,
        "PATCH",
        one,
        200,
        json={"content_resource": {"name": "hero", "asset_folder_id": folder["id"]}},
    )
    assert renamed["name"] == "hero" and renamed["asset_folder_id"] == folder["id"]
    lib = await call(
        http, "GET", f"/v1/asset_libraries?agent_id={AGENT}&folder_id={folder['id']}", 200
    )
    assert [r["id"] for r in lib] == [pic["id"]]
    stock = await call(
        http, "GET", f"/v1/asset_libraries?agent_id={AGENT}&asset_type=audio&search=music", 200
    )
    assert [r["id"] for r in stock] == [7000]
    await call(
        http,
        "PATCH",
        f"/v1/asset_folders/{folder['id']}?agent_id={AGENT}",
        200,
        json={"asset_folder": {"name": "T"}},
    )
    await call(http, "DELETE", f"/v1/asset_folders/{folder['id']}?agent_id={AGENT}", 200)
    assert (await call(http, "GET", one, 200))["asset_folder_id"] is None
    await call(http, "DELETE", one, 200)
    await call(http, "GET", one, 404)


async def test_media_card_attaches_upload_and_fails_if_it_vanishes(
    http: aiohttp.ClientSession,
) -> None:
    eng = await clone(http, "tiktok-montage")
    form = aiohttp.FormData()
    form.add_field(
        "content_resource[file]", b"ID3tune", filename="tune.m4a", content_type="audio/mp4"
    )
    tune = await call(http, "POST", RES, 201, data=form)
    card = {"generation_type": "media", "data": {"content_resource_id": tune["id"]}}
    ok = await call(http, "POST", cell_url(eng, "music", "generate"), 201, json=card)
    done = await poll(http, f"/v1/generations/{ok['generation_id']}")
    assert done["status"] == "completed" and done["output_resources"][0]["object_type"] == "audio"
    async with aiohttp.ClientSession() as anon, anon.get(done["output_resources"][0]["url"]) as r:
        assert await r.read() == b"ID3tune"  # pass-through: the same bytes
    doomed = await call(http, "POST", cell_url(eng, "music", "generate"), 201, json=card)
    await call(http, "DELETE", f"/v1/content_resources/{tune['id']}?agent_id={AGENT}", 200)
    gone = await poll(http, f"/v1/generations/{doomed['generation_id']}")
    assert gone["status"] == "failed" and gone["failed_reason"]  # today's field name
