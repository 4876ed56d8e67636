"""Report tests: headless Chromium (Debian's package), installed on first use when missing.

Playwright's own browser download cannot reach its host here, so the page is
opened by the distribution's ``chromium`` through its command line.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")


def _apt(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    return subprocess.run(["apt-get", *args], env=env, capture_output=True, text=True, timeout=1200)


@pytest.fixture(scope="session")
def chromium() -> str:
    """The path of a headless-capable Chromium; installs Debian's package if it is missing."""
    if not CHROMIUM.is_file():
        done = _apt("install", "-y", "-q", "chromium")
        if done.returncode != 0:  # no package lists yet, or stale ones
            updated = _apt("update", "-q")
            if updated.returncode != 0:
                pytest.fail(f"apt-get update failed:\n{updated.stderr[-3000:]}")
            done = _apt("install", "-y", "-q", "chromium")
        if done.returncode != 0 or not CHROMIUM.is_file():
            pytest.fail(f"apt-get install -y chromium failed:\n{done.stderr[-3000:]}")
    return str(CHROMIUM)
