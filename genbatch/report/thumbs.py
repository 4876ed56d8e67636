"""A thumbnail for every row: the render's own, else a JPEG beside the MP4, else its first frame.

Order of preference: the results' ``thumbnail`` column (the render's
``thumbnail_url`` saved at download time), a ``<video stem>.jpg`` beside the
MP4, and last the MP4's first frame, decoded with PyAV and written as a JPEG
into ``OUT/report_files/``.  PyAV is optional (imported on first use); without
it, or for a row with no MP4, the page shows a placeholder.

Extracted frames are named by the video's sha256 (from the journal; else a
hash of its path, size and mtime), never by anything a row supplied, so a
name cannot escape ``report_files/``, and a later report of the same run
reuses them.  A frame costs about a millisecond (open, decode one frame
with a single-threaded decoder, scale and encode with a scaler and an MJPEG
encoder kept per thread, write), spread over a few threads since PyAV
releases the GIL; a run of tens of thousands of rows without stored
thumbnails would still spend long here, so extraction stops after
:data:`ENGINE_REPORT_FRAME_BUDGET` seconds and the remaining rows show the
placeholder until the next report (which starts from the frames already made).
"""

from __future__ import annotations

import hashlib
import os
import stat
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction
from pathlib import Path
from typing import Any, Final

from genbatch.engine.naming import open_nofollow, safe_join
from genbatch.report.data import RowView

#: Folder in the output dir for files the report makes (extracted first frames).
ENGINE_REPORT_FILES_DIR: Final = "report_files"
#: Seconds of first-frame extraction per report at most (the rest: placeholders).
ENGINE_REPORT_FRAME_BUDGET: Final = 20.0
#: Threads decoding first frames (the machine's cores, at most this many).
ENGINE_REPORT_FRAME_THREADS: Final = min(4, os.cpu_count() or 1)
#: Widest extracted thumbnail, pixels (the grid shows them smaller).
ENGINE_REPORT_FRAME_WIDTH: Final = 320
#: Hex characters of the content hash in an extracted frame's name.
_NAME_CHARS: Final = 32

__all__ = [
    "ENGINE_REPORT_FILES_DIR",
    "ENGINE_REPORT_FRAME_BUDGET",
    "FrameExtractor",
    "cache_key",
    "thumbnails",
]


def beside(mp4: Path) -> Path | None:
    """``<video stem>.jpg`` next to the MP4, when it is there as a regular file."""
    jpg = mp4.with_suffix(".jpg")
    return jpg if jpg.is_file() and not jpg.is_symlink() else None


class FrameExtractor:
    """First frames of MP4s as JPEGs in ``OUT/report_files/``, within a time budget."""

    def __init__(
        self,
        out_dir: Path,
        *,
        budget: float = ENGINE_REPORT_FRAME_BUDGET,
        threads: int = ENGINE_REPORT_FRAME_THREADS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.out_dir = out_dir
        self.budget = budget
        self.threads = threads
        self._clock = clock
        self._av: Any = None
        self._available: bool | None = None
        self._local = threading.local()  # a decoder's helpers are not thread-safe
        #: Videos left without a frame: the budget ran out (or PyAV is missing) / unreadable.
        self.skipped = 0
        self.failed = 0

    @property
    def available(self) -> bool:
        """PyAV can be imported (tried once)."""
        if self._available is None:
            try:
                import av
            except ImportError:
                self._available = False
            else:
                self._av, self._available = av, True
        return self._available

    def frames(self, videos: Mapping[str, Path]) -> dict[str, Path]:
        """The first frame of each video (by cache key): cached ones, then as many new
        ones as the budget allows, decoded on a few threads (PyAV releases the GIL).

        A frame's name is a hash of its key, never anything a row supplied;
        ``report_files/`` is checked once (no symlink), a cached frame must be
        a regular file, and a new one is written beside it and renamed over.
        """
        found: dict[str, Path] = {}
        todo: list[tuple[str, Path, Path]] = []
        folder = safe_join(self.out_dir, ENGINE_REPORT_FILES_DIR, "x", companions=()).parent
        for key, mp4 in videos.items():
            target = folder / (hashlib.sha256(key.encode()).hexdigest()[:_NAME_CHARS] + ".jpg")
            try:
                cached = stat.S_ISREG(os.lstat(target).st_mode)
            except OSError:
                cached = False
            if cached:
                found[key] = target
            else:
                todo.append((key, mp4, target))
        if not todo:
            return found
        if not self.available:
            self.skipped += len(todo)
            return found
        todo[0][2].parent.mkdir(exist_ok=True)  # safe_join checked it is no symlink
        deadline = self._clock() + self.budget

        def one(job: tuple[str, Path, Path]) -> tuple[str, Path | None, bool]:
            key, mp4, target = job
            if self._clock() >= deadline:
                return key, None, False
            try:
                jpeg = self._encode(mp4)
            except Exception:  # av.FFmpegError, OSError: a video we cannot read
                jpeg = None
            if jpeg is None:
                return key, None, True
            tmp = target.with_name(target.name + ".tmp")
            fd = open_nofollow(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            with os.fdopen(fd, "wb") as fh:
                fh.write(jpeg)
            os.replace(tmp, target)
            return key, target, True

        with ThreadPoolExecutor(max(1, self.threads), thread_name_prefix="frames") as pool:
            for key, path, tried in pool.map(one, todo):
                if path is not None:
                    found[key] = path
                elif tried:
                    self.failed += 1
                else:
                    self.skipped += 1
        return found

    def _encode(self, mp4: Path) -> bytes | None:
        av, local = self._av, self._local
        if not hasattr(local, "encoders"):
            local.encoders = {}
            local.reformatter = av.video.reformatter.VideoReformatter()
            local.pts = 0
        with av.open(str(mp4)) as container:
            if not container.streams.video:
                return None
            stream = container.streams.video[0]
            # One thread: a decoder's default thread pool costs more to start
            # than decoding one frame.
            stream.thread_type = "NONE"
            frame = next(container.decode(stream), None)
        if frame is None or not frame.width or not frame.height:
            return None
        width = min(frame.width, ENGINE_REPORT_FRAME_WIDTH)
        width -= width % 2
        height = max(2, round(frame.height * width / frame.width / 2) * 2)
        encoder = local.encoders.get((width, height))
        if encoder is None:
            encoder = av.CodecContext.create("mjpeg", "w")
            encoder.width, encoder.height = width, height
            encoder.pix_fmt = "yuvj420p"
            encoder.time_base = Fraction(1, 25)
            local.encoders[(width, height)] = encoder
        image = local.reformatter.reformat(frame, width=width, height=height, format="yuvj420p")
        image.pts, image.time_base = local.pts, Fraction(1, 25)
        local.pts += 1
        packets = encoder.encode(image)  # MJPEG: one frame in, one JPEG out
        data = b"".join(bytes(p) for p in packets)
        return data if data.startswith(b"\xff\xd8") else None


def cache_key(row: RowView) -> str | None:
    """What names a row's extracted frame: its video's sha256 (journal), else path, size, mtime."""
    if row.mp4 is None:
        return None
    if row.sha256 is not None:
        return row.sha256
    try:
        st = row.mp4.stat()
    except OSError:
        return None
    return f"{row.mp4.resolve()}|{st.st_size}|{st.st_mtime_ns}"


def thumbnails(rows: Sequence[RowView], frames: FrameExtractor) -> list[Path | None]:
    """The best thumbnail on disk for each row (see the module docstring), or None."""
    chosen: list[Path | None] = []
    wanted: dict[str, Path] = {}
    keys: list[str | None] = []
    for row in rows:
        found = row.thumbnail or (beside(row.mp4) if row.mp4 is not None else None)
        key = cache_key(row) if found is None else None
        if key is not None and row.mp4 is not None:
            wanted[key] = row.mp4
        chosen.append(found)
        keys.append(key)
    extracted = frames.frames(wanted)
    return [
        found if found is not None else (extracted.get(key) if key is not None else None)
        for found, key in zip(chosen, keys, strict=True)
    ]
