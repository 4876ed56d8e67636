"""Safe names: hostile row values never become paths outside the output dir."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from genbatch.engine.naming import (
    NameAllocator,
    UnsafePathError,
    open_nofollow,
    resolve_inside,
    safe_filename,
    safe_join,
    sanitize,
    split_ext,
)


@pytest.mark.parametrize(
    "raw",
    [
        "../../x",
        "..",
        ".",
        "/etc/passwd",
        "C:\\Windows\\system32",
        "a\x00b",
        "line\nbreak",
        "CON",
        "con.txt",
        "Nul",
        "COM1",
        "lpt9.mp4",
        "trailing. ",
        "   ",
        "",
        "\u202egpj.exe",
        ".hidden",
    ],
)
def test_hostile_names_become_one_harmless_component(raw: str) -> None:
    name = safe_filename(raw, ext=".mp4")
    assert "/" not in name and "\\" not in name and "\x00" not in name
    assert not name.startswith(".")
    assert ".." not in name
    stem = name.removesuffix(".mp4")
    assert stem.split(".")[0].casefold() not in {"con", "nul", "com1", "lpt9", "prn", "aux"}
    assert not stem.endswith((".", " "))
    assert name != ".mp4"
    # Changed names carry a hash of the original, so they stay distinct.
    assert name.endswith(".mp4")


def test_clean_names_are_kept_verbatim() -> None:
    assert safe_filename("row-001", ext=".mp4") == "row-001.mp4"
    assert safe_filename("café_42") == "café_42"


def test_unicode_is_nfc_normalised() -> None:
    decomposed = "cafe\u0301"
    composed = "caf\u00e9"
    assert sanitize(decomposed) == composed
    # The decomposed input was changed by normalisation, so it gets a hash.
    assert safe_filename(decomposed) != safe_filename(composed)
    assert safe_filename(decomposed).startswith(composed + "-")


def test_different_raw_strings_never_share_a_name() -> None:
    raws = ["../x", "__x", "_._x", "/x", "\\x", "x", ".x", "x.", "x "]
    names = {safe_filename(r) for r in raws}
    assert len(names) == len(raws)


def test_length_is_capped_in_utf8_bytes_without_splitting_chars() -> None:
    name = safe_filename("é" * 500, ext=".mp4")
    assert len(name.encode()) <= 120 + 11 + 4
    name.encode("utf-8").decode("utf-8")  # still valid UTF-8


def test_bad_extension_is_refused() -> None:
    with pytest.raises(ValueError):
        safe_filename("x", ext="/../mp4")


def test_split_ext() -> None:
    assert split_ext("a.b.mp4") == ("a.b", ".mp4")
    assert split_ext("noext") == ("noext", "")
    assert split_ext(".mp4") == (".mp4", "")
    assert split_ext("x.has space") == ("x.has space", "")


@given(st.text(max_size=300))
def test_any_text_yields_a_single_safe_component(raw: str) -> None:
    name = safe_filename(raw, ext=".mp4")
    assert os.path.basename(name) == name
    assert name not in {".", ".."}
    assert "\x00" not in name
    assert len(name.encode("utf-8")) <= 255


def test_allocator_is_unique_case_insensitively_and_deterministic() -> None:
    a = NameAllocator()
    first = [a.assign("r1", "Hook.mp4"), a.assign("r2", "hook.mp4"), a.assign("r3", "HOOK.mp4")]
    assert first[0] == "Hook.mp4"
    assert len({n.casefold() for n in first}) == 3
    b = NameAllocator()
    again = [b.assign("r1", "Hook.mp4"), b.assign("r2", "hook.mp4"), b.assign("r3", "HOOK.mp4")]
    assert again == first
    assert len(a) == 3


def test_allocator_sanitises(tmp_path: Path) -> None:
    name = NameAllocator().assign("../../x", "../../x.mp4")
    assert name.endswith(".mp4") and "/" not in name
    assert safe_join(tmp_path, name).parent == tmp_path.resolve()


def test_safe_join_refuses_traversal_and_absolute(tmp_path: Path) -> None:
    # Structural checks only: Windows device names are safe_filename's job.
    for bad in ["../x", "/etc/passwd", "..", ".", "a/b", "a\\b", "x\x00", "x\n", ""]:
        with pytest.raises(UnsafePathError):
            safe_join(tmp_path, bad)


def test_safe_join_refuses_a_planted_symlink(tmp_path: Path) -> None:
    videos = tmp_path / "videos"
    videos.mkdir()
    outside = tmp_path.parent / f"{tmp_path.name}-outside.mp4"
    (videos / "r1.mp4").symlink_to(outside)
    with pytest.raises(UnsafePathError, match="symlink"):
        safe_join(tmp_path, "videos", "r1.mp4")
    # The download's temp sibling is checked too.
    (videos / "r2.mp4.part").symlink_to(outside)
    with pytest.raises(UnsafePathError, match="symlink"):
        safe_join(tmp_path, "videos", "r2.mp4")
    assert not outside.exists()


def test_safe_join_refuses_a_symlinked_subdirectory(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    (out / "videos").symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(UnsafePathError, match="symlink"):
        safe_join(out, "videos", "r1.mp4")


def test_safe_join_refuses_a_directory_as_final_file(tmp_path: Path) -> None:
    (tmp_path / "r1.mp4").mkdir()
    with pytest.raises(UnsafePathError, match="not a regular file"):
        safe_join(tmp_path, "r1.mp4")


def test_safe_join_happy_path(tmp_path: Path) -> None:
    path = safe_join(tmp_path, "videos", "r1.mp4")
    assert path == tmp_path.resolve() / "videos" / "r1.mp4"


def test_open_nofollow_refuses_a_symlink_even_after_the_check(tmp_path: Path) -> None:
    target = tmp_path / "victim"
    target.write_text("keep")
    link = tmp_path / "r1.mp4"
    path = safe_join(tmp_path, "r1.mp4")  # checked while absent ...
    link.symlink_to(target)  # ... then planted (the race)
    with pytest.raises(UnsafePathError):
        open_nofollow(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    assert target.read_text() == "keep"


def test_open_nofollow_writes_a_regular_file(tmp_path: Path) -> None:
    fd = open_nofollow(tmp_path / "ok.bin")
    try:
        os.write(fd, b"x")
    finally:
        os.close(fd)
    assert (tmp_path / "ok.bin").read_bytes() == b"x"


def test_resolve_inside(tmp_path: Path) -> None:
    (tmp_path / "assets").mkdir()
    (tmp_path / "assets" / "song.mp3").write_bytes(b"id3")
    assert resolve_inside(tmp_path, "assets/song.mp3") == (tmp_path / "assets/song.mp3").resolve()
    for bad in ["../secret", "/etc/passwd", "", "assets/../../x", "a\x00"]:
        with pytest.raises(UnsafePathError):
            resolve_inside(tmp_path, bad)
    (tmp_path / "escape").symlink_to("/etc")
    with pytest.raises(UnsafePathError):
        resolve_inside(tmp_path, "escape/passwd")
