"""Real, tiny, per-render-unique media for the simulator, built without encoding.

Every output is a committed base file (see ``scripts/make_sim_media.py``) plus the
render's manifest (engine id, row, cell values, layers…) embedded where decoders
ignore it: a top-level MP4 ``uuid`` box for video/audio, COM segments for JPEG.
So the bytes are playable (ffprobe/PyAV read them), differ per manifest, and a
test can tell whose video it holds with :func:`read_manifest`.  Building one is a
byte concatenation: cheap enough for thousands of renders a second.
"""

from __future__ import annotations

from typing import Any, Literal

from genbatch.sim.media import assets
from genbatch.sim.media.jpeg import embed_manifest, read_jpeg_manifest
from genbatch.sim.media.mp4 import MANIFEST_UUID, iter_boxes, read_mp4_manifest, with_manifest

__all__ = [
    "MANIFEST_UUID",
    "MediaKind",
    "aspect_tag",
    "iter_boxes",
    "read_manifest",
    "render_mp4",
    "sample_media",
    "thumbnail_jpeg",
]

MediaKind = Literal["video", "image", "audio"]
aspect_tag = assets.aspect_tag


def render_mp4(manifest: dict[str, Any], aspect_ratio: str) -> bytes:
    """A playable h264 MP4 of ``aspect_ratio`` (nearest of 9:16, 16:9, 1:1) carrying
    ``manifest``; different manifests give different bytes."""
    return with_manifest(assets.base_clip(aspect_ratio), manifest)


def thumbnail_jpeg(aspect_ratio: str) -> bytes:
    """A real JPEG thumbnail of the (nearest shipped) aspect ratio."""
    return assets.thumbnail(aspect_ratio)


def read_manifest(data: bytes) -> dict[str, Any] | None:
    """The manifest embedded in a render/sample (MP4, M4A or JPEG), or None."""
    if data[:2] == b"\xff\xd8":
        return read_jpeg_manifest(data)
    return read_mp4_manifest(data)


def sample_media(
    kind: MediaKind, aspect_ratio: str, manifest: dict[str, Any]
) -> tuple[bytes, str, str]:
    """``(bytes, content_type, extension)`` of a generated output of ``kind``.

    video → h264 MP4; image → JPEG; audio → AAC in M4A (``audio/mp4``, ".m4a").
    Each carries ``manifest``.  ``aspect_ratio`` is ignored for audio.
    """
    if kind == "video":
        return render_mp4(manifest, aspect_ratio), "video/mp4", "mp4"
    if kind == "image":
        return embed_manifest(assets.image(aspect_ratio), manifest), "image/jpeg", "jpg"
    if kind == "audio":
        return with_manifest(assets.audio(), manifest), "audio/mp4", "m4a"
    raise ValueError(f"unknown media kind: {kind!r}")
