"""A simulator's world kept in a directory, so ``--sim`` commands share one GEN.

Without it every ``--sim`` command would start a fresh world: a run interrupted
and started again would poll generations the new world never made (404), and
``genbatch ideas`` could not use the agent ``genbatch agents apply`` had just
made.  A state dir holds::

    world.pickle   the saved world: two header lines (format, layout), then a pickle
    data/          the world's files (uploads, direct-upload blobs): World.data_dir
    lock           flock'd by the one process serving the world

The snapshot is a pickle (:meth:`World.snapshot`: the stores, clock, due
queue and ledger; no sockets, loops, tasks or locks).  Pickle is acceptable
here because the file is ours: written by this module into a dir the user
chose for it, read back only by this module; a state dir is as trusted as any
other file in the user's own tree.  Format and layout (the attribute names of
the stores and entities) are checked before anything is unpickled, so a state
written by another version is refused with the fix, never half loaded.

Saving is atomic (temp file, fsync, rename, fsync of the dir) at every stop
and every few seconds while something changes (:func:`autosave`), so a hard
kill loses little.  Job times are wall-clock, so work keeps running while no
process serves the world and settles when the next one does.  The API host's
URL changes with its port: URLs stored in the world (cell values, idea
assets, replayed answers) are saved without it and rebuilt on the new one.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import fcntl
import hashlib
import inspect
import io
import json
import logging
import os
import pickle
import shlex
import threading
import time
from pathlib import Path
from typing import Any, Final

from genbatch.errors import GenError
from genbatch.sim import entities
from genbatch.sim.clock import iso
from genbatch.sim.world import World

log = logging.getLogger("genbatch.sim")

__all__ = [
    "SIM_STATE_FORMAT",
    "SimStateError",
    "StateDir",
    "StateInUse",
    "StateUnreadable",
    "autosave",
    "stop_autosave",
]

#: Bump when a saved world means something else under the same layout.
SIM_STATE_FORMAT: Final = 1
SIM_STATE_FILE: Final = "world.pickle"
SIM_STATE_DATA: Final = "data"
SIM_STATE_LOCK: Final = "lock"
#: Seconds between saves while the world changes ...
SIM_STATE_SAVE_EVERY: Final = 5.0
#: ... stretched so that pickling (on the event loop) takes at most this share of it.
SIM_STATE_SAVE_SHARE: Final = 0.05
_MAGIC: Final = b"genbatch sim state\n"
_PICKLE_PROTOCOL: Final = 5


class SimStateError(GenError):
    """A state dir that cannot be used (exit 2): the message names the dir and the fix."""

    def __init__(self, message: str, root: Path) -> None:
        super().__init__(message)
        self.root = root


class StateInUse(SimStateError):
    """Another process serves the world of this state dir."""


class StateUnreadable(SimStateError):
    """The saved world cannot be read by this version, or the dir cannot be used."""


def layout(world: World) -> str:
    """A fingerprint of what a snapshot is made of: each part's type and attribute
    names, and every entity's fields.  A saved world whose layout differs would
    restore objects missing attributes the code now reads."""
    parts = []
    for name, value in world.snapshot().items():
        attrs = sorted(vars(value)) if hasattr(value, "__dict__") else []
        if dataclasses.is_dataclass(value):
            attrs = [f.name for f in dataclasses.fields(value)]
        parts.append(f"{name}={type(value).__qualname__}({','.join(attrs)})")
    for cls_name, cls in sorted(inspect.getmembers(entities, dataclasses.is_dataclass)):
        parts.append(f"{cls_name}({','.join(f.name for f in dataclasses.fields(cls))})")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def revision(world: World) -> int:
    """Grows whenever the world may have changed: every change comes from a request."""
    return sum(world.counters.by_status.values())


class _Pickler(pickle.Pickler):
    """Pickles URLs on the API host without its root (``base``), the one part that changes."""

    def __init__(self, file: io.BytesIO, base: str) -> None:
        super().__init__(file, protocol=_PICKLE_PROTOCOL)
        self._base = base + "/"
        self._base_b = self._base.encode()

    def persistent_id(self, obj: Any) -> Any:
        kind = type(obj)
        if kind is str and self._base in obj:
            return ("s", obj.split(self._base))
        if kind is bytes and self._base_b in obj:
            return ("b", obj.split(self._base_b))
        return None


class _Unpickler(pickle.Unpickler):
    """Rebuilds those URLs on the API host's root now (``base``)."""

    def __init__(self, file: io.BytesIO, base: str) -> None:
        super().__init__(file)
        self._base = base + "/"

    def persistent_load(self, pid: Any) -> Any:
        kind, parts = pid
        if kind == "s":
            return self._base.join(parts)
        if kind == "b":
            return self._base.encode().join(parts)
        raise pickle.UnpicklingError(f"unknown persistent id {kind!r}")


class StateDir:
    """One state dir, held (:meth:`acquire`) by the process serving its world."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.file = self.root / SIM_STATE_FILE
        #: World.data_dir of the world kept here (absolute: file paths in the world are).
        self.data_dir = self.root.absolute() / SIM_STATE_DATA
        self._fd: int | None = None
        self._write_lock = threading.Lock()
        self._dumped = 0  # the sequence number of the newest dump
        self._written = 0  # ... and of the newest one on disk

    # ------------------------------------------------------------------ lock
    def acquire(self) -> None:
        """Create the dir if need be and lock it; :class:`StateInUse` when another has it."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.root / SIM_STATE_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise self._unusable(exc.strerror or str(exc)) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
            os.close(fd)
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise self._unusable(exc.strerror or str(exc)) from None
            by = f" (pid {holder})" if holder.isdigit() else ""
            raise StateInUse(
                f"the simulator state in {self.root} is in use by another genbatch command{by}",
                self.root,
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        for stale in self.root.glob(f"{SIM_STATE_FILE}.*.tmp"):  # a save cut off by a kill
            stale.unlink(missing_ok=True)

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None

    def check(self) -> None:
        """Refuse a dir that holds someone else's files (``rm -r`` is the advice we give).

        Call before anything is written there (the world's data dir, the lock).
        """
        if not self.root.is_dir():
            return
        ours = {SIM_STATE_FILE, SIM_STATE_DATA, SIM_STATE_LOCK}
        names = {p.name for p in self.root.iterdir()}
        if names and not names & ours:
            raise StateUnreadable(
                f"{self.root} holds other files and no simulator state; "
                "give the simulator an empty or new dir",
                self.root,
            )

    def _unusable(self, why: str) -> StateUnreadable:
        return StateUnreadable(f"cannot use {self.root} for the simulator state: {why}", self.root)

    # ------------------------------------------------------------------ load
    def exists(self) -> bool:
        return self.file.is_file()

    def _unreadable(self, why: str) -> StateUnreadable:
        return StateUnreadable(
            f"the simulator state in {self.root} cannot be read ({why}); "
            f"start over with `rm -r {shlex.quote(str(self.root))}`",
            self.root,
        )

    def read(self, world: World) -> bytes:
        """The saved world's pickle, once its header says ``world``'s code can restore it."""
        try:
            blob = self.file.read_bytes()
        except OSError as exc:
            raise self._unreadable(exc.strerror or str(exc)) from None
        if not blob.startswith(_MAGIC):
            raise self._unreadable(f"{SIM_STATE_FILE} is not a saved simulator world")
        line, sep, body = blob[len(_MAGIC) :].partition(b"\n")
        try:
            header = json.loads(line) if sep else None
        except ValueError:
            header = None
        if not isinstance(header, dict):
            raise self._unreadable(f"{SIM_STATE_FILE} has a damaged header")
        if header.get("format") != SIM_STATE_FORMAT:
            raise self._unreadable(
                f"written by another genbatch version: format {header.get('format')}, "
                f"this one reads {SIM_STATE_FORMAT}"
            )
        if header.get("layout") != layout(world):
            raise self._unreadable("written by another genbatch version: its layout differs")
        return body

    def load(self, world: World, body: bytes) -> None:
        """Restore the saved world (:meth:`read`'s ``body``) into ``world``, once it listens."""
        try:
            state = _Unpickler(io.BytesIO(body), world.base_url).load()
        except Exception as exc:  # a truncated or damaged pickle fails in many ways
            raise self._unreadable(f"{SIM_STATE_FILE} is damaged: {type(exc).__name__}") from None
        if not isinstance(state, dict) or set(state) != set(world.snapshot()):
            raise self._unreadable(f"{SIM_STATE_FILE} is damaged: not a saved world")
        world.restore(state)

    # ------------------------------------------------------------------ save
    def dump(self, world: World) -> tuple[bytes, int]:
        """The world as file bytes, and the dump's sequence number (:meth:`write`)."""
        header = {"format": SIM_STATE_FORMAT, "layout": layout(world), "saved_at": iso(time.time())}
        buf = io.BytesIO()
        buf.write(_MAGIC + json.dumps(header).encode() + b"\n")
        _Pickler(buf, world.base_url).dump(world.snapshot())
        self._dumped += 1
        return buf.getvalue(), self._dumped

    def write(self, blob: bytes, seq: int) -> None:
        """Replace the saved world atomically, unless a newer dump is already on disk.

        Thread-safe: a periodic save written from a worker thread and the final
        one never interleave, and an older dump never replaces a newer one.
        """
        with self._write_lock:
            if seq <= self._written:
                return
            tmp = self.file.with_name(f"{SIM_STATE_FILE}.{os.getpid()}.tmp")
            try:
                with tmp.open("wb") as fh:
                    fh.write(blob)
                    fh.flush()
                    os.fsync(fh.fileno())
                tmp.replace(self.file)
                dir_fd = os.open(self.root, os.O_RDONLY)
                try:
                    os.fsync(dir_fd)
                finally:
                    os.close(dir_fd)
            except OSError as exc:
                tmp.unlink(missing_ok=True)
                raise StateUnreadable(
                    f"could not save the simulator state in {self.root}: {exc.strerror or exc}",
                    self.root,
                ) from None
            self._written = seq

    def save(self, world: World) -> None:
        """Dump and write now (the final save): :class:`SimStateError` says why not."""
        try:
            dumped = self.dump(world)
        except Exception as exc:  # something in the world that does not pickle
            raise StateUnreadable(
                f"could not save the simulator state in {self.root}: {type(exc).__name__}: {exc}",
                self.root,
            ) from None
        self.write(*dumped)


async def autosave(state: StateDir, world: World) -> None:
    """Save ``world`` every :data:`SIM_STATE_SAVE_EVERY` s while it changes (cancel to stop).

    Pickling runs on the loop (the world must not change under it), writing in a
    thread; a failed save is logged and retried, and the final save says it.
    """
    seen = revision(world)
    pause = SIM_STATE_SAVE_EVERY
    while True:
        await asyncio.sleep(pause)
        now = revision(world)
        if now == seen:
            continue
        started = time.perf_counter()
        try:
            blob, seq = state.dump(world)
        except Exception:  # the final save will say it; the world keeps serving
            log.exception("sim: saving the world to %s failed", state.root)
            continue
        pause = max(SIM_STATE_SAVE_EVERY, (time.perf_counter() - started) / SIM_STATE_SAVE_SHARE)
        try:
            await asyncio.to_thread(state.write, blob, seq)
        except SimStateError as exc:
            log.warning("sim: %s", exc)
            continue
        seen = now


async def stop_autosave(task: asyncio.Task[None] | None) -> None:
    """Cancel an :func:`autosave` task and wait for it (a write in flight completes)."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
