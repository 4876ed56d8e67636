"""Load the committed tiny media assets and map aspect ratios onto them.

The assets are encoded once by ``scripts/make_sim_media.py`` and shipped inside the
package (hatchling includes every file under ``genbatch/``), so the simulator never
encodes at run time and needs no FFmpeg.
"""

from __future__ import annotations

import functools
import math
import re
from importlib import resources

#: The aspect ratios we ship clips for, as (tag used in asset names, width/height).
_SHIPPED: dict[str, float] = {"9x16": 9 / 16, "16x9": 16 / 9, "1x1": 1.0}
_RATIO_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*[:x/]\s*(\d+(?:\.\d+)?)\s*$")


def aspect_tag(aspect_ratio: str) -> str:
    """Map "9:16", "16:9", "1:1", "4:3", "3:4", … to the nearest shipped clip.

    Nearest is measured in log-ratio space, so a ratio and its inverse behave alike.
    4:3 lies exactly between 1:1 and 16:9 there; ties keep the orientation
    (landscape → 16:9, portrait → 9:16) because a player cares more about that.
    """
    match = _RATIO_RE.match(aspect_ratio)
    if not match:
        raise ValueError(f"not an aspect ratio: {aspect_ratio!r} (expected e.g. '9:16')")
    w, h = float(match[1]), float(match[2])
    if w <= 0 or h <= 0:
        raise ValueError(f"not an aspect ratio: {aspect_ratio!r}")
    target = math.log(w / h)

    def distance(tag: str) -> tuple[float, int]:
        d = round(abs(math.log(_SHIPPED[tag]) - target), 9)
        same_side = (_SHIPPED[tag] - 1.0) * (w / h - 1.0) > 0
        return d, 0 if same_side else 1

    return min(_SHIPPED, key=distance)


@functools.cache
def asset(name: str) -> bytes:
    """Bytes of one committed asset (cached: they are a few KB each)."""
    return (resources.files("genbatch.sim.media") / "assets" / name).read_bytes()


def base_clip(aspect_ratio: str) -> bytes:
    return asset(f"base_{aspect_tag(aspect_ratio)}.mp4")


def thumbnail(aspect_ratio: str) -> bytes:
    return asset(f"thumb_{aspect_tag(aspect_ratio)}.jpg")


def image(aspect_ratio: str) -> bytes:
    return asset(f"image_{aspect_tag(aspect_ratio)}.jpg")


def audio() -> bytes:
    return asset("audio.m4a")
