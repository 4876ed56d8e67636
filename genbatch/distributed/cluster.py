"""Reach Ray: a cluster the user names, or a private one started on loopback.

``--ray ADDRESS`` joins the user's cluster (``ray start --head`` prints the
address); the cluster's own settings apply.  ``--ray`` alone starts Ray on this
machine for the run and stops it after, kept to this machine and this run:

* ``RAY_USAGE_STATS_ENABLED=0`` — no usage report leaves the machine;
* ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` — Ray's own "no cluster" mode, in which
  it takes the loopback address for the node's instead of asking the routing
  table which interface reaches the internet; read when Ray is imported, so it
  is set before the (lazy) import;
* ``_node_ip_address=127.0.0.1`` and ``dashboard_host=127.0.0.1`` — every Ray
  process (GCS, raylet, object manager, workers, agents) listens on loopback;
* no dashboard (``include_dashboard=False``);
* a fresh temp dir (``_temp_dir`` and ``RAY_TMPDIR``; Ray writes its session,
  sockets and logs there, and the address file that ``ray.init()`` would
  otherwise find and join), removed when the run ends;
* token authentication (Ray's default for a cluster it starts) with a token
  of our own in that dir (``RAY_AUTH_TOKEN_PATH``): only processes of this run
  can join, and Ray writes no token into the home directory.

docs/ray.md says the same for people.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Final

from genbatch.errors import InputError

#: What a plain install says when --ray needs Ray.
DISTRIBUTED_INSTALL_HINT: Final = "pip install 'genbatch[ray]'"
#: Where a private Ray listens.
DISTRIBUTED_LOOPBACK: Final = "127.0.0.1"
#: Environment that keeps a private Ray private (see the module docstring).
DISTRIBUTED_RAY_ENV: Final = {
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
}
#: Ray's object store for a private cluster: shards pass summaries, not data.
DISTRIBUTED_OBJECT_STORE_BYTES: Final = 100 * 1024 * 1024
#: Ray namespace of the run's actors.
DISTRIBUTED_NAMESPACE: Final = "genbatch"

__all__ = ["DISTRIBUTED_INSTALL_HINT", "RayConnection", "RayMissing", "connect", "import_ray"]


class RayMissing(InputError):
    """``--ray`` without Ray installed (exit 2, saying how to install it)."""


def import_ray() -> ModuleType:
    """Ray, imported with the private-cluster environment set; :class:`RayMissing` if absent."""
    for name, value in DISTRIBUTED_RAY_ENV.items():
        os.environ[name] = value
    try:
        import ray
    except ImportError:
        raise RayMissing(f"--ray needs Ray: {DISTRIBUTED_INSTALL_HINT}") from None
    return ray


@dataclass(slots=True)
class RayConnection:
    """This process's connection to Ray, and what to undo when the run ends."""

    address: str | None
    #: Ray was started here for this run (and is stopped by :meth:`close`).
    private: bool
    #: This process connected (and disconnects in :meth:`close`).
    connected: bool
    #: Seconds it took to start or join Ray.
    seconds: float
    temp_dir: Path | None = None
    cpus: float = 0.0
    nodes: int = 0
    _ray: ModuleType | None = field(default=None, repr=False)

    def close(self) -> None:
        ray = self._ray
        if ray is not None and self.connected:
            ray.shutdown()
        if self.temp_dir is not None:
            shutil.rmtree(self.temp_dir, ignore_errors=True)


def connect(address: str | None, *, cpus: int) -> RayConnection:
    """Join the cluster at ``address``, or start a private one with ``cpus`` CPUs.

    Ray counts CPUs, not cores: a shard is one event loop waiting on the
    network, so a private Ray offers as many as there are shards even on a
    smaller machine.  A process already connected (a test's cluster) is used
    as it is.
    """
    ray = import_ray()
    started = time.monotonic()
    if ray.is_initialized():
        return _connection(ray, address, False, False, started, None)
    if address is not None:
        try:
            ray.init(
                address=address,
                namespace=DISTRIBUTED_NAMESPACE,
                log_to_driver=False,
                include_dashboard=False,
            )
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise InputError(f"--ray {address}: cannot join that Ray cluster: {exc}") from None
        return _connection(ray, address, False, True, started, None)
    base = Path(tempfile.mkdtemp(prefix="genbatch-ray-"))
    session = base / "ray"
    session.mkdir()
    token = base / "auth_token"
    fd = os.open(token, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_hex(32))
    # Ray turns token mode on itself for a cluster it starts (RAY_AUTH_MODE
    # unset) and then finds this token instead of writing one to ~/.ray.
    os.environ.update({"RAY_TMPDIR": str(base), "RAY_AUTH_TOKEN_PATH": str(token)})
    try:
        ray.init(
            num_cpus=cpus,
            namespace=DISTRIBUTED_NAMESPACE,
            include_dashboard=False,
            dashboard_host=DISTRIBUTED_LOOPBACK,
            log_to_driver=False,
            object_store_memory=DISTRIBUTED_OBJECT_STORE_BYTES,
            _node_ip_address=DISTRIBUTED_LOOPBACK,
            _temp_dir=str(session),
        )
    except (ConnectionError, RuntimeError, ValueError, OSError) as exc:
        shutil.rmtree(base, ignore_errors=True)
        raise InputError(f"--ray: cannot start Ray on this machine: {exc}") from None
    return _connection(ray, None, True, True, started, base)


def _connection(
    ray: ModuleType,
    address: str | None,
    private: bool,
    connected: bool,
    started: float,
    temp_dir: Path | None,
) -> RayConnection:
    resources = ray.cluster_resources()
    nodes = sum(1 for n in ray.nodes() if n.get("Alive"))
    return RayConnection(
        address=address,
        private=private,
        connected=connected,
        seconds=time.monotonic() - started,
        temp_dir=temp_dir,
        cpus=float(resources.get("CPU", 0.0)),
        nodes=nodes,
        _ray=ray,
    )
