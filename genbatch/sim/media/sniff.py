"""What an uploaded file is, read from its first bytes (its "magic"), not from its name.

curl's ``-F "content_resource[file]=@local.mp4"`` sends ``application/octet-stream``,
and a client can declare ``video/mp4`` for a JPEG: the declared type is only a hint,
used when the bytes match no signature below.  :func:`kind_of` answers the
content resource's ``object_type`` (video / image / audio / document) and the
content type the CDN serves it with.
"""

from __future__ import annotations

import mimetypes
import re
from pathlib import Path
from typing import Final

__all__ = ["HEAD_BYTES", "kind_of", "read_head", "sniff"]

#: How much of a file the sniffer reads (an MP4's ``moov`` usually starts in here).
HEAD_BYTES: Final = 64 * 1024
#: ISO-BMFF major brands that mean audio-only or a still image.
_AUDIO_BRANDS: Final = (b"M4A ", b"M4B ", b"M4P ", b"F4A ", b"F4B ")
_IMAGE_BRANDS: Final[dict[bytes, str]] = {
    b"heic": "image/heic",
    b"heix": "image/heic",
    b"mif1": "image/heif",
    b"msf1": "image/heif",
    b"avif": "image/avif",
}
#: An MP4 track handler: ``hdlr`` box, version/flags, pre_defined, then the type.
_HANDLER = re.compile(rb"hdlr.{8}(vide|soun)", re.DOTALL)
OBJECT_TYPES: Final = ("video", "image", "audio")


def sniff(head: bytes) -> tuple[str, str] | None:
    """``(object_type, content_type)`` the leading bytes prove, or None when unknown."""
    if len(head) >= 12 and head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in _AUDIO_BRANDS:
            return "audio", "audio/mp4"
        if brand in _IMAGE_BRANDS:
            return "image", _IMAGE_BRANDS[brand]
        if brand == b"qt  ":
            return "video", "video/quicktime"
        if brand.startswith(b"3g"):
            return "video", "video/3gpp"
        handlers = {m.group(1) for m in _HANDLER.finditer(head)}
        if b"soun" in handlers and b"vide" not in handlers:
            return "audio", "audio/mp4"  # an .m4a written with a generic brand
        return "video", "video/mp4"
    if head[:3] == b"\xff\xd8\xff":
        return "image", "image/jpeg"
    if head[:8] == b"\x89PNG\r\n\x1a\n":
        return "image", "image/png"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image", "image/gif"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "image", "image/tiff"
    if head[:4] == b"RIFF" and len(head) >= 12:
        form = head[8:12]
        if form == b"WEBP":
            return "image", "image/webp"
        if form == b"WAVE":
            return "audio", "audio/wav"
        if form == b"AVI ":
            return "video", "video/x-msvideo"
        return None
    if head[:3] == b"ID3":
        return "audio", "audio/mpeg"
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:
        # MPEG audio frame sync; layer bits 00 are AAC in an ADTS stream.
        return ("audio", "audio/aac") if head[1] & 0x06 == 0 else ("audio", "audio/mpeg")
    if head[:4] == b"OggS":
        return "audio", "audio/ogg"
    if head[:4] == b"fLaC":
        return "audio", "audio/flac"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return ("video", "video/webm") if b"webm" in head[:64] else ("video", "video/x-matroska")
    if head[:5] == b"%PDF-":
        return "document", "application/pdf"
    if head[:4] == b"PK\x03\x04":
        return "document", "application/zip"
    return None


def kind_of(head: bytes, declared: str | None, filename: str) -> tuple[str, str]:
    """``(object_type, content_type)`` of an upload: the bytes first, then the declared
    type, then the file name's extension; ``document`` when nothing tells."""
    found = sniff(head)
    if found is not None:
        return found
    # ASSUMPTION: unrecognised bytes keep the declared type, else the extension's
    # (docs/sim-assumptions.md, "upload-type").
    hint = (declared or "").split(";", 1)[0].strip().lower()
    if not hint or hint == "application/octet-stream" or "/" not in hint:
        hint = mimetypes.guess_type(filename)[0] or "application/octet-stream"
    major = hint.split("/", 1)[0]
    return (major if major in OBJECT_TYPES else "document"), hint


def read_head(path: Path) -> bytes:
    """The first :data:`HEAD_BYTES` of the file at ``path`` (empty if it is gone)."""
    try:
        with path.open("rb") as f:
            return f.read(HEAD_BYTES)
    except OSError:
        return b""
