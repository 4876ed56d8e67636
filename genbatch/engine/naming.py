"""Safe file names from row-supplied strings, and joins that cannot escape.

Row values (``row_id``, a recipe's ``{hook}.mp4`` pattern) end up as file
names in ``videos/``.  A table is untrusted input: ``../../x``, ``/etc/x``,
``CON``, NUL bytes, a symlink someone planted in the output dir — none of it
may write outside the output directory (docs/design.md §7 I6).

Two layers:

* :func:`safe_filename` turns any string into one harmless path component.
  Whenever cleaning changed the string, a short hash of the *original* is
  appended, so two different inputs that clean to the same text still get
  different names.  :class:`NameAllocator` adds case-insensitive uniqueness
  across a whole table (patterns like ``{hook}.mp4`` repeat; macOS and
  Windows file systems fold case), counting each video's thumbnail name
  (:func:`thumbnail_name`) as taken too, so a thumbnail never lands on
  another row's video.
* :func:`safe_join` re-checks a component and walks the directory chain with
  ``lstat`` so no symlink is followed; :func:`open_nofollow` opens the final
  file with ``O_NOFOLLOW`` to close the check-then-open race.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import unicodedata
from pathlib import Path
from typing import Final

from genbatch.errors import InputError

#: UTF-8 bytes kept of a name's stem (ext4/APFS allow 255 per component; the
#: rest is headroom for the hash suffix, the extension and `.part`).
ENGINE_NAME_MAX_BYTES: Final = 120
#: Hex chars of the sha256 suffix that keeps sanitised names distinct.
ENGINE_NAME_HASH_CHARS: Final = 10
#: The render's thumbnail is kept beside its video as ``<video stem>.jpg``.
ENGINE_THUMBNAIL_EXT: Final = ".jpg"

__all__ = [
    "ENGINE_THUMBNAIL_EXT",
    "NameAllocator",
    "UnsafePathError",
    "open_nofollow",
    "resolve_inside",
    "safe_filename",
    "safe_join",
    "sanitize",
    "split_ext",
    "thumbnail_name",
]


class UnsafePathError(InputError, ValueError):
    """A path would leave its base directory or pass through a symlink."""


# Path separators, Windows-illegal characters, and every control character
# (C0, DEL, C1) including NUL: none belongs in a portable file name.
_BAD_CHARS = re.compile(r'[/\\<>:"|?*\x00-\x1f\x7f-\x9f]')
# Unicode line/paragraph separators and bidi overrides fool humans reading
# a listing ("gpj.exe" shown as "exe.jpg").
_INVISIBLE = re.compile("[\u2028\u2029\u202a-\u202e\u2066-\u2069\u200b-\u200f\ufeff]")
# What no single path component may contain, on any platform we write to.
_BAD_PATH_CHARS = re.compile(r"[/\\\x00-\x1f\x7f]")
_DOTDOT = re.compile(r"\.{2,}")
_WINDOWS_RESERVED = frozenset(
    {"con", "prn", "aux", "nul"}
    | {f"com{c}" for c in "123456789¹²³"}
    | {f"lpt{c}" for c in "123456789¹²³"}
)


#: What ext4, APFS and NTFS allow per path component.
_MAX_COMPONENT_BYTES = 255


def _short_hash(text: str) -> str:
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    return digest[:ENGINE_NAME_HASH_CHARS]


def _cap_bytes(text: str, max_bytes: int) -> str:
    """Cut ``text`` to at most ``max_bytes`` of UTF-8 without splitting a char."""
    raw = text.encode("utf-8", "surrogatepass")
    if len(raw) <= max_bytes:
        return text
    return raw[:max_bytes].decode("utf-8", "ignore")


def sanitize(raw: str, *, max_bytes: int = ENGINE_NAME_MAX_BYTES) -> str:
    """Return ``raw`` cleaned into one portable path component (maybe changed).

    NFC first, so visually equal names compare equal.  The result is never
    empty, never ``.``/``..``, never starts with a dot (hidden files, and the
    start of a ``..``), never ends with a dot or space (Windows strips them),
    and is never a Windows device name such as ``CON`` or ``nul.txt``.
    """
    text = unicodedata.normalize("NFC", raw)
    text = text.encode("utf-8", "replace").decode("utf-8")  # lone surrogates
    text = _INVISIBLE.sub("", text)
    text = _BAD_CHARS.sub("_", text)
    text = _DOTDOT.sub("_", text)
    text = text.strip(" ")
    text = text.lstrip(".")
    text = _cap_bytes(text, max_bytes)
    text = text.rstrip(". ")
    if not text:
        return "_"
    if text.split(".", 1)[0].rstrip(" ").casefold() in _WINDOWS_RESERVED:
        text = "_" + text
    return text


def safe_filename(raw: str, *, ext: str = "", max_bytes: int = ENGINE_NAME_MAX_BYTES) -> str:
    """Return a safe, deterministic file name for ``raw`` (+ ``ext``).

    ``raw`` is the stem; ``ext`` (e.g. ``".mp4"``) is appended after cleaning.
    If cleaning changed anything, ``-<hash of raw>`` is added before ``ext``:
    ``"../../x"`` and ``"__x"`` therefore never share a file.
    """
    if ext and (not ext.startswith(".") or sanitize(ext[1:]) != ext[1:]):
        raise ValueError(f"extension {ext!r} is not a plain '.suffix'")
    stem = sanitize(raw, max_bytes=max_bytes)
    if stem != raw:
        stem = f"{stem}-{_short_hash(raw)}"
    return stem + ext


def split_ext(name: str) -> tuple[str, str]:
    """Split ``"a.b.mp4"`` into ``("a.b", ".mp4")``; a short alnum suffix only."""
    stem, dot, ext = name.rpartition(".")
    if dot and stem and 1 <= len(ext) <= 8 and ext.isascii() and ext.isalnum():
        return stem, "." + ext
    return name, ""


def thumbnail_name(video: str) -> str:
    """The thumbnail's file name beside ``video`` (a safe name): ``<stem>.jpg``.

    A video itself named ``x.jpg`` gets ``x.thumb.jpg``, never its own name.
    """
    stem, _ = split_ext(video)
    name = stem + ENGINE_THUMBNAIL_EXT
    if name.casefold() == video.casefold():
        name = f"{stem}.thumb{ENGINE_THUMBNAIL_EXT}"
    return name


class NameAllocator:
    """Hands out names unique across a table, case-insensitively.

    Deterministic for a given table order: the first holder of a name keeps
    it, later ones get ``-<hash of their key>``.  A video's thumbnail name is
    reserved with it: ``x.mp4`` then a video named ``x.jpg`` would otherwise
    share a file.  Memory is two short strings per row, which the
    duplicate-``row_id`` check already pays for.
    """

    def __init__(self) -> None:
        self._taken: set[str] = set()
        self._count = 0

    def _clashes(self, name: str) -> bool:
        return name.casefold() in self._taken or thumbnail_name(name).casefold() in self._taken

    def assign(self, key: str, raw_name: str) -> str:
        """Return a safe unique name for ``raw_name`` (e.g. ``"{row_id}.mp4"``)."""
        stem, ext = split_ext(raw_name)
        name = safe_filename(stem, ext=ext)
        if self._clashes(name):
            name = safe_filename(f"{sanitize(stem)}-{_short_hash(key)}", ext=ext)
            # A second clash would need a sha256 prefix collision *and* a
            # crafted raw name; refuse rather than loop.
            if self._clashes(name):
                raise UnsafePathError(f"cannot derive a unique file name for {key!r}")
        self._taken.add(name.casefold())
        self._taken.add(thumbnail_name(name).casefold())
        self._count += 1
        return name

    def __len__(self) -> int:
        return self._count


def _check_component(name: str) -> None:
    """Structural check: one component that cannot climb or hide a separator.

    Looser than :func:`sanitize` on purpose (``.genbatch.lock`` is fine here);
    names built from row values go through :func:`safe_filename` first.
    """
    if (
        not name
        or name in {".", ".."}
        or _BAD_PATH_CHARS.search(name)
        or len(name.encode("utf-8", "surrogatepass")) > _MAX_COMPONENT_BYTES
    ):
        raise UnsafePathError(f"{name!r} is not a safe single file name")


def _lstat_or_none(path: Path) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None


def safe_join(base: Path, *parts: str, companions: tuple[str, ...] = (".part",)) -> Path:
    """Join safe components onto ``base``, refusing symlinks along the way.

    Every part must already be a safe single component (see
    :func:`safe_filename`); intermediate parts that exist must be real
    directories, the final one — and each ``final + companion`` sibling such
    as the download's ``.part`` file — must be absent or a regular file.
    ``base`` itself is resolved once: it is the user's chosen directory and
    may legitimately sit behind a symlink.
    """
    if not parts:
        raise UnsafePathError("safe_join needs at least one name")
    root = Path(os.path.realpath(base))
    path = root
    for i, part in enumerate(parts):
        _check_component(part)
        path = path / part
        last = i == len(parts) - 1
        targets = [path] + ([path.with_name(part + c) for c in companions] if last else [])
        for target in targets:
            st = _lstat_or_none(target)
            if st is None:
                continue
            if stat.S_ISLNK(st.st_mode):
                raise UnsafePathError(f"refusing to follow a symlink at {target}")
            if not last and not stat.S_ISDIR(st.st_mode):
                raise UnsafePathError(f"{target} is not a directory")
            if last and not stat.S_ISREG(st.st_mode):
                raise UnsafePathError(f"{target} exists and is not a regular file")
    # Belt and braces: the joined path must still be lexically under root.
    if os.path.commonpath([root, os.path.normpath(path)]) != str(root):
        raise UnsafePathError(f"{path} is outside {root}")
    return path


def resolve_inside(base: Path, relative: str) -> Path:
    """Resolve a row-supplied relative path (an asset to upload) within ``base``.

    Unlike :func:`safe_join` this accepts sub-directories and symlinks that
    stay inside ``base``: it is for *reading* user files next to the table.
    Absolute paths and anything resolving outside ``base`` are refused.
    """
    if not relative or "\x00" in relative or os.path.isabs(relative):
        raise UnsafePathError(f"{relative!r} must be a relative path inside {base}")
    root = Path(os.path.realpath(base))
    target = Path(os.path.realpath(root / relative))
    if os.path.commonpath([root, target]) != str(root):
        raise UnsafePathError(f"{relative!r} resolves outside {root}")
    return target


def open_nofollow(path: Path, flags: int = os.O_WRONLY | os.O_CREAT, mode: int = 0o644) -> int:
    """``os.open`` with ``O_NOFOLLOW``: a symlink at ``path`` raises, never opens.

    Closes the window between :func:`safe_join`'s check and the open.
    """
    try:
        return os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    except OSError as exc:
        if stat.S_ISLNK(getattr(_lstat_or_none(path), "st_mode", 0)):
            raise UnsafePathError(f"refusing to follow a symlink at {path}") from exc
        raise


def keep_earlier(path: Path) -> Path | None:
    """Move an earlier file at ``path`` aside as ``NAME.vN.SUFFIX`` (the first N
    free) so a new one can take its name; the moved path, or None if none was there.

    genbatch never overwrites a video it is about to replace: the earlier one
    may be a user's or an earlier run's.
    """
    if not path.is_file() or path.is_symlink():
        return None
    n = 1
    while (kept := path.with_name(f"{path.stem}.v{n}{path.suffix}")).exists():
        n += 1
    path.rename(kept)
    return kept
