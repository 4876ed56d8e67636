"""The simulator as a child process: ``python -m genbatch sim`` started, read, stopped.

Benchmarks and process-level tests run the simulator as a process of its own
(its CPU apart from the client's; it outlives a client that is killed, as GEN
would).  This is the one way to do that::

    config = SimConfig(api_keys=("k1",), rate=500, burst=50, time_scale=0.01, seed=1)
    # or a profile: SimConfig.from_profile("queue-50", api_keys=("k1",), time_scale=0.01)
    with SimProcess(config, log=Path("sim.log")) as sim:
        sim.api_url      # "http://127.0.0.1:PORT/v1": the API host's base (GEN_API_URL)
        sim.agent_url    # "http://127.0.0.1:AGENT_PORT/v1": the agent host's (GEN_AGENT_URL)
        sim.url          # "http://127.0.0.1:PORT": the API host's root (admin, CDN)
        sim.ledger()     # GET /_sim/ledger; sim.config(faults="500:0.1"); sim.reset()
    # leaving the block stops it: SIGINT, then SIGTERM, then SIGKILL, waiting
    # ``stop_timeout`` seconds after each signal

:class:`~genbatch.sim.config.SimConfig` says what to serve (the same config
the in-process server takes; :func:`command` turns it into ``genbatch sim``
flags, port 0 meaning a free one).  :class:`SimProcess` starts the child with
stdin closed and stdout and stderr going to ``log`` (a temporary file, removed
on stop, when not given; ``err_log`` splits stderr off) so a chatty simulator
never blocks on a full pipe.  It waits until the child prints ``genbatch sim
listening on API_ROOT (api) and AGENT_ROOT (agent)``
(:attr:`SimProcess.announcement`; the lines after it, ``GEN_API_URL=…``,
``GEN_AGENT_URL=…`` and the demo key, are for people) and raises
:class:`SimLaunchError`, with the log's tail, when the child exits first or
``start_timeout`` passes.
``start()`` / ``stop()`` do the same without a ``with`` block;
``request_stop()`` signals without waiting, to stop several at once.

Standard library only (the admin calls use ``urllib``): importing this starts
neither aiohttp nor the simulator's world.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Final, Self

from genbatch.sim.config import SimConfig

__all__ = ["SimLaunchError", "SimProcess", "command"]

#: What ``genbatch sim`` prints, once, when it accepts connections.
LISTENING: Final = "listening on "
#: The rest of that line: the API host's root, then the agent host's.
_HOSTS: Final = re.compile(r"listening on (\S+) \(api\) and (\S+) \(agent\)")
#: Seconds to wait for that line; seconds to wait after each stop signal.
START_TIMEOUT: Final = 30.0
STOP_TIMEOUT: Final = 10.0
_POLL: Final = 0.02
_ADMIN_KEY_HEADER: Final = "X-Sim-Admin-Key"


class SimLaunchError(RuntimeError):
    """The simulator process did not come up (it exited, or never said where it listens)."""


def command(config: SimConfig, python: str = sys.executable) -> list[str]:
    """The ``genbatch sim`` command line that serves ``config`` (``data_dir`` aside).

    Every setting is spelled out (a profile's values included, never ``--profile``
    itself), so the child serves exactly ``config`` whatever its working directory;
    ``--profile-name`` only labels it.
    """
    rate = 0.0 if config.rate is None else float(config.rate)
    args = [
        python, "-m", "genbatch", "sim",
        "--host", config.host, "--port", str(config.port),
        "--agent-port", str(config.agent_port),
        "--rate", repr(rate), "--burst", str(config.burst),
        "--credits", repr(float(config.credits)),
        "--time-scale", repr(float(config.time_scale)),
        "--seed", str(config.seed),
        "--rate-headers" if config.rate_headers else "--no-rate-headers",
        "--timestamps" if config.timestamps else "--no-timestamps",
        "--job-cap", str(config.job_cap or 0),
        "--capacity", repr(float(config.capacity or 0)),
    ]  # fmt: skip
    for key, (lo, hi) in config.latency:
        args += ["--latency", f"{key}={float(lo)!r}:{float(hi)!r}"]
    if config.profile is not None:
        args += ["--profile-name", config.profile]
    for key in config.api_keys:
        args += ["--api-key", key]
    if config.faults:
        args += ["--faults", config.faults]
    if config.admin_key is not None:
        args += ["--admin-key", config.admin_key]
    if config.legacy_paths:
        args.append("--legacy-paths")
    for key, credits in config.prices:
        args += ["--price", f"{key}={credits!r}"]
    return args


class SimProcess:
    """``python -m genbatch sim`` in a child process; see the module docstring.

    ``log``: the child's stdout (and stderr, unless ``err_log``); ``cwd`` and
    ``env``: the child's (default: ours); ``python``: the interpreter;
    ``stop_signal``: the first signal :meth:`stop` sends (the simulator treats
    SIGINT and SIGTERM alike: it closes its listener and exits 0).
    """

    def __init__(
        self,
        config: SimConfig | None = None,
        *,
        log: Path | None = None,
        err_log: Path | None = None,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        python: str = sys.executable,
        start_timeout: float = START_TIMEOUT,
        stop_timeout: float = STOP_TIMEOUT,
        stop_signal: int = signal.SIGINT,
    ) -> None:
        self.spec = config or SimConfig()
        self.log = log
        self.err_log = err_log
        self.cwd = cwd
        self.env = dict(env) if env is not None else None
        self.python = python
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.stop_signal = stop_signal
        #: The child's announcement line, newline included
        #: ("genbatch sim listening on API_ROOT (api) and AGENT_ROOT (agent)\n").
        self.announcement = ""
        #: "http://HOST:PORT", the API host's root, from the announcement.
        self.url = ""
        #: "http://HOST:AGENT_PORT", the agent host's root, from the announcement.
        self.agent_root = ""
        self._proc: subprocess.Popen[bytes] | None = None
        self._files: list[IO[bytes]] = []
        self._temp_log = False
        self._returncode: int | None = None

    # -- lifecycle --------------------------------------------------------
    def start(self) -> Self:
        """Spawn the child and wait until it listens; :class:`SimLaunchError` if it does not."""
        if self._proc is not None:
            raise RuntimeError("this simulator process is already started")
        if self.log is None:
            fd, name = tempfile.mkstemp(prefix="genbatch-sim-", suffix=".log")
            os.close(fd)
            self.log, self._temp_log = Path(name), True
        out = self.log.open("wb")
        self._files = [out]
        err: IO[bytes] | int = subprocess.STDOUT
        if self.err_log is not None:
            err = self.err_log.open("wb")
            self._files.append(err)
        self._returncode = None
        try:
            self._proc = subprocess.Popen(  # noqa: S603 - our interpreter, our arguments
                command(self.spec, self.python),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                cwd=self.cwd,
                env=self.env,
            )
        except OSError as exc:
            self.stop()
            raise SimLaunchError(f"the simulator did not start: {exc}") from exc
        deadline = time.monotonic() + self.start_timeout
        while True:
            line = self._announced()
            if line is not None:
                hosts = _HOSTS.search(line)
                if hosts is None:
                    why = f"it announced an address this launcher cannot read: {line.strip()}"
                    break
                self.announcement = line
                self.url, self.agent_root = hosts.group(1), hosts.group(2)
                return self
            if self._proc.poll() is not None:
                why = f"it exited with code {self._proc.returncode}"
                break
            if time.monotonic() >= deadline:
                why = f"it did not say where it listens within {self.start_timeout:g} s"
                break
            time.sleep(_POLL)
        tail = self.log_text()[-2000:]
        where = "" if self._temp_log else f" (log: {self.log})"
        self.stop()
        raise SimLaunchError(f"the simulator did not start: {why}{where}\n{tail}".rstrip())

    def request_stop(self, sig: int | None = None) -> None:
        """Send the stop signal (default ``stop_signal``) without waiting for the exit."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(self.stop_signal if sig is None else sig)

    def stop(self, timeout: float | None = None) -> int | None:
        """Stop the child and reap it; its exit code (None if it never started).

        ``stop_signal`` first, then SIGTERM, then SIGKILL, waiting ``timeout``
        (default ``stop_timeout``) seconds after each.  Idempotent.
        """
        proc, self._proc = self._proc, None
        if proc is not None:
            wait = self.stop_timeout if timeout is None else timeout
            for sig in dict.fromkeys((self.stop_signal, signal.SIGTERM, signal.SIGKILL)):
                if proc.poll() is not None:
                    break
                proc.send_signal(sig)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=None if sig == signal.SIGKILL else wait)
            self._returncode = proc.returncode
        for f in self._files:
            f.close()
        self._files = []
        if self._temp_log and self.log is not None:
            self.log.unlink(missing_ok=True)
            self.log, self._temp_log = None, False
        return self._returncode

    def __enter__(self) -> Self:
        """Start it, unless already started (``with SimProcess(...).start() as sim`` works too)."""
        return self if self._proc is not None else self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- state ------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def returncode(self) -> int | None:
        """The exit code once it exited (None while it runs or before it started)."""
        if self._proc is not None:
            return self._proc.poll()
        return self._returncode

    @property
    def api_url(self) -> str:
        """The API host's base URL: ``url + "/v1"``."""
        return f"{self.url}/v1"

    @property
    def agent_url(self) -> str:
        """The agent host's base URL: ``agent_root + "/v1"``."""
        return f"{self.agent_root}/v1"

    @property
    def port(self) -> int:
        """The API host's port (0 before it announced)."""
        return int(self.url.rsplit(":", 1)[1]) if self.url else 0

    @property
    def agent_port(self) -> int:
        """The agent host's port (0 before it announced)."""
        return int(self.agent_root.rsplit(":", 1)[1]) if self.agent_root else 0

    def log_text(self) -> str:
        """What the child wrote so far to ``log`` (and ``err_log``), decoded leniently."""
        parts = []
        for path in (self.log, self.err_log):
            if path is not None:
                with contextlib.suppress(OSError):
                    parts.append(path.read_text(encoding="utf-8", errors="replace"))
        return "".join(parts)

    def _announced(self) -> str | None:
        if self.log is None:
            return None
        with contextlib.suppress(OSError), self.log.open("rb") as f:
            for raw in f:
                line = raw.decode("utf-8", errors="replace")
                if LISTENING in line and line.endswith("\n"):
                    return line
        return None

    # -- the admin API (/_sim/) ---------------------------------------------
    def admin(self, method: str, path: str, body: Any = None, timeout: float = 60.0) -> Any:
        """One call to the simulator's admin API (``path`` under the URL); its JSON answer."""
        headers = {"Content-Type": "application/json"}
        if self.spec.admin_key is not None:
            headers[_ADMIN_KEY_HEADER] = self.spec.admin_key
        data = None if body is None else json.dumps(body).encode()
        if method != "GET" and data is None:
            data = b""
        url = self.url + path
        req = urllib.request.Request(url, data=data, headers=headers, method=method)  # noqa: S310
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - our http URL
            raw = resp.read()
        return json.loads(raw) if raw else None

    def ledger(self, timeout: float = 120.0) -> dict[str, Any]:
        """``GET /_sim/ledger``: every request, generation and credit the simulator saw."""
        data: dict[str, Any] = self.admin("GET", "/_sim/ledger", timeout=timeout)
        return data

    def config(self, **changes: Any) -> dict[str, Any]:
        """``POST /_sim/config``: change rate (0: none), burst, job_cap (0: none),
        balance, faults or time scale live."""
        data: dict[str, Any] = self.admin("POST", "/_sim/config", changes)
        return data

    def reset(self) -> None:
        """``POST /_sim/reset``: back to the seeded start (a clean world and ledger)."""
        self.admin("POST", "/_sim/reset")
