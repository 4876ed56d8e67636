"""The one place that speaks HTTP: session, auth, the retry loop, error mapping.

Resources are thin: they name a route, fill its path and body, and cast the
answer.  Everything that must be uniform — auth headers, Idempotency-Key,
timeouts, the retry decision (``retry.decide``), Retry-After, mapping a status
and ``error_code`` to an exception, redaction, counters — happens here once
(the openai-python shape: a base client owns retries, resources stay thin).

Transport seam: pass ``session=`` (an ``aiohttp.ClientSession``) to reuse a
pool or to instrument it, as httpx takes a transport; the client then never
closes it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import IO, Any, Final, NamedTuple, TypeVar
from urllib.parse import quote

import aiohttp
import orjson
import pydantic
from multidict import CIMultiDict, CIMultiDictProxy

from genbatch import _constants as C
from genbatch.client import assumptions as A
from genbatch.client.dialect import DialectChoice, DialectState, other_dialect, resolve_body
from genbatch.client.redact import get_logger, redact, redact_headers, register_secret
from genbatch.client.retry import (
    Decision,
    Failure,
    RetryCounters,
    RetryPolicy,
    classify_exception,
    decide,
    parse_rate_policy,
)
from genbatch.client.routes import Dialect, Route
from genbatch.errors import (
    APIConnectionError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    GenError,
    NotFoundError,
    RateLimitError,
    RequestValidationError,
    status_error_class,
)
from genbatch.settings import AuthScheme, Settings

CLIENT_USER_AGENT: Final = "genbatch/0.1"
#: TCP connect (+ pool wait) timeout: a connect timeout proves nothing was sent.
CLIENT_CONNECT_TIMEOUT: Final = 10.0
#: Connection pool: total sockets and per-host sockets (aiohttp TCPConnector).
CLIENT_POOL_LIMIT: Final = 100
CLIENT_POOL_LIMIT_PER_HOST: Final = 50
#: DNS cache TTL for the pooled connector (seconds).
CLIENT_DNS_TTL: Final = 300
#: Read timeout between bytes of a transfer (no total: a 1 GiB file takes a while).
CLIENT_TRANSFER_SOCK_READ_TIMEOUT: Final = 60.0

__all__ = ["AttemptInfo", "BaseClient", "Hooks", "Response"]

log = get_logger("genbatch.client")

M = TypeVar("M", bound=pydantic.BaseModel)

#: Builds a fresh multipart form per attempt (a streamed file cannot be re-read)
#: and returns the file handles to close after that attempt.
FormFactory = Callable[[], tuple[aiohttp.FormData, list[IO[bytes]]]]

_JSON = "application/json"
_SECRET_DEFAULT_HEADERS = frozenset({"x-api-key", "authorization"})
_NO_HEADERS: CIMultiDictProxy[str] = CIMultiDictProxy(CIMultiDict())


def _dumps_str(obj: Any) -> str:
    return orjson.dumps(obj).decode()


class Response(NamedTuple):
    """A successful answer: status, headers, parsed JSON (or raw bytes).

    ``route``: the route as sent (an engine route in the session's dialect).
    """

    status: int
    headers: CIMultiDictProxy[str]
    data: Any
    route: Route | None = None


@dataclass(frozen=True, slots=True)
class AttemptInfo:
    """What one attempt did — handed to ``Hooks.after_attempt`` (e.g. an adaptive rate gate)."""

    route: Route
    status: int | None
    failure: Failure | None
    retry_after: float | None
    elapsed: float
    #: Requests/second the server says it allows (``RateLimit-Policy``), if it says.
    published_rate: float | None = None


@dataclass(frozen=True, slots=True)
class Hooks:
    """Optional callbacks around every attempt, retries included.

    ``before_attempt`` is awaited before each send — the engine puts its rate
    gate here so a retry waits its turn like any other call.
    """

    before_attempt: Callable[[Route], Awaitable[None]] | None = None
    after_attempt: Callable[[AttemptInfo], None] | None = None


class BaseClient:
    """Session, auth and the retry loop; ``GenClient`` adds the resource groups."""

    def __init__(
        self,
        api_key: str | None = None,
        *,
        api_url: str | None = None,
        agent_url: str | None = None,
        auth: AuthScheme | None = None,
        timeout: float | None = None,
        connect_timeout: float = CLIENT_CONNECT_TIMEOUT,
        max_retries: int | None = None,
        retry_policy: RetryPolicy | None = None,
        pool_limit: int = CLIENT_POOL_LIMIT,
        pool_limit_per_host: int = CLIENT_POOL_LIMIT_PER_HOST,
        session: aiohttp.ClientSession | None = None,
        hooks: Hooks | None = None,
        settings: Settings | None = None,
        rng: random.Random | None = None,
        dialect: DialectChoice = "auto",
    ) -> None:
        overrides = {
            "api_url": api_url,
            "agent_url": agent_url,
            "auth": auth,
            "timeout": timeout,
            "max_retries": max_retries,
        }
        try:
            if settings is None:
                self.settings = Settings.from_env(**overrides)
            else:
                merged = settings.model_dump()
                merged.update({k: v for k, v in overrides.items() if v is not None})
                self.settings = Settings.model_validate(merged)
        except pydantic.ValidationError as exc:
            raise GenError(f"invalid client settings: {redact(str(exc))}") from None
        key = api_key if api_key is not None else self.settings.key()
        if not key:
            raise GenError(f"no API key: pass api_key= or set {C.CLIENT_ENV_API_KEY}")
        register_secret(key)
        self._auth_headers: dict[str, str] = (
            {"Authorization": f"Bearer {key}"}
            if self.settings.auth == "bearer"
            else {"X-API-Key": key}
        )
        #: The last rate-policy header seen and the rate it states.
        self._policy_seen: tuple[str, float | None] | None = None
        self._bases: dict[str, str] = {
            "api": self.settings.api_url,
            "agent": self.settings.agent_url,
        }
        self.policy = retry_policy or RetryPolicy(max_retries=self.settings.max_retries)
        self._timeout = aiohttp.ClientTimeout(total=self.settings.timeout, connect=connect_timeout)
        self._transfer_timeout = aiohttp.ClientTimeout(
            total=None, connect=connect_timeout, sock_read=CLIENT_TRANSFER_SOCK_READ_TIMEOUT
        )
        self._pool = (pool_limit, pool_limit_per_host)
        self._session = session
        self._owns_session = session is None
        self._storage_session: aiohttp.ClientSession | None = None
        self.hooks = hooks or Hooks()
        self._rng = rng or random.Random()
        #: Counters by reason (requests, retries, give-ups, statuses, 429s).
        self.stats = RetryCounters()
        try:
            self._dialect = DialectState(dialect)
        except ValueError as exc:
            raise GenError(f"invalid client settings: {exc}") from None

    # -- dialect -------------------------------------------------------------
    @property
    def dialect(self) -> Dialect | None:
        """The dialect this session confirmed ("today" / "legacy"), None until known."""
        return self._dialect.confirmed

    @property
    def engine_prefix(self) -> str:
        """The engine prefix in use (``/v1/vidsheet`` or ``/v1/autocontentengine``)."""
        return self._dialect.engine_prefix

    @property
    def dialect_misses(self) -> int:
        """404s this session spent learning its dialect (see ``dialect.py``)."""
        return self._dialect.misses

    # -- lifecycle -----------------------------------------------------------
    async def __aenter__(self) -> BaseClient:
        self.session  # noqa: B018 — create the pool inside the running loop
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the sessions this client created (never an injected one)."""
        if self._owns_session and self._session is not None and not self._session.closed:
            await self._session.close()
        if self._storage_session is not None and not self._storage_session.closed:
            await self._storage_session.close()
        self._session = None if self._owns_session else self._session
        self._storage_session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        """The pooled session (created on first use)."""
        if self._session is None or (self._owns_session and self._session.closed):
            limit, per_host = self._pool
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(
                    limit=limit, limit_per_host=per_host, ttl_dns_cache=CLIENT_DNS_TTL
                ),
                timeout=self._timeout,
                json_serialize=_dumps_str,
                headers={"User-Agent": CLIENT_USER_AGENT},
            )
            self._owns_session = True
        return self._session

    @property
    def storage_session(self) -> aiohttp.ClientSession:
        """A session safe for presigned storage and CDN URLs: no auth default headers.

        The shared pool is used unless an injected session carries an auth
        header by default — then a private one, so the key never reaches storage.
        """
        base = self.session
        if not any(k.lower() in _SECRET_DEFAULT_HEADERS for k in base.headers):
            return base
        if self._storage_session is None or self._storage_session.closed:
            self._storage_session = aiohttp.ClientSession(timeout=self._transfer_timeout)
        return self._storage_session

    @property
    def transfer_timeout(self) -> aiohttp.ClientTimeout:
        return self._transfer_timeout

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(api_url={self.settings.api_url!r}, "
            f"agent_url={self.settings.agent_url!r}, auth={self.settings.auth!r})"
        )

    # -- the request loop ------------------------------------------------------
    def url_for(self, route: Route, path: Mapping[str, object] | None = None) -> str:
        """The concrete URL of ``route`` (path params quoted as opaque strings).

        An engine route is spelled in the session's current dialect.
        """
        return self._url(route.in_dialect(self._dialect.current), path)

    def _url(self, route: Route, path: Mapping[str, object] | None) -> str:
        base = self._bases[route.host]
        if not path:
            return base + route.path
        return base + route.path.format_map({k: _segment(v) for k, v in path.items()})

    async def request(
        self,
        route: Route,
        *,
        path: Mapping[str, object] | None = None,
        params: Mapping[str, object | None] | None = None,
        json: Any = None,
        form: FormFactory | None = None,
        idempotency_key: str | None = None,
        max_retries: int | None = None,
        resend_ambiguous: bool = True,
        raw: bool = False,
    ) -> Response:
        """Send ``route`` with retries per the policy; return the parsed success.

        ``idempotency_key``: the caller's key for a side-effecting POST.  With
        it, ambiguous failures are retried (the server dedups on the key);
        without it the client still sends a per-call key but resends only
        when the request provably never left (see ``retry.py``).
        ``resend_ambiguous=False``: not even with the key — an attempt that may
        have taken effect is raised (``ServerError`` / ``APIConnectionError``
        with ``maybe_sent``) for a caller that reconciles before resending.

        An engine-family route goes out in the session's dialect; while that
        is unknown, a 404 is sent once more under the other dialect's prefix
        (same Idempotency-Key: a 404 ran nothing) — see ``dialect.py``.
        ``json`` may be a ``ByDialect`` body, resolved per dialect.
        """
        # One key for every attempt of this call, under either prefix.
        key = (idempotency_key or uuid.uuid4().hex) if route.side_effect else None

        async def send(dialect: Dialect) -> Response:
            return await self._send(
                route.in_dialect(dialect),
                path=path,
                params=params,
                json=resolve_body(json, dialect),
                form=form,
                sent_key=key,
                caller_key=idempotency_key is not None,
                max_retries=max_retries,
                resend_ambiguous=resend_ambiguous,
                raw=raw,
            )

        state = self._dialect
        if not route.by_dialect or state.confirmed is not None:
            return await send(state.current)
        async with state.lock:
            if state.confirmed is not None:
                return await send(state.confirmed)
            return await self._detect(state, send)

    def _published_rate(self, header: str | None) -> float | None:
        """The rate a policy header states (parsed once per distinct header value)."""
        if header is None:
            return None
        cached = self._policy_seen
        if cached is None or cached[0] != header:
            cached = self._policy_seen = (header, parse_rate_policy(header))
        return cached[1]

    async def _detect(
        self, state: DialectState, send: Callable[[Dialect], Awaitable[Response]]
    ) -> Response:
        """Send under the first-guess dialect; on 404, once under the other; remember."""
        first = state.current
        try:
            resp = await send(first)
        except NotFoundError as missed:
            state.misses += 1
            second = other_dialect(first)
            log.info("engine prefix: 404 under %s; trying %s", first, second)
            try:
                resp = await send(second)
            except NotFoundError as again:
                # Neither prefix: a missing (or not-ours) resource under one of them.
                raise _informative(missed, again) from None
            except APIStatusError as exc:
                if A.prefix_proves(exc.status):
                    state.confirm(second)
                raise
            state.confirm(second)
            log.info("engine prefix: this server speaks %s (%s)", second, state.engine_prefix)
            return resp
        except APIStatusError as exc:
            if A.prefix_proves(exc.status):
                state.confirm(first)
            raise
        state.confirm(first)
        return resp

    async def _send(
        self,
        route: Route,
        *,
        path: Mapping[str, object] | None,
        params: Mapping[str, object | None] | None,
        json: Any,
        form: FormFactory | None,
        sent_key: str | None,
        caller_key: bool,
        max_retries: int | None,
        resend_ambiguous: bool,
        raw: bool,
    ) -> Response:
        """One call of one concrete route: the retry loop."""
        url = self._url(route, path)
        query = {k: str(v) for k, v in params.items() if v is not None} if params else None
        headers = dict(self._auth_headers)
        body: bytes | None = None
        if json is not None:
            body = orjson.dumps(json)
            headers["Content-Type"] = _JSON
        if sent_key is not None:
            headers[A.IDEMPOTENCY_HEADER] = sent_key
        idempotent = route.idempotent or caller_key
        policy = self.policy
        limit = policy.max_retries if max_retries is None else max_retries
        self.stats.calls += 1
        attempt = 0
        while True:
            if self.hooks.before_attempt is not None:
                await self.hooks.before_attempt(route)
            self.stats.requests += 1
            started = time.monotonic()
            status: int | None = None
            resp_headers: CIMultiDictProxy[str] = _NO_HEADERS
            failure: Failure | None = None
            detail = ""
            files: list[IO[bytes]] = []
            data: Any = body
            if form is not None:
                data, files = form()
            try:
                async with self.session.request(
                    route.method,
                    url,
                    params=query,
                    data=data,
                    headers=headers,
                    allow_redirects=False,
                    timeout=self._timeout,
                ) as resp:
                    payload = await resp.read()
                    status = resp.status
                    resp_headers = resp.headers
            except (TimeoutError, aiohttp.ClientError) as exc:
                failure = classify_exception(exc)
                # Keep only a scrubbed description: never chain the raw exception.
                detail = f"{type(exc).__name__}: {redact(str(exc))}"
            finally:
                for f in files:
                    f.close()
            elapsed = time.monotonic() - started
            if status is not None:
                self.stats.status_counts[status] += 1
                if status == 429:
                    self.stats.rate_limited += 1
            published = self._published_rate(resp_headers.get(A.RATE_POLICY_HEADER))
            if failure is None and status is not None and status < 300:
                if self.hooks.after_attempt is not None:
                    self.hooks.after_attempt(
                        AttemptInfo(route, status, None, None, elapsed, published)
                    )
                if log.isEnabledFor(logging.DEBUG):
                    log.debug("%s -> %s in %.3fs", route.name, status, elapsed)
                return Response(
                    status, resp_headers, self._parse_ok(route, status, payload, raw), route
                )
            decision = decide(
                policy if limit == policy.max_retries else _with_retries(policy, limit),
                attempt=attempt,
                method=route.method,
                idempotent=idempotent,
                status=status,
                failure=failure,
                headers=resp_headers,
                now=time.time(),
                jitter=self._rng.random(),
                resend_ambiguous=resend_ambiguous,
            )
            self.stats.record(decision)
            if self.hooks.after_attempt is not None:
                self.hooks.after_attempt(
                    AttemptInfo(route, status, failure, decision.retry_after, elapsed, published)
                )
            outcome = f"{status}" if status is not None else detail
            if decision.retry:
                log.info(
                    "%s -> %s; retry %d/%d in %.3fs (%s)",
                    route.name,
                    outcome,
                    attempt + 1,
                    limit,
                    decision.delay,
                    decision.reason,
                )
                await asyncio.sleep(decision.delay)
                attempt += 1
                continue
            if log.isEnabledFor(logging.DEBUG):
                log.debug("%s -> %s; giving up (%s)", route.name, outcome, decision.reason)
            if status is None:
                raise self._connection_error(route, failure, detail, decision)
            raise self._status_error(route, status, payload, resp_headers, decision)

    async def request_model(self, cast: type[M], route: Route, **kw: Any) -> M:
        """``request`` and validate the body into ``cast``."""
        resp = await self.request(route, **kw)
        return self.cast(cast, resp.route or route, resp.status, resp.data)

    async def request_list(self, item: type[M], route: Route, **kw: Any) -> list[M]:
        """``request`` a list endpoint (any envelope) into a list of ``item``."""
        resp = await self.request(route, **kw)
        rows = A.unwrap_list(resp.data)
        return [self.cast(item, resp.route or route, resp.status, row) for row in rows]

    @staticmethod
    def cast(model: type[M], route: Route, status: int, data: Any) -> M:
        try:
            return model.model_validate(data)
        except pydantic.ValidationError as exc:
            raise APIResponseValidationError(
                redact(f"{route.name} -> {status}: unexpected body for {model.__name__}: {exc}"),
                method=route.method,
                route=route.name,
                status=status,
            ) from None

    # -- helpers -----------------------------------------------------------
    @staticmethod
    def _parse_ok(route: Route, status: int, payload: bytes, raw: bool) -> Any:
        if raw:
            return payload
        if not payload:
            return None
        try:
            return orjson.loads(payload)
        except orjson.JSONDecodeError:
            raise APIResponseValidationError(
                f"{route.name} -> {status}: body is not JSON",
                method=route.method,
                route=route.name,
                status=status,
            ) from None

    @staticmethod
    def _connection_error(
        route: Route, failure: Failure | None, detail: str, decision: Decision
    ) -> APIConnectionError:
        never_sent = failure in (Failure.CONNECT, Failure.CONNECT_TIMEOUT)
        note = ""
        if decision.reason.startswith("unsafe_post"):
            note = "; not resent: a POST with side effects may have taken effect — reconcile"
        elif decision.reason.startswith("exhausted"):
            note = "; retries exhausted"
        message = f"{route.name}: {failure.value if failure else 'error'} ({detail}){note}"
        cls = (
            APITimeoutError
            if failure in (Failure.TIMEOUT, Failure.CONNECT_TIMEOUT)
            else APIConnectionError
        )
        return cls(
            redact(message), method=route.method, route=route.name, maybe_sent=not never_sent
        )

    @staticmethod
    def _status_error(
        route: Route,
        status: int,
        payload: bytes,
        headers: CIMultiDictProxy[str],
        decision: Decision,
    ) -> APIStatusError:
        body: Any = None
        error_code: str | None = None
        server_message: str | None = None
        try:
            body = orjson.loads(payload) if payload else None
        except orjson.JSONDecodeError:
            server_message = payload[:300].decode("utf-8", "replace").strip() or None
        if isinstance(body, dict):
            code = body.get("error_code")
            error_code = str(code) if code is not None else None
            msg = body.get("error") or body.get("message")
            server_message = msg if isinstance(msg, str) else (None if msg is None else str(msg))
        if server_message is not None:
            server_message = redact(server_message)
        parts = [f"{route.name} -> {status}"]
        if error_code:
            parts.append(f" {error_code}")
        if server_message:
            parts.append(f": {server_message}")
        if decision.reason.startswith("unsafe_post"):
            parts.append(" (not resent: a POST with side effects — reconcile)")
        elif decision.reason.startswith("retry_after_over_cap"):
            parts.append(f" (Retry-After {decision.retry_after:.0f}s is over the cap)")
        cls = status_error_class(status, error_code)
        kwargs: dict[str, Any] = {
            "method": route.method,
            "route": route.name,
            "status": status,
            "error_code": error_code,
            "server_message": server_message,
            "body": _redact_obj(body),
            "headers": redact_headers(headers),
        }
        if issubclass(cls, RateLimitError):
            kwargs["retry_after"] = decision.retry_after
        return cls(redact("".join(parts)), **kwargs)


def _segment(value: object) -> str:
    """A path parameter as one URL segment (ids are opaque: quote anything unusual)."""
    text = str(value)
    if text.isascii() and text.replace("_", "").replace("-", "").isalnum():
        return text
    return quote(text, safe="")


def _informative(first: NotFoundError, second: NotFoundError) -> NotFoundError:
    """Of two 404s, the one that names what is missing (a specific error_code), else the first."""
    generic = (None, "not_found")
    if first.error_code in generic and second.error_code not in generic:
        return second
    return first


def _with_retries(policy: RetryPolicy, max_retries: int) -> RetryPolicy:
    return dataclasses.replace(policy, max_retries=max_retries)


def _redact_obj(obj: Any) -> Any:
    if isinstance(obj, str):
        return redact(obj)
    if isinstance(obj, dict):
        return {k: _redact_obj(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_redact_obj(v) for v in obj]
    return obj


def validate_body(model: type[M], value: M | Mapping[str, Any]) -> M:
    """``value`` as ``model``, raising RequestValidationError (nothing sent) if invalid."""
    if isinstance(value, model):
        return value
    try:
        return model.model_validate(value)
    except pydantic.ValidationError as exc:
        raise RequestValidationError(f"invalid {model.__name__}: {redact(str(exc))}") from None


def mapping_body(value: Mapping[str, Any] | None, what: str) -> dict[str, Any]:
    """An undocumented body (see assumptions.py): only checked to be a JSON object."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise RequestValidationError(f"{what}: body must be a mapping, got {type(value).__name__}")
    return dict(value)
