"""A two-node Ray cluster on loopback for the sharded-run tests, and helpers.

The cluster (``ray.cluster_utils.Cluster``: a head and a second node, two CPUs
each, every process on 127.0.0.1, no dashboard, no usage stats, a fresh temp dir
and its own auth token) is started once per module that asks for it and shut
down after.  The simulator runs as its own process (``SimProcess``), as it does
for the reliability tests.
"""

from __future__ import annotations

import os
import secrets
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "run"))

#: Ray's knobs for a private, loopback-only cluster (docs/ray.md); set before Ray
#: is imported (it reads some of them at import).
RAY_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
LOOPBACK = "127.0.0.1"
NODE_CPUS = 2
OBJECT_STORE = 80 * 1024 * 1024


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[str]:
    """A running two-node cluster this process is connected to; its address."""
    saved = {k: os.environ.get(k) for k in (*RAY_ENV, "RAY_TMPDIR", "RAY_AUTH_TOKEN_PATH")}
    base = Path(tempfile.mkdtemp(prefix="gb-ray-test-"))
    session = base / "ray"
    session.mkdir()
    token = base / "auth_token"
    token.write_text(secrets.token_hex(32))
    token.chmod(0o600)
    os.environ.update(RAY_ENV)
    os.environ.update({"RAY_TMPDIR": str(base), "RAY_AUTH_TOKEN_PATH": str(token)})
    import ray
    from ray.cluster_utils import Cluster

    node = {
        "num_cpus": NODE_CPUS,
        "node_ip_address": LOOPBACK,
        "temp_dir": str(session),
        "object_store_memory": OBJECT_STORE,
    }
    cluster = Cluster(
        initialize_head=True,
        head_node_args={**node, "include_dashboard": False, "dashboard_host": LOOPBACK},
    )
    try:
        cluster.add_node(**node)
        ray.init(address=cluster.address, log_to_driver=False, namespace="genbatch-test")
        assert len([n for n in ray.nodes() if n["Alive"]]) == 2
        yield cluster.address
    finally:
        ray.shutdown()
        cluster.shutdown()
        shutil.rmtree(base, ignore_errors=True)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


class LedgerWatch:
    """Every API request the simulator saw, from its ledger's ring of recent calls.

    The ledger keeps the last 200 requests; polled often enough, consecutive
    reads overlap and together hold every request (``gaps`` counts reads that
    did not reach back to the previous one: then requests may be missing).
    """

    def __init__(self, sim: Any, every: float = 0.4) -> None:
        self.sim = sim
        self.every = every
        self.seen: dict[tuple[Any, ...], None] = {}
        self.gaps = 0
        self.reads = 0
        self._last: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> LedgerWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.read()

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            self.read()

    def read(self) -> None:
        log = self.sim.ledger()["requests"]["log"]
        self.reads += 1
        fields = ("t", "method", "route", "status", "api_key_hash")
        entries = [tuple(e[k] for k in fields) for e in log]
        if self._last is not None and entries and entries[0][0] > self._last:
            self.gaps += 1  # the ring turned over since the last read
        for e in entries:
            self.seen[e] = None
        if entries:
            self._last = max(self._last or 0.0, entries[-1][0])

    def requests(self) -> list[tuple[Any, ...]]:
        """API calls (with a key: not the CDN, not the admin API), by time."""
        return sorted((e for e in self.seen if e[4]), key=lambda e: e[0])


def max_in_window(times: list[float], window: float) -> int:
    """The most events in any ``window`` seconds (each event starting one)."""
    best, j = 0, 0
    for i, t in enumerate(times):
        while times[j] < t - window:
            j += 1
        best = max(best, i - j + 1)
    return best


def wait_for(predicate: Any, timeout: float, every: float = 0.1) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(every)
    return False
