"""Simulator profiles: TOML files that make the simulator play an API unlike its defaults.

genbatch must be fast against a GEN it knows nothing about, so tests and
benchmarks need the simulator to play other servers: no rate limit, a limit
that arrives unannounced, a cap on running jobs, faster models, slower renders,
timestamps on generations.  A profile says so in a few keys::

    description = "a limit arrives unannounced"
    rate = 60            # requests/s per key; 0 = no limit
    burst = 10
    rate_headers = false # X-RateLimit-* and RateLimit-Policy
    timestamps = false   # created_at/updated_at on today's generation object
    job_cap = 0          # running generations per workspace; 0 = no cap
    capacity = 0         # requests/s before answers queue; 0 = unlimited
    time_scale = 1.0
    [latency]            # by model, generation type or render:
    render = 4.0         #   a multiplier of the default range...
    veo_3 = [30, 60]     #   ...or a [lo, hi] range in seconds at time scale 1

A key left out keeps :class:`~genbatch.sim.config.SimConfig`'s default.  Named
profiles ship as package data in ``genbatch/sim/profiles/NAME.toml``
(:func:`profile_names`); ``genbatch sim --profile NAME_OR_FILE`` and
:meth:`SimConfig.from_profile <genbatch.sim.config.SimConfig.from_profile>`
load one through :func:`load_profile`, which resolves multipliers to ranges
(so a config holds ranges only) and refuses an unknown key or a bad value with
a one-line :class:`ProfileError` naming the file and the key.

Standard library only, and no import of ``config`` (which imports this).
"""

from __future__ import annotations

import json
import math
import tomllib
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Final

from genbatch.sim.clock import SIM_LATENCY
from genbatch.sim.templates import MODELS

__all__ = [
    "LATENCY_KEYS",
    "ProfileError",
    "default_latency",
    "load_profile",
    "parse_latency",
    "profile_description",
    "profile_names",
]

#: Where the named profiles live (package data, next to this module).
PROFILE_DIR: Final = "profiles"
#: The keys a profile may carry (besides the ``[latency]`` table's own keys).
PROFILE_KEYS: Final = (
    "description",
    "rate",
    "burst",
    "rate_headers",
    "timestamps",
    "job_cap",
    "capacity",
    "time_scale",
    "latency",
)
#: What a ``[latency]`` key may name: a job kind of SIM_LATENCY (generation types,
#: ``render``, user jobs, agent runs, voice previews) or a model of the card catalog.
LATENCY_KEYS: Final[frozenset[str]] = frozenset(SIM_LATENCY) | frozenset(
    m for models in MODELS.values() for m in models
)


class ProfileError(ValueError):
    """A profile that cannot be used; the message is one line naming the file and key."""


def default_latency(key: str) -> tuple[float, float]:
    """The default range a ``[latency]`` key's multiplier applies to.

    A kind's own range; a model's is the range of the first generation type the
    card catalog lists it under (a model of several video types: theirs are equal).
    """
    if key in SIM_LATENCY:
        return SIM_LATENCY[key]
    for gtype, models in MODELS.items():
        if key in models:
            return SIM_LATENCY[gtype]
    raise KeyError(key)


def _profile_files() -> dict[str, Any]:
    root = resources.files("genbatch.sim").joinpath(PROFILE_DIR)
    return {
        entry.name.removesuffix(".toml"): entry
        for entry in root.iterdir()
        if entry.name.endswith(".toml")
    }


def profile_names() -> list[str]:
    """The named profiles shipped with genbatch, sorted."""
    return sorted(_profile_files())


@cache
def profile_description(name: str) -> str:
    """A named profile's ``description`` (empty when it has none)."""
    data = _parse(_profile_files()[name].read_text(encoding="utf-8"), f"{name}.toml")
    text = data.get("description", "")
    return text if isinstance(text, str) else ""


def _shown(value: object) -> str:
    """A value as TOML would write it (JSON is close enough), for messages."""
    if isinstance(value, bool):
        return "true" if value else "false"
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return str(value)


def _parse(text: str, source: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{source}: not valid TOML: {exc}") from None


def _is_number(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def load_profile(name_or_path: str | Path) -> dict[str, Any]:
    """The :class:`~genbatch.sim.config.SimConfig` keyword arguments a profile sets.

    ``name_or_path``: a named profile (:func:`profile_names`), else a TOML file.
    The result carries ``profile`` (the name, or the file's path as given) and
    only the keys the profile sets, ``rate``/``job_cap``/``capacity`` 0 turned
    into None and ``[latency]`` multipliers into ranges.
    """
    given = str(name_or_path)
    named = _profile_files()
    if given in named:
        source, label = f"profile {given}", given
        text = named[given].read_text(encoding="utf-8")
    else:
        path = Path(name_or_path)
        if not path.is_file():
            raise ProfileError(
                f"no profile {given}: not a named profile ({', '.join(sorted(named))}) nor a file"
            )
        source = label = given
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise ProfileError(f"{source}: cannot read it: {why}") from None
    return _values(_parse(text, source), source, label)


def _values(data: dict[str, Any], source: str, label: str) -> dict[str, Any]:
    out: dict[str, Any] = {"profile": label}
    for key, value in data.items():

        def bad(want: str, key: str = key, value: Any = value) -> ProfileError:
            return ProfileError(f"{source}: {key} must be {want}, got {_shown(value)}")

        if key == "description":
            if not isinstance(value, str):
                raise bad("a string")
        elif key in ("rate", "capacity"):
            if not _is_number(value) or value < 0:
                raise bad("a number >= 0 (0: none)")
            out[key] = float(value) if value > 0 else None
        elif key == "burst":
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise bad("an integer >= 1")
            out[key] = value
        elif key in ("rate_headers", "timestamps"):
            if not isinstance(value, bool):
                raise bad("true or false")
            out[key] = value
        elif key == "job_cap":
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise bad("an integer >= 0 (0: no cap)")
            out[key] = value or None
        elif key == "time_scale":
            if not _is_number(value) or value < 0:
                raise bad("a number >= 0")
            out[key] = float(value)
        elif key == "latency":
            if not isinstance(value, dict):
                raise bad("a table: [latency] with KEY = multiplier or KEY = [lo, hi]")
            out[key] = tuple(_latency(k, v, source) for k, v in value.items())
        else:
            raise ProfileError(f"{source}: unknown key {key} (known: {', '.join(PROFILE_KEYS)})")
    return out


def _latency(key: str, value: Any, source: str) -> tuple[str, tuple[float, float]]:
    where = f"{source}: latency.{key}"
    if key not in LATENCY_KEYS:
        raise ProfileError(
            f"{where}: unknown key (a generation type, a model of the card catalog, render, "
            f"publish_content, train_social, agent_run or voice_preview)"
        )
    if _is_number(value):
        if value <= 0:
            raise ProfileError(f"{where}: a multiplier must be > 0, got {_shown(value)}")
        lo, hi = default_latency(key)
        return key, (lo * value, hi * value)
    if (
        isinstance(value, list)
        and len(value) == 2
        and all(_is_number(v) for v in value)
        and 0 <= value[0] <= value[1]
    ):
        return key, (float(value[0]), float(value[1]))
    raise ProfileError(
        f"{where}: must be a multiplier (a number > 0) or a range [lo, hi] in seconds "
        f"with 0 <= lo <= hi, got {_shown(value)}"
    )


def parse_latency(text: str) -> tuple[str, tuple[float, float]]:
    """``KEY=LO:HI`` (``genbatch sim --latency``) -> (key, (lo, hi)); ValueError when bad."""
    key, sep, bounds = text.partition("=")
    lo_text, colon, hi_text = bounds.partition(":")
    try:
        lo, hi = float(lo_text), float(hi_text)
    except ValueError:
        lo = hi = -1.0
    key = key.strip()
    if not sep or not colon or not (0 <= lo <= hi) or not math.isfinite(hi):
        raise ValueError(f"expected KEY=LO:HI (seconds at time scale 1, 0 <= LO <= HI), got {text}")
    if key not in LATENCY_KEYS:
        raise ValueError(
            f"--latency {text}: unknown key {key} (a generation type, a model of the card "
            "catalog, render, publish_content, train_social, agent_run or voice_preview)"
        )
    return key, (lo, hi)
