"""The simulator's media are real (PyAV decodes them), per-manifest unique, and
carry their manifest where a test can read it back."""

from __future__ import annotations

import io
import struct
from fractions import Fraction
from importlib import resources
from typing import Any

import av
import pytest

from genbatch.sim.media import (
    MANIFEST_UUID,
    aspect_tag,
    iter_boxes,
    read_manifest,
    render_mp4,
    sample_media,
    thumbnail_jpeg,
)

ASPECTS = {"9:16": Fraction(9, 16), "16:9": Fraction(16, 9), "1:1": Fraction(1, 1)}


def _manifest(row: int) -> dict[str, Any]:
    return {
        "engine_id": 42,
        "row_id": row,
        "cells": {"hook": f"hook for row {row}", "script": "ünïcödé ✓"},
        "layers": [{"id": 1, "layer_type": "video", "source_column": "avatar"}],
    }


def _decode_video(data: bytes) -> tuple[str, int, int, int]:
    """(codec, width, height, decoded frame count) of the first video stream."""
    with av.open(io.BytesIO(data), "r") as container:
        stream = container.streams.video[0]
        frames = list(container.decode(stream))
        assert frames, "no frame decoded"
        return stream.codec_context.name, frames[0].width, frames[0].height, len(frames)


@pytest.mark.parametrize("aspect", ASPECTS)
def test_render_is_playable_h264_with_the_aspect_ratio(aspect: str) -> None:
    data = render_mp4(_manifest(1), aspect)
    codec, width, height, n_frames = _decode_video(data)
    assert codec == "h264"
    assert Fraction(width, height) == ASPECTS[aspect]
    assert n_frames >= 2
    with av.open(io.BytesIO(data), "r") as container:
        assert container.duration is not None
        assert 0.5 <= container.duration / av.time_base <= 2.0


@pytest.mark.parametrize(
    ("aspect", "expected"),
    [("4:3", "16:9"), ("3:4", "9:16"), ("4:5", "1:1"), ("21:9", "16:9"), ("1080x1920", "9:16")],
)
def test_other_aspects_map_to_the_nearest_shipped_clip(aspect: str, expected: str) -> None:
    _, width, height, _ = _decode_video(render_mp4({"a": 1}, aspect))
    assert Fraction(width, height) == ASPECTS[expected]
    assert aspect_tag(aspect) == expected.replace(":", "x")


@pytest.mark.parametrize("bad", ["", "wide", "0:9", "9:0", "-9:16"])
def test_garbage_aspect_ratio_is_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        render_mp4({}, bad)


def test_box_structure_is_ftyp_moov_mdat_then_our_uuid_box() -> None:
    manifest = _manifest(7)
    data = render_mp4(manifest, "9:16")
    boxes = list(iter_boxes(data))
    types = [t for t, _, _ in boxes]
    assert types[0] == "ftyp"
    assert {"moov", "mdat"} <= set(types)
    assert types.index("moov") < types.index("mdat"), "faststart: moov before mdat"
    kind, offset, size = boxes[-1]
    assert kind == "uuid"
    assert offset + size == len(data)
    assert sum(s for _, _, s in boxes) == len(data)
    assert data[offset + 8 : offset + 24] == MANIFEST_UUID
    # moov's children parse too: one video track with a track header.
    _, moov_off, moov_size = next(b for b in boxes if b[0] == "moov")
    children = [t for t, _, _ in iter_boxes(data, moov_off + 8, moov_off + moov_size)]
    assert "mvhd" in children and "trak" in children


def test_different_manifests_give_different_bytes_and_read_back() -> None:
    first, second = _manifest(1), _manifest(2)
    a, b = render_mp4(first, "9:16"), render_mp4(second, "9:16")
    assert a != b
    assert read_manifest(a) == first
    assert read_manifest(b) == second
    assert read_manifest(a)["row_id"] == 1  # type: ignore[index]
    # The same manifest renders to the same bytes (sorted-key JSON, no clock).
    assert render_mp4(dict(reversed(list(first.items()))), "9:16") == a


def test_large_manifest_round_trips_in_mp4_and_jpeg() -> None:
    manifest = {"cells": {f"c{i}": "x" * 1000 for i in range(150)}}  # ~150 KB > one COM segment
    assert read_manifest(render_mp4(manifest, "1:1")) == manifest
    image, _, _ = sample_media("image", "1:1", manifest)
    assert read_manifest(image) == manifest
    with av.open(io.BytesIO(image), "r") as container:
        assert len(list(container.decode(video=0))) == 1


def test_read_manifest_is_none_for_foreign_or_broken_data() -> None:
    base = render_mp4({"x": 1}, "16:9")
    plain = base[: list(iter_boxes(base))[-1][1]]  # strip our box
    assert read_manifest(plain) is None
    assert read_manifest(b"") is None
    assert read_manifest(b"not media at all") is None
    assert read_manifest(base[:-5]) is None  # truncated uuid box
    assert read_manifest(thumbnail_jpeg("9:16")) is None
    foreign_uuid = struct.pack(">I4s", 8 + 16 + 2, b"uuid") + b"\x00" * 16 + b"{}"
    assert read_manifest(plain + foreign_uuid) is None


def test_iter_boxes_handles_64bit_and_to_end_sizes() -> None:
    small = struct.pack(">I4s", 12, b"free") + b"abcd"
    large = struct.pack(">I4sQ", 1, b"mdat", 16 + 5) + b"12345"
    to_end = struct.pack(">I4s", 0, b"skip") + b"tail"
    data = small + large + to_end
    assert list(iter_boxes(data)) == [
        ("free", 0, 12),
        ("mdat", 12, 21),
        ("skip", 33, 12),
    ]
    with pytest.raises(ValueError):
        list(iter_boxes(small[:-1]))  # box claims more than there is
    with pytest.raises(ValueError):
        list(iter_boxes(struct.pack(">I4s", 4, b"bad!")))  # size below header


@pytest.mark.parametrize("aspect", ASPECTS)
def test_thumbnail_is_a_real_jpeg_of_the_aspect(aspect: str) -> None:
    data = thumbnail_jpeg(aspect)
    assert data[:2] == b"\xff\xd8" and data[-2:] == b"\xff\xd9"
    with av.open(io.BytesIO(data), "r") as container:
        assert container.streams.video[0].codec_context.name == "mjpeg"
        frames = list(container.decode(video=0))
    assert len(frames) == 1
    assert Fraction(frames[0].width, frames[0].height) == ASPECTS[aspect]


def test_sample_media_kinds_are_real_and_carry_the_manifest() -> None:
    manifest = _manifest(3)
    video, ctype, ext = sample_media("video", "9:16", manifest)
    assert (ctype, ext) == ("video/mp4", "mp4")
    assert _decode_video(video)[0] == "h264"
    assert read_manifest(video) == manifest

    image, ctype, ext = sample_media("image", "16:9", manifest)
    assert (ctype, ext) == ("image/jpeg", "jpg")
    codec, width, height, _ = _decode_video(image)
    assert codec == "mjpeg" and Fraction(width, height) == Fraction(16, 9)
    assert read_manifest(image) == manifest

    audio, ctype, ext = sample_media("audio", "9:16", manifest)
    assert (ctype, ext) == ("audio/mp4", "m4a")
    with av.open(io.BytesIO(audio), "r") as container:
        stream = container.streams.audio[0]
        frames = list(container.decode(stream))
        assert stream.codec_context.name == "aac"
        assert sum(f.samples for f in frames) >= stream.codec_context.sample_rate // 2
    assert read_manifest(audio) == manifest
    assert sample_media("audio", "9:16", _manifest(4))[0] != audio

    with pytest.raises(ValueError):
        sample_media("hologram", "9:16", manifest)  # type: ignore[arg-type]


def test_committed_assets_are_tiny_and_packaged() -> None:
    assets = resources.files("genbatch.sim.media") / "assets"
    sizes = {p.name: len(p.read_bytes()) for p in assets.iterdir() if p.is_file()}
    assert {"base_9x16.mp4", "base_16x9.mp4", "base_1x1.mp4", "audio.m4a"} <= set(sizes)
    assert max(sizes.values()) < 16 * 1024
    assert sum(sizes.values()) < 100 * 1024
