"""The simulator as its own process, for the benchmarks: start it, read its URL, stop it.

Every benchmark measures one side apart from the other, so each runs
``python -m genbatch sim`` as a child process; this is the one copy of the
spawn / read-the-URL-line / stop sequence.  Benchmarks run as scripts
(``python benchmarks/x.py``), so they import this as ``_sim``.
"""

from __future__ import annotations

import signal
import subprocess
import sys


def start_sim(key: str, *flags: str) -> tuple[subprocess.Popen[str], str]:
    """Spawn the sim on 127.0.0.1, a free port, accepting ``key``; return it and its base URL.

    ``flags`` are further ``genbatch sim`` options (``--rate``, ``--burst``, ...).
    Blocks until the sim prints ``genbatch sim listening on URL``; exits the
    benchmark when it prints anything else first.
    """
    cmd = [
        sys.executable, "-m", "genbatch", "sim", "--host", "127.0.0.1", "--port", "0",
        "--api-key", key, *flags,
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if "listening on" not in line:
        proc.kill()
        raise SystemExit(f"sim did not start: {line!r}")
    return proc, line.rsplit(" ", 1)[-1]


def stop_sim(
    proc: subprocess.Popen[str], timeout: float, sig: signal.Signals = signal.SIGTERM
) -> None:
    """Signal the sim (SIGTERM unless told) and wait up to ``timeout`` seconds for it."""
    proc.send_signal(sig)
    proc.wait(timeout=timeout)
