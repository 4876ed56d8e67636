"""The README's examples stay true: its client example runs verbatim against the sim."""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import sys
from pathlib import Path

from genbatch.sim.media import read_manifest
from genbatch.sim.serve import SimServer

README = Path(__file__).resolve().parents[1] / "README.md"


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


def test_quick_start_is_the_two_make_commands() -> None:
    text = README.read_text(encoding="utf-8")
    quick = text.split("## Quick start", 1)[1].split("##", 1)[0]
    commands = re.findall(r"^make \w+", quick, re.M)
    assert commands == ["make demo", "make test"]


def _block(marker: str) -> str:
    (block,) = [b for b in _python_blocks() if marker in b]
    return block


async def test_client_example_runs_verbatim(sim: SimServer, tmp_path: Path) -> None:
    block = _block("GenClient")
    script = tmp_path / "example.py"
    script.write_text(block, encoding="utf-8")
    env = {
        **os.environ,
        "GEN_API_KEY": "k1",
        "GEN_API_URL": sim.api_url,
        "GEN_AGENT_URL": sim.agent_url,
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(script),
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 0, err.decode()
    video = (tmp_path / "final_video.mp4").read_bytes()
    digest = hashlib.sha256(video).hexdigest()
    assert f"{len(video)} bytes, sha256 {digest[:12]}" in out.decode()
    manifest = read_manifest(video)
    assert manifest is not None
    assert "The $2 taco at 2am." in str(manifest)
    assert "k1" not in out.decode() + err.decode()


async def test_notebook_example_runs_verbatim(tmp_path: Path) -> None:
    script = tmp_path / "frame.py"
    script.write_text(_block("run_frame"), encoding="utf-8")
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(script),
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    assert proc.returncode == 0, err.decode()
    results = (tmp_path / "outputs" / "tacos" / "results.csv").read_text()
    assert results.count(",completed,") == 2
    videos = sorted(p.name for p in (tmp_path / "outputs" / "tacos" / "videos").glob("*.mp4"))
    assert videos == ["taco-01.mp4", "taco-02.mp4"]
