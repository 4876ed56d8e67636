"""Carry a manifest inside a JPEG in COM (comment, 0xFFFE) segments.

Decoders ignore COM segments, so the picture stays valid.  A segment holds at most
65533 bytes, so a long manifest is split over consecutive segments; the first one
starts with a magic prefix so we never mistake someone else's comment for ours.
"""

from __future__ import annotations

import struct
from typing import Any

import orjson

_MAGIC = b"genbatch-manifest:"
_MAX_SEGMENT = 0xFFFF - 2
_SOI = b"\xff\xd8"


def _segments(data: bytes) -> list[tuple[int, int, int]]:
    """``(marker, offset, total_length)`` of the header segments up to SOS/EOI."""
    if data[:2] != _SOI:
        raise ValueError("not a JPEG (no SOI marker)")
    out: list[tuple[int, int, int]] = []
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            raise ValueError(f"expected a marker at offset {pos}")
        marker = data[pos + 1]
        if marker in (0xD9, 0xDA):  # EOI, SOS: entropy-coded data follows
            break
        (length,) = struct.unpack_from(">H", data, pos + 2)
        if length < 2 or pos + 2 + length > len(data):
            raise ValueError(f"bad segment length at offset {pos}")
        out.append((marker, pos, 2 + length))
        pos += 2 + length
    return out


def embed_manifest(jpeg: bytes, manifest: dict[str, Any]) -> bytes:
    """``jpeg`` with the manifest in COM segments placed after SOI and any APPn."""
    payload = _MAGIC + orjson.dumps(manifest, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    insert_at = 2
    for marker, offset, length in _segments(jpeg):
        if not 0xE0 <= marker <= 0xEF:  # keep JFIF/EXIF APPn first, as viewers expect
            break
        insert_at = offset + length
    chunks = [payload[i : i + _MAX_SEGMENT] for i in range(0, len(payload), _MAX_SEGMENT)]
    com = b"".join(b"\xff\xfe" + struct.pack(">H", len(c) + 2) + c for c in chunks)
    return jpeg[:insert_at] + com + jpeg[insert_at:]


def read_jpeg_manifest(jpeg: bytes) -> dict[str, Any] | None:
    """The manifest written by :func:`embed_manifest`, or None."""
    try:
        parts: list[bytes] = []
        for marker, offset, length in _segments(jpeg):
            body = jpeg[offset + 4 : offset + length]
            if marker == 0xFE and (parts or body.startswith(_MAGIC)):
                parts.append(body)
            elif parts:
                break
        if not parts:
            return None
        value = orjson.loads(b"".join(parts)[len(_MAGIC) :])
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
