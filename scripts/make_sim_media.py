"""Generate the simulator's tiny committed media assets (genbatch/sim/media/assets/).

The simulator must serve *real* media (ffprobe/PyAV must read it) without encoding
anything at run time, so we encode a few tiny base files once and commit them; a
render is then ``base clip + a uuid box holding the manifest`` (pure concatenation).

Regenerate (needs the dev extra, which brings PyAV)::

    .venv/bin/python scripts/make_sim_media.py            # writes the assets
    .venv/bin/python scripts/make_sim_media.py --check    # exit 1 if they differ

Determinism: libx264 runs single-threaded, muxers and encoders use ``bitexact``
and the pixels/samples are pure functions of the frame index, so two runs with the
same PyAV/FFmpeg build write identical bytes (``--check`` verifies it).  A different
FFmpeg build may encode slightly different bytes; that is harmless, just commit them.
No numpy: frames are filled from plain ``bytes``.
"""

from __future__ import annotations

import argparse
import array
import math
import sys
import tempfile
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av

ASSETS = Path(__file__).resolve().parent.parent / "genbatch" / "sim" / "media" / "assets"

#: Aspect tag -> (width, height): exact ratios, even sides (yuv420p needs them).
VIDEO_SIZES: dict[str, tuple[int, int]] = {
    "9x16": (72, 128),
    "16x9": (128, 72),
    "1x1": (96, 96),
}
#: Thumbnails/images are a little larger than the clips but still ~1-3 KB each.
JPEG_SIZES: dict[str, tuple[int, int]] = {
    "9x16": (90, 160),
    "16x9": (160, 90),
    "1x1": (120, 120),
}
FPS = 8
N_FRAMES = 8  # 1 s
AUDIO_RATE = 8000
AUDIO_SECONDS = 1.0
AUDIO_TONE_HZ = 440.0

Pixel = Callable[[int, int], int]


def _plane_bytes(width: int, height: int, line_size: int, fn: Pixel) -> bytes:
    pad = bytes(line_size - width)
    rows = [bytes(fn(x, y) & 0xFF for x in range(width)) + pad for y in range(height)]
    return b"".join(rows)


def _video_frame(width: int, height: int, index: int, fmt: str, seed: int) -> av.VideoFrame:
    """A moving diagonal gradient with a coloured tint; purely a function of inputs."""
    frame = av.VideoFrame(width, height, fmt)
    shift = index * 9 + seed * 37
    luma: Pixel = lambda x, y: 16 + ((x + y + shift) * 219 // (width + height + 1)) % 220  # noqa: E731
    cb: Pixel = lambda x, y: 128 + int(60 * math.sin((x + shift) / 7.0))  # noqa: E731
    cr: Pixel = lambda x, y: 128 + int(60 * math.cos((y + seed * 11) / 9.0))  # noqa: E731
    for plane, fn in zip(frame.planes, (luma, cb, cr), strict=True):
        plane.update(_plane_bytes(plane.width, plane.height, plane.line_size, fn))
    frame.pts = index
    frame.time_base = Fraction(1, FPS)
    return frame


def _muxed(fmt: str, write: Callable[[av.container.OutputContainer], None]) -> bytes:
    """Mux into a real temp file: faststart re-reads the output, which BytesIO can't do."""
    options = {"movflags": "+faststart", "fflags": "+bitexact"}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "out"
        with av.open(str(path), "w", format=fmt, options=options) as out:
            write(out)
        return path.read_bytes()


def make_clip(width: int, height: int) -> bytes:
    """~1 s of h264/yuv420p in MP4 with moov first (faststart)."""

    def write(out: av.container.OutputContainer) -> None:
        stream = out.add_stream("libx264", rate=FPS)
        stream.width = width
        stream.height = height
        stream.pix_fmt = "yuv420p"
        stream.codec_context.thread_count = 1
        stream.codec_context.options = {
            "preset": "veryslow",
            "tune": "stillimage",
            "crf": "35",
            "threads": "1",
            "x264-params": "keyint=8:bframes=0:sliced-threads=0",
            "flags": "+bitexact",
        }
        for i in range(N_FRAMES):
            for packet in stream.encode(_video_frame(width, height, i, "yuv420p", 0)):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)

    return _muxed("mp4", write)


def make_jpeg(width: int, height: int, seed: int) -> bytes:
    """One baseline JPEG via FFmpeg's mjpeg encoder (full-range yuvj420p)."""
    ctx = av.CodecContext.create("mjpeg", "w")
    ctx.width = width
    ctx.height = height
    ctx.pix_fmt = "yuvj420p"
    ctx.time_base = Fraction(1, 1)
    ctx.options = {"flags": "+bitexact", "qscale": "6"}
    ctx.flags |= av.codec.context.Flags.qscale
    ctx.global_quality = 6 * 118  # FF_QP2LAMBDA * q
    frame = _video_frame(width, height, 3, "yuvj420p", seed)
    frame.pts = 0
    packets = list(ctx.encode(frame)) + list(ctx.encode(None))
    data = b"".join(bytes(p) for p in packets)
    assert data[:2] == b"\xff\xd8" and data[-2:] == b"\xff\xd9", "not a JPEG"
    return data


def make_audio() -> bytes:
    """~1 s of a 440 Hz tone, AAC-LC mono in an M4A (MP4) container."""

    def write(out: av.container.OutputContainer) -> None:
        stream = out.add_stream("aac", rate=AUDIO_RATE)
        stream.layout = "mono"
        stream.bit_rate = 16000
        stream.codec_context.options = {"flags": "+bitexact"}
        total = int(AUDIO_RATE * AUDIO_SECONDS)
        frame_size = 1024

        for start in range(0, total, frame_size):
            n = min(frame_size, total - start)
            samples = array.array(
                "f",
                (
                    0.3 * math.sin(2 * math.pi * AUDIO_TONE_HZ * (start + k) / AUDIO_RATE)
                    for k in range(n)
                ),
            )
            frame = av.AudioFrame(format="flt", layout="mono", samples=n)
            frame.planes[0].update(samples.tobytes() + bytes(frame.planes[0].buffer_size - 4 * n))
            frame.sample_rate = AUDIO_RATE
            frame.pts = start
            frame.time_base = Fraction(1, AUDIO_RATE)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)

    return _muxed("ipod", write)


def build() -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for tag, (w, h) in VIDEO_SIZES.items():
        files[f"base_{tag}.mp4"] = make_clip(w, h)
    for tag, (w, h) in JPEG_SIZES.items():
        files[f"thumb_{tag}.jpg"] = make_jpeg(w, h, seed=0)
        files[f"image_{tag}.jpg"] = make_jpeg(w, h, seed=5)
    files["audio.m4a"] = make_audio()
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args(argv)
    files = build()
    if args.check:
        stale = [n for n, d in files.items() if (ASSETS / n).read_bytes() != d]
        for name in stale:
            print(f"differs: {name}")
        return 1 if stale else 0
    ASSETS.mkdir(parents=True, exist_ok=True)
    for name, data in sorted(files.items()):
        (ASSETS / name).write_bytes(data)
        print(f"{name:16} {len(data):6} bytes")
    print(f"{'total':16} {sum(map(len, files.values())):6} bytes -> {ASSETS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
