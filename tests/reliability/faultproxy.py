"""A small asyncio TCP fault proxy, toxiproxy-style, for socket-level faults.

The simulator's own ``--faults`` act *inside* the server (a 500 before the
handler, a reset after it).  Some failures only exist on the wire: a peer
that resets after N bytes, an answer that never comes, a body trickling in
slices, a listener that is gone.  This proxy sits between genbatch and the
simulator and injects those, controlled at run time from the test through a
Python API (no HTTP control plane to go wrong).

Toxics (``Toxic.kind``), each on one ``direction`` — ``"upstream"`` (client
to server) or ``"downstream"`` (server to client):

* ``latency``     — ``ms`` (+ ``jitter_ms``) delay before each chunk;
* ``reset_peer``  — RST both ends once ``after_bytes`` bytes passed while armed
  (0 with no ``match``: reset at accept);
* ``timeout``     — after ``after_bytes`` bytes, swallow the rest and never
  answer; close after ``ms`` (0: hold the connection open until the proxy stops);
* ``slicer``      — write in ``size``-byte slices, ``delay_ms`` apart;
* ``limit_data``  — forward ``nbytes`` bytes while armed, then close (FIN);
* ``respond``     — answer the client with the canned ``response`` bytes and
  close: upstream, *instead of* the server (the request never arrives);
  downstream, *after* it (the server acted, its answer is replaced — e.g. a
  500 for a POST that did take effect).

``down()`` closes the listener, so new connections are refused (ECONNREFUSED:
the "provably never sent" case); ``up()`` listens again on the same port.

Targeting.  Without ``match`` a toxic is rolled once per connection at
accept.  With ``match`` (a bytes regex) it is rolled per *request*: each
upstream chunk that starts an HTTP/1.x request line re-arms or disarms it,
so a keep-alive connection carrying a poll and then the paid POST only
faults the POST.  ``toxicity`` is the probability (seeded RNG) and ``times``
caps how often a toxic fires; ``hits`` counts how often it did.

Rewrite.  A simulator advertises its own URL in CDN and presigned storage
URLs; ``rewrite=(sim_hostport, proxy_hostport)`` replaces one with the other
in downstream bytes (equal lengths, so Content-Length and MP4 box sizes stay
valid) — the effect of DNS pointing those hosts at the proxy, so downloads
and storage PUTs pass through the toxics too.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import re
import socket
import struct
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

__all__ = ["KINDS", "FaultProxy", "ProxyThread", "Toxic"]

Direction = Literal["upstream", "downstream"]
KINDS = ("latency", "reset_peer", "timeout", "slicer", "limit_data", "respond")
_REQUEST_START = re.compile(rb"^[A-Z]{3,10} \S+ HTTP/1\.[01]\r\n")
_READ = 65536
#: How long a held-back partial rewrite match may wait for the next bytes.
_REWRITE_FLUSH = 0.05
T = TypeVar("T")


@dataclass(slots=True)
class Toxic:
    """One fault rule; see the module docstring for each kind's parameters."""

    kind: str
    direction: Direction = "downstream"
    name: str = ""
    match: bytes | None = None
    toxicity: float = 1.0
    times: int | None = None
    ms: float = 0.0
    jitter_ms: float = 0.0
    after_bytes: int = 0
    size: int = 1024
    delay_ms: float = 0.0
    nbytes: int = 0
    #: bytes, or a callable making them at fire time (e.g. a Retry-After HTTP date).
    response: bytes | Callable[[], bytes] = b""
    hits: int = 0
    _pattern: re.Pattern[bytes] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown toxic {self.kind!r} (known: {', '.join(KINDS)})")
        if self.direction not in ("upstream", "downstream"):
            raise ValueError("direction must be 'upstream' or 'downstream'")
        if self.kind == "respond" and isinstance(self.response, bytes) and not self.response:
            raise ValueError("respond needs the response bytes to send")
        if not 0.0 <= self.toxicity <= 1.0:
            raise ValueError("toxicity is a probability in 0..1")
        self._pattern = re.compile(self.match) if self.match is not None else None

    def matches(self, request_head: bytes) -> bool:
        return self._pattern is None or self._pattern.search(request_head) is not None

    @property
    def spent(self) -> bool:
        return self.times is not None and self.hits >= self.times


@dataclass(slots=True)
class ProxyStats:
    connections: int = 0
    refused_while_down: int = 0
    bytes_up: int = 0
    bytes_down: int = 0
    requests: list[bytes] = field(default_factory=list)
    #: Request heads (request line and headers) as they reached the proxy.
    heads: list[bytes] = field(default_factory=list)
    #: (monotonic time, request line, names of the toxics armed for it) per request.
    log: list[tuple[float, bytes, tuple[str, ...]]] = field(default_factory=list)


class _Conn:
    """One proxied connection: two pumps and the toxics armed on it."""

    def __init__(
        self,
        proxy: FaultProxy,
        client_r: asyncio.StreamReader,
        client_w: asyncio.StreamWriter,
        up_r: asyncio.StreamReader,
        up_w: asyncio.StreamWriter,
    ) -> None:
        self.proxy = proxy
        self.client_r, self.client_w = client_r, client_w
        self.up_r, self.up_w = up_r, up_w
        #: toxic name -> bytes passed in its direction since it was armed.
        self.armed: dict[str, int] = {}
        #: unmatched toxics already rolled for this connection (once each).
        self.decided: set[str] = set()
        self.stalled: set[Direction] = set()
        self.swallow_request = False
        self.closed = False

    # -- arming ----------------------------------------------------------
    def arm_unmatched(self) -> None:
        """Roll each unmatched toxic once per connection (also ones added mid-run)."""
        for t in self.proxy.toxics():
            if t._pattern is None and t.name not in self.decided:
                self.decided.add(t.name)
                if self.proxy.roll(t):
                    self.armed[t.name] = 0

    def rearm(self, head: bytes) -> None:
        """A new request starts on this connection: decide the matched toxics."""
        self.swallow_request = False
        self.stalled.discard("upstream")
        for t in self.proxy.toxics():
            if t._pattern is None:
                continue
            self.armed.pop(t.name, None)
            if t.matches(head) and self.proxy.roll(t):
                self.armed[t.name] = 0

    # -- closing ---------------------------------------------------------
    def reset(self) -> None:
        """Abort both ends with RST (SO_LINGER 0): the peer sees ECONNRESET."""
        for w in (self.client_w, self.up_w):
            sock = w.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            w.transport.abort()
        self.closed = True

    def close(self) -> None:
        for w in (self.client_w, self.up_w):
            with contextlib.suppress(Exception):
                w.close()
        self.closed = True

    def _close_later(self, ms: float) -> None:
        if ms > 0:
            asyncio.get_running_loop().call_later(ms / 1000.0, self.close)

    # -- pumping ---------------------------------------------------------
    async def pump(self, direction: Direction) -> None:
        src = self.client_r if direction == "upstream" else self.up_r
        dst = self.up_w if direction == "upstream" else self.client_w
        rewrite = self.proxy.rewrite if direction == "downstream" else None
        carry = b""
        try:
            while not self.closed:
                if carry:
                    try:
                        data = await asyncio.wait_for(src.read(_READ), _REWRITE_FLUSH)
                    except TimeoutError:
                        data, carry = carry, b""
                        await self._forward(direction, dst, data)
                        continue
                else:
                    data = await src.read(_READ)
                if not data:
                    if carry:
                        await self._forward(direction, dst, carry)
                    break
                if rewrite is not None:
                    data, carry = _rewrite(carry + data, *rewrite)
                    if not data:
                        continue
                if direction == "upstream" and _REQUEST_START.match(data):
                    line = data.split(b"\r\n", 1)[0]
                    self.proxy.stats.requests.append(line)
                    self.proxy.stats.heads.append(data.split(b"\r\n\r\n", 1)[0])
                    self.rearm(data)
                    self.arm_unmatched()
                    armed = tuple(n for n in self.armed if n in self.proxy._toxics)
                    self.proxy.stats.log.append((time.monotonic(), line, armed))
                await self._forward(direction, dst, data)
        except (ConnectionError, OSError, asyncio.IncompleteReadError):
            pass
        finally:
            if not self.closed:
                # Half-close: pass the EOF on, as a real network path would.
                with contextlib.suppress(Exception):
                    if dst.can_write_eof():
                        dst.write_eof()

    async def _forward(self, direction: Direction, dst: asyncio.StreamWriter, data: bytes) -> None:
        if direction in self.stalled:
            return
        if direction == "upstream" and self.swallow_request:
            return
        self.arm_unmatched()
        delay = 0.0
        slicer: Toxic | None = None
        for t in self.proxy.toxics():
            if t.name not in self.armed or t.direction != direction:
                continue
            passed = self.armed[t.name]
            if t.kind == "respond":
                self.swallow_request = True
                response = t.response() if callable(t.response) else t.response
                self.client_w.write(response)
                with contextlib.suppress(ConnectionError):
                    await self.client_w.drain()
                self.close()
                return
            if t.kind == "timeout":
                room = max(0, t.after_bytes - passed)
                if len(data) <= room:
                    self.armed[t.name] = passed + len(data)
                    continue
                if room:
                    self.armed[t.name] = passed + room
                    await self._write(dst, data[:room], direction)
                self.stalled.add(direction)
                self._close_later(t.ms)
                return
            if t.kind in ("reset_peer", "limit_data"):
                limit = t.after_bytes if t.kind == "reset_peer" else t.nbytes
                room = max(0, limit - passed)
                if len(data) >= room:
                    if room:
                        await self._write(dst, data[:room], direction)
                    if t.kind == "reset_peer":
                        self.reset()
                    else:
                        self.close()
                    return
                self.armed[t.name] = passed + len(data)
            elif t.kind == "latency":
                jitter = t.jitter_ms * (2 * self.proxy.rng.random() - 1)
                delay += max(0.0, t.ms + jitter) / 1000.0
            elif t.kind == "slicer":
                slicer = t
        if delay:
            await asyncio.sleep(delay)
        if slicer is None:
            await self._write(dst, data, direction)
            return
        step = max(1, slicer.size)
        for i in range(0, len(data), step):
            await self._write(dst, data[i : i + step], direction)
            if slicer.delay_ms and i + step < len(data):
                await asyncio.sleep(slicer.delay_ms / 1000.0)

    async def _write(self, dst: asyncio.StreamWriter, data: bytes, direction: Direction) -> None:
        if self.closed:
            return
        dst.write(data)
        if direction == "upstream":
            self.proxy.stats.bytes_up += len(data)
        else:
            self.proxy.stats.bytes_down += len(data)
        await dst.drain()


def _rewrite(data: bytes, old: bytes, new: bytes) -> tuple[bytes, bytes]:
    """``data`` with ``old`` -> ``new``, minus a trailing partial match kept as carry."""
    data = data.replace(old, new)
    for k in range(min(len(old) - 1, len(data)), 0, -1):
        if old.startswith(data[-k:]):
            return data[:-k], data[-k:]
    return data, b""


class FaultProxy:
    """The proxy itself; lives on the event loop that calls :meth:`start`."""

    def __init__(
        self,
        upstream: tuple[str, int],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        rewrite: tuple[bytes, bytes] | None = None,
        rewrite_upstream: bool = False,
        seed: int = 0,
    ) -> None:
        if rewrite is not None and len(rewrite[0]) != len(rewrite[1]):
            raise ValueError("a rewrite must keep the length (Content-Length stays valid)")
        self.rewrite_upstream = rewrite_upstream
        self.upstream = upstream
        self.host = host
        self.port = port
        self.rewrite = rewrite
        self.rng = random.Random(seed)
        self.stats = ProxyStats()
        self._toxics: dict[str, Toxic] = {}
        self._names = itertools.count(1)
        self._server: asyncio.Server | None = None
        self._conns: set[_Conn] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def hostport(self) -> bytes:
        return f"{self.host}:{self.port}".encode()

    @property
    def is_up(self) -> bool:
        return self._server is not None

    # -- toxics ------------------------------------------------------------
    def toxics(self) -> list[Toxic]:
        return list(self._toxics.values())

    def add(self, kind: str, direction: Direction = "downstream", **params: Any) -> Toxic:
        """Add a toxic (it applies to connections and requests from now on)."""
        toxic = Toxic(kind, direction, **params)
        if not toxic.name:
            toxic.name = f"{kind}_{next(self._names)}"
        if toxic.name in self._toxics:
            raise ValueError(f"a toxic named {toxic.name!r} exists")
        self._toxics[toxic.name] = toxic
        return toxic

    def remove(self, name: str) -> None:
        self._toxics.pop(name, None)
        for conn in self._conns:
            conn.armed.pop(name, None)

    def clear(self) -> None:
        for name in list(self._toxics):
            self.remove(name)

    def roll(self, toxic: Toxic) -> bool:
        if toxic.spent:
            return False
        hit = toxic.toxicity >= 1.0 or self.rng.random() < toxic.toxicity
        if hit:
            toxic.hits += 1
        return hit

    # -- lifecycle ---------------------------------------------------------
    async def start(self) -> FaultProxy:
        """Listen; with ``rewrite_upstream``, on a port as long as the upstream's."""
        await self.up()
        if self.rewrite_upstream:
            old = f"{self.upstream[0]}:{self.upstream[1]}".encode()
            for _ in range(50):
                if len(self.hostport) == len(old):
                    break
                await self.down()
                self.port = 0
                await self.up()
            else:
                raise RuntimeError("no free port with as many digits as the upstream's")
            self.rewrite = (old, self.hostport)
        return self

    async def up(self) -> None:
        """Listen (again) on ``port`` (0 the first time: a free port)."""
        if self._server is not None:
            return
        self._server = await asyncio.start_server(
            self._accept, self.host, self.port, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def down(self, *, drop_existing: bool = False) -> None:
        """Stop listening: new connections are refused; optionally reset live ones."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        if drop_existing:
            for conn in list(self._conns):
                conn.reset()

    async def stop(self) -> None:
        await self.down(drop_existing=True)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def __aenter__(self) -> FaultProxy:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- connections ---------------------------------------------------------
    async def _accept(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.stats.connections += 1
        try:
            try:
                up_r, up_w = await asyncio.open_connection(*self.upstream)
            except OSError:
                client_w.transport.abort()
                return
            conn = _Conn(self, client_r, client_w, up_r, up_w)
            self._conns.add(conn)
            conn.arm_unmatched()
            immediate = [
                t
                for t in self.toxics()
                if t.name in conn.armed
                and t.kind == "reset_peer"
                and t.after_bytes == 0
                and t._pattern is None
            ]
            if immediate:
                conn.reset()
                return
            try:
                await asyncio.gather(conn.pump("upstream"), conn.pump("downstream"))
            finally:
                conn.close()
                self._conns.discard(conn)
        except asyncio.CancelledError:
            client_w.transport.abort()
        finally:
            self._tasks.discard(task)


class ProxyThread:
    """A :class:`FaultProxy` on its own event loop thread, for synchronous tests.

    Every method hands the call to the proxy's loop and waits for it, so a
    test can flip toxics while a ``genbatch run`` subprocess is mid-flight.
    """

    def __init__(self, upstream: tuple[str, int], **kw: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self.proxy = self._call(self._make(upstream, kw))

    @staticmethod
    async def _make(upstream: tuple[str, int], kw: dict[str, Any]) -> FaultProxy:
        return await FaultProxy(upstream, **kw).start()

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=10)

    async def _sync(self, fn: Any, *args: Any, **kw: Any) -> Any:
        return fn(*args, **kw)

    @property
    def url(self) -> str:
        return self.proxy.url

    @property
    def stats(self) -> ProxyStats:
        return self.proxy.stats

    def add(self, kind: str, direction: Direction = "downstream", **params: Any) -> Toxic:
        toxic: Toxic = self._call(self._sync(self.proxy.add, kind, direction, **params))
        return toxic

    def remove(self, name: str) -> None:
        self._call(self._sync(self.proxy.remove, name))

    def clear(self) -> None:
        self._call(self._sync(self.proxy.clear))

    def down(self, *, drop_existing: bool = False) -> None:
        self._call(self.proxy.down(drop_existing=drop_existing))

    def up(self) -> None:
        self._call(self.proxy.up())

    def close(self) -> None:
        if self._loop.is_closed():
            return
        with contextlib.suppress(Exception):
            self._call(self.proxy.stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()
