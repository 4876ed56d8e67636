"""Minimal ISO-BMFF (MP4/M4A) box walking, and the manifest ``uuid`` box.

A simulated render is a committed base clip with one extra top-level ``uuid`` box
appended: players skip unknown top-level boxes, and appending after ``mdat`` shifts
no sample offsets, so the file stays playable while carrying whose video it is.
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Iterator
from typing import Any

import orjson

#: Our fixed extended type for the manifest box (frozen; the last six bytes spell "genbat").
MANIFEST_UUID: bytes = uuid.UUID("6d1f3c2e-9a57-5b0e-8f0a-67656e626174").bytes
_ORJSON_OPTS = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS


def iter_boxes(
    data: bytes, start: int = 0, end: int | None = None
) -> Iterator[tuple[str, int, int]]:
    """Yield ``(type, offset, size)`` for each box in ``data[start:end]``, headers only.

    Handles 64-bit sizes (size field 1 + ``largesize``) and size 0 ("to the end").
    Pass a parent's payload range as ``start``/``end`` to walk its children.
    Raises ``ValueError`` on a truncated or malformed box.
    """
    view = memoryview(data)
    stop = len(view) if end is None else min(end, len(view))
    pos = start
    while pos < stop:
        if stop - pos < 8:
            raise ValueError(f"truncated box header at offset {pos}")
        size, raw_type = struct.unpack_from(">I4s", view, pos)
        header = 8
        if size == 1:
            if stop - pos < 16:
                raise ValueError(f"truncated 64-bit box header at offset {pos}")
            (size,) = struct.unpack_from(">Q", view, pos + 8)
            header = 16
        elif size == 0:
            size = stop - pos
        if size < header or pos + size > stop:
            raise ValueError(f"bad box size {size} at offset {pos}")
        yield raw_type.decode("latin-1"), pos, size
        pos += size


def box_header_size(data: bytes, offset: int) -> int:
    """8, or 16 when the box at ``offset`` uses a 64-bit size."""
    return 16 if struct.unpack_from(">I", data, offset)[0] == 1 else 8


def manifest_box(manifest: dict[str, Any]) -> bytes:
    """A top-level ``uuid`` box with our UUID and the manifest as sorted-key JSON."""
    payload = orjson.dumps(manifest, option=_ORJSON_OPTS)
    size = 8 + len(MANIFEST_UUID) + len(payload)
    if size <= 0xFFFFFFFF:
        header = struct.pack(">I4s", size, b"uuid")
    else:  # never in practice; keeps the format honest
        header = struct.pack(">I4sQ", 1, b"uuid", size + 8)
    return header + MANIFEST_UUID + payload


def with_manifest(base: bytes, manifest: dict[str, Any]) -> bytes:
    """``base`` (an MP4-family file) plus our manifest box, by concatenation."""
    return base + manifest_box(manifest)


def read_mp4_manifest(data: bytes) -> dict[str, Any] | None:
    """The manifest from our ``uuid`` box, or None (absent, malformed, not a dict)."""
    try:
        for box_type, offset, size in iter_boxes(data):
            if box_type != "uuid":
                continue
            body = offset + box_header_size(data, offset)
            if bytes(data[body : body + 16]) != MANIFEST_UUID:
                continue
            value = orjson.loads(bytes(data[body + 16 : offset + size]))
            return value if isinstance(value, dict) else None
    except ValueError:  # includes orjson.JSONDecodeError
        return None
    return None
