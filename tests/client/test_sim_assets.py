"""Content resources, asset library, and uploads (multipart and direct) against the sim,
including its storage faults: expired presigned URLs, BadDigest, truncated CDN bodies."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from clienthelp import AGENT, POLL, Sim

from genbatch.client import GenClient
from genbatch.client.models import CLIENT_DIRECT_UPLOAD_MAX_BYTES
from genbatch.errors import ChecksumMismatch, NotFoundError, RequestValidationError, TransferError


def _file(tmp_path: Path, name: str, size: int) -> Path:
    p = tmp_path / name
    p.write_bytes(os.urandom(size))
    return p


async def test_multipart_upload_and_resource_crud(gen: GenClient, sim: Sim, tmp_path: Path) -> None:
    path = _file(tmp_path, "clip.mp4", 300_000)
    res = await gen.uploads.upload(path, AGENT)
    assert res.filename == "clip.mp4" and res.byte_size == 300_000
    assert res.content_type == "video/mp4" and res.object_type == "video"
    ledger = await sim.ledger()
    assert [u["via"] for u in ledger["uploads"]] == ["multipart"]

    assert (await gen.content_resources.get(res.id, AGENT)).id == res.id
    listed = await gen.content_resources.list(AGENT, type="video")
    assert res.id in {r.id for r in listed}
    renamed = await gen.content_resources.update(res.id, AGENT, {"name": "hero clip"})
    assert renamed.model_extra and renamed.model_extra["name"] == "hero clip"
    await gen.content_resources.delete(res.id, AGENT)
    with pytest.raises(NotFoundError):
        await gen.content_resources.get(res.id, AGENT)


async def test_direct_upload_flow(gen: GenClient, sim: Sim, tmp_path: Path) -> None:
    path = _file(tmp_path, "hero.mp4", 3 * (1 << 20) + 1)
    res = await gen.uploads.upload(path, AGENT, method="direct")
    assert res.byte_size == path.stat().st_size
    ledger = await sim.ledger()
    (blob,) = [u for u in ledger["uploads"] if u["via"] == "direct_upload"]
    assert blob["uploaded"] and str(blob["content_resource_id"]) == res.id
    # and the stored bytes are exactly ours: fetch them back from the CDN
    assert res.url
    size, sha = await gen.download(res.url, tmp_path / "back.mp4")
    assert size == path.stat().st_size and sha == hashlib.sha256(path.read_bytes()).hexdigest()


async def test_upload_size_limits_fail_before_any_call(
    gen: GenClient, sim: Sim, tmp_path: Path
) -> None:
    huge = tmp_path / "huge.mp4"
    with huge.open("wb") as f:  # sparse: only its size matters here
        f.truncate(CLIENT_DIRECT_UPLOAD_MAX_BYTES + 1)
    before = await sim.api_requests()
    with pytest.raises(RequestValidationError, match="at most"):
        await gen.uploads.upload(huge, AGENT)
    with pytest.raises(RequestValidationError):
        await gen.uploads.upload(tmp_path / "missing.mp4", AGENT)
    empty = tmp_path / "empty.mp4"
    empty.touch()
    with pytest.raises(RequestValidationError):
        await gen.uploads.upload(empty, AGENT)
    assert await sim.api_requests() == before


async def test_expired_presigned_url_is_replaced_once(
    gen: GenClient, sim: Sim, tmp_path: Path
) -> None:
    path = _file(tmp_path, "a.mp4", 10_000)
    await sim.config(faults="upload_expired:1")
    with pytest.raises(TransferError) as info:
        await gen.uploads.upload(path, AGENT, method="direct")
    assert info.value.status == 403 and "expired" in str(info.value).lower()
    assert await sim.count("POST /v1/direct_upload") == 2  # one fresh URL, then give up
    assert "X-Amz-Signature=[REDACTED]" in info.value.url

    await sim.config(faults="")
    assert (await gen.uploads.upload(path, AGENT, method="direct")).byte_size == 10_000


async def test_bad_digest_surfaces_as_checksum_mismatch(
    gen: GenClient, sim: Sim, tmp_path: Path
) -> None:
    path = _file(tmp_path, "b.mp4", 10_000)
    await sim.config(faults="bad_digest:1")
    with pytest.raises(ChecksumMismatch) as info:
        await gen.uploads.upload(path, AGENT, method="direct")
    assert info.value.code == "BadDigest"
    assert await sim.count("POST /v1/content_resources") == 0  # never attached


async def test_truncated_cdn_download_resumes(gen: GenClient, sim: Sim, tmp_path: Path) -> None:
    eng = await gen.templates.clone("tiktok-text-driven", AGENT)
    final = eng.final_video_cell()
    assert final is not None
    # a render composites its layers: each needs content first
    cells = {c.column_name: c for c in eng.spreadsheet_cells}
    await gen.cells.mass_update(
        eng.id,
        AGENT,
        [
            {"id": cells["hook"].id, "value": "The $2 taco"},
            {"id": cells["script"].id, "value": "Three reasons it wins."},
        ],
    )
    image = await gen.generations.generate(eng.id, cells["background"].id, AGENT)
    await gen.generations.wait(image.generation_id, **POLL)
    render = await gen.generations.render(eng.id, final.id, AGENT)
    done = await gen.generations.wait(render.generation_id, **POLL)
    assert done.video_url
    clean = await gen.download(done.video_url, tmp_path / "clean.mp4")
    await sim.config(faults="truncate:0.5")
    for i in range(4):
        got = await gen.download(done.video_url, tmp_path / f"v{i}.mp4")
        assert got == clean
    assert gen.stats.retries_by_reason["short_body"] >= 1
    assert not list(tmp_path.glob("*.part"))  # noqa: ASYNC240 — test-side check


async def test_asset_library_and_folders(gen: GenClient, tmp_path: Path) -> None:
    folder = await gen.assets.create_folder(AGENT, {"name": "b-roll"})
    sub = await gen.assets.create_folder(AGENT, {"name": "tacos", "parent_id": int(folder.id)})
    assert sub.parent_id == folder.id
    assert (
        await gen.assets.update_folder(sub.id, AGENT, {"name": "al pastor"})
    ).name == "al pastor"
    await gen.uploads.upload(_file(tmp_path, "pastor.jpg", 5000), AGENT)
    found = await gen.assets.libraries(AGENT, asset_type="image", search="pastor")
    assert [a.name for a in found] == ["pastor.jpg"]
    await gen.assets.delete_folder(sub.id, AGENT)
    await gen.assets.delete_folder(folder.id, AGENT)
