"""The one HTTP client that reaches customer endpoints (dispatcher and API test calls).

Why a module of its own: the SSRF guard only holds if every outgoing call goes through
the same checks. Host names are resolved here, every address that
``ssrf.forbidden_reason`` refuses is dropped, and the socket is opened only to an
address that was checked (a DNS answer that changes between check and connect cannot
slip through); IP-literal URLs are checked the same way. Redirects are never followed.
Connections are pooled and kept alive (``callbacks.http1``). Non-ASCII host names are
encoded by UTS #46 (IDNA 2008, non-transitional: ``faß.de`` stays ``xn--fa-hia.de``), and
an OAuth2 access token is used only when it is an RFC 6750 ``b64token``.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import math
import re
import socket
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import quote, quote_plus, urlencode, urlsplit

import idna
import orjson

from callbacks.failures import FailureKind
from callbacks.http1 import (
    Exchange,
    InvalidRequest,
    Limits,
    Origin,
    Pool,
    ProtocolError,
    serialize,
)
from callbacks.request import DeliveryRequest
from callbacks.retry import parse_retry_after
from callbacks.settings import Settings
from callbacks.ssrf import forbidden_reason

DEFAULT_TOKEN_LIFETIME_S = 300.0
MAX_TOKEN_LIFETIME_S = 86_400.0
MAX_TOKEN_CHARS = 8192  # receivers commonly refuse longer header lines (nginx: 8 KiB)
DNS_TTL_S = 30.0

# RFC 6750 §2.1 b64token: the only characters a Bearer credential may have.
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
# A host name as it may go into a Host header and to the resolver (after UTS #46).
_HOST = re.compile(r"[a-z0-9._~-]+|[0-9a-f:.]+(%[A-Za-z0-9._~-]+)?")
_NON_ASCII = re.compile(r"[^\x00-\x7f]+")

Resolve = Callable[[str, int], Awaitable[list[str]]]


class ForbiddenTarget(OSError):
    """Every address of the host is one a callback may not reach."""

    def __init__(self, host: str, reason: str) -> None:
        super().__init__(f"target {host} refused: {reason}")
        self.host = host
        self.reason = reason


async def system_resolve(host: str, port: int) -> list[str]:
    """The host's addresses from the system resolver, in its order, without repeats."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class GuardedResolver:
    """Resolves a host (cached for ``DNS_TTL_S``) and keeps only the addresses the SSRF
    rules allow; raises ``ForbiddenTarget`` when none is left."""

    def __init__(self, *, allow_private_targets: bool, inner: Resolve | None = None) -> None:
        self._allow_private = allow_private_targets
        self._inner = inner or system_resolve
        self._cache: dict[tuple[str, int], tuple[float, list[str]]] = {}

    async def resolve(self, host: str, port: int) -> list[str]:
        now = time.monotonic()
        cached = self._cache.get((host, port))
        if cached is not None and cached[0] > now:
            addresses = cached[1]
        else:
            addresses = await self._inner(host, port)
            if len(self._cache) > 4096:
                self._cache.clear()
            self._cache[(host, port)] = (now + DNS_TTL_S, addresses)
        if self._allow_private:
            return addresses
        allowed: list[str] = []
        reason = "no address"
        for address in addresses:
            why = forbidden_reason(ipaddress.ip_address(address.split("%", 1)[0]))
            if why is None:
                allowed.append(address)
            else:
                reason = why
        if not allowed:
            raise ForbiddenTarget(host, reason)
        return allowed


@dataclass(frozen=True)
class AttemptResult:
    """What one HTTP attempt gave. ``error`` is None only for a 2xx.

    ``error_kind`` says what kind of failure it was and what follows from it
    (``callbacks.failures``); None for a 2xx. ``retry_after_s`` is the receiver's
    ``Retry-After``; ``come_back_in_s`` the dispatcher's own estimate, for a callback it
    held back without a request, of when to try again (None: no estimate).
    """

    status: int | None
    headers: tuple[tuple[str, str], ...]
    body: bytes
    latency_ms: float
    error: str | None
    error_kind: FailureKind | None = None
    retry_after_s: float | None = None
    come_back_in_s: float | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def _ip_literal(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def literal_ip_refusal(url: str, allow_private_targets: bool) -> str | None:
    """Why an IP-literal URL host is refused (names are checked by the resolver)."""
    return _host_refusal(urlsplit(url).hostname or "", allow_private_targets)


def _host_refusal(host: str, allow_private_targets: bool) -> str | None:
    if allow_private_targets:
        return None
    address = _ip_literal(host)
    return None if address is None else forbidden_reason(address)


@lru_cache(maxsize=4096)
def _origin(scheme: str, netloc: str) -> tuple[Origin, bool]:
    """The origin of ``scheme://netloc`` and whether its host is an IP literal."""
    parts = urlsplit(f"{scheme}://{netloc}")
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise ValueError(f"unsupported scheme {scheme!r}")
    host = parts.hostname
    if not host:
        raise ValueError("no host")
    if not host.isascii():
        # IDNA 2003 (Python's "idna" codec) maps ß to ss: faß.de would reach fass.de.
        host = idna.encode(host, uts46=True, transitional=False).decode("ascii")
    if _HOST.fullmatch(host) is None:
        raise ValueError("invalid host")
    port = parts.port or (443 if scheme == "https" else 80)
    return Origin(scheme, host, port), _ip_literal(host) is not None


def split_url(url: str) -> tuple[Origin, str, bool]:
    """Origin, request target (path and query) and whether the host is an IP literal."""
    parts = urlsplit(url)
    origin, literal = _origin(parts.scheme, parts.netloc)
    target = parts.path or "/"
    if parts.query:
        target = f"{target}?{parts.query}"
    if not target.isascii():  # as browsers do; spaces and controls are left to be refused
        target = _NON_ASCII.sub(lambda match: quote(match.group()), target)
    return origin, target, literal


class Sender:
    """A pooled, SSRF-guarded HTTP client. Create once, ``await close()`` at the end."""

    def __init__(
        self,
        *,
        allow_private_targets: bool,
        timeout_s: float,
        limits: Limits | None = None,
        resolver: GuardedResolver | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.allow_private_targets = allow_private_targets
        self.timeout_s = timeout_s
        self.limits = limits or Limits()
        self._resolver = resolver or GuardedResolver(allow_private_targets=allow_private_targets)
        self._pool = Pool(limits=self.limits, tls=tls)

    @classmethod
    def from_settings(cls, settings: Settings) -> Sender:
        """The sender of a service: the dispatcher's and the API's test calls alike."""
        return cls(
            allow_private_targets=settings.allow_private_targets,
            timeout_s=settings.delivery_timeout,
            limits=Limits(
                header_bytes=settings.max_response_header_bytes,
                header_field_bytes=settings.max_response_header_field_bytes,
                headers=settings.max_response_headers,
            ),
        )

    async def close(self) -> None:
        self._pool.close()

    async def send(
        self,
        request: DeliveryRequest,
        *,
        timeout_s: float | None = None,
        on_answer: Callable[[int], None] | None = None,
    ) -> AttemptResult:
        """Make the request. ``on_answer(status)`` runs as soon as an HTTP answer is
        parsed, a loop turn before this returns (``http1.Pool.start``)."""
        return await self.begin(request, timeout_s=timeout_s, on_answer=on_answer).result()

    def begin(
        self,
        request: DeliveryRequest,
        *,
        timeout_s: float | None = None,
        on_answer: Callable[[int], None] | None = None,
    ) -> Call:
        """Start the request now: it is written before this returns when a kept-alive
        connection to its origin is idle (``Call.written``); await ``Call.result()``."""
        return self._begin(
            request.method,
            request.url,
            headers=list(request.headers),
            body=request.body,
            timeout_s=timeout_s,
            on_answer=on_answer,
        )

    async def post_form(
        self,
        url: str,
        form: dict[str, str],
        *,
        authorization: str | None = None,
        timeout_s: float | None = None,
    ) -> AttemptResult:
        """A form POST through the same guard (OAuth2 token requests)."""
        headers = [
            ("Accept", "application/json"),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ]
        if authorization is not None:
            headers.append(("Authorization", authorization))
        body = urlencode(form).encode()
        call = self._begin("POST", url, headers=headers, body=body, timeout_s=timeout_s)
        return await call.result()

    def _begin(
        self,
        method: str,
        url: str,
        *,
        headers: list[tuple[str, str]],
        body: bytes | None,
        timeout_s: float | None = None,
        on_answer: Callable[[int], None] | None = None,
    ) -> Call:
        started = time.perf_counter()
        try:
            origin, target, literal = split_url(url)
        except (ValueError, UnicodeError) as exc:
            error = f"invalid url: {exc}"
            invalid = AttemptResult(None, (), b"", 0.0, error, FailureKind.INVALID_REQUEST)
            return Call(started, invalid)
        connect_to: Callable[[], Awaitable[list[str]]] | None = None
        if literal:
            refusal = _host_refusal(origin.host, self.allow_private_targets)
            if refusal is not None:
                error = f"target {origin.host} refused: {refusal}"
                refused = AttemptResult(None, (), b"", 0.0, error, FailureKind.FORBIDDEN_TARGET)
                return Call(started, refused)
        else:

            def connect_to() -> Awaitable[list[str]]:
                return self._resolver.resolve(origin.host, origin.port)

        try:
            payload = serialize(method, origin, target, headers, body)
        except InvalidRequest as exc:  # final: nothing of it is written to any socket
            error = f"invalid request: {exc}"
            return Call(
                started, AttemptResult(None, (), b"", 0.0, error, FailureKind.INVALID_REQUEST)
            )
        exchange = self._pool.start(
            origin,
            payload,
            timeout_s=self.timeout_s if timeout_s is None else timeout_s,
            on_answer=on_answer,
        )
        return Call(started, None, self._pool, exchange, connect_to)


class Call:
    """A request under way (``Sender.begin``)."""

    __slots__ = ("_connect_to", "_exchange", "_pool", "_ready", "_started")

    def __init__(
        self,
        started: float,
        ready: AttemptResult | None,
        pool: Pool | None = None,
        exchange: Exchange | None = None,
        connect_to: Callable[[], Awaitable[list[str]]] | None = None,
    ) -> None:
        self._started, self._ready = started, ready
        self._pool, self._exchange, self._connect_to = pool, exchange, connect_to

    @property
    def written(self) -> bool:
        """The request is on the wire already (a kept-alive connection was idle)."""
        return self._exchange is not None and self._exchange.written

    def _elapsed(self) -> float:
        return (time.perf_counter() - self._started) * 1000.0

    async def result(self) -> AttemptResult:
        if self._ready is not None:
            return self._ready  # refused before any I/O
        assert self._pool is not None
        assert self._exchange is not None
        try:
            response = await self._pool.finish(self._exchange, connect_to=self._connect_to)
        except TimeoutError:
            # Before the request was written the host did not take a connection in time.
            kind = FailureKind.TIMEOUT if self._exchange.written else FailureKind.CONNECT_TIMEOUT
            return AttemptResult(None, (), b"", self._elapsed(), "timeout", kind)
        except ForbiddenTarget as exc:
            refused = FailureKind.FORBIDDEN_TARGET
            return AttemptResult(None, (), b"", self._elapsed(), str(exc), refused)
        except (OSError, ProtocolError) as exc:
            text = str(exc) or type(exc).__name__
            error = f"connection error: {text}"
            kind = FailureKind.CONNECTION_LOST if self._exchange.written else FailureKind.CONNECTION
            return AttemptResult(None, (), b"", self._elapsed(), error, kind)
        latency = self._elapsed()
        status = response.status
        if 200 <= status < 300:
            return AttemptResult(status, response.headers, response.body, latency, None)
        retry_after = parse_retry_after(response.header("Retry-After"))
        if 300 <= status < 400:
            location = response.header("Location") or ""
            error = f"HTTP {status} redirect to {location} (not followed)"
            kind = FailureKind.REDIRECT
        else:
            error, kind = f"HTTP {status}", FailureKind.HTTP_STATUS
        return AttemptResult(
            status, response.headers, response.body, latency, error, kind, retry_after
        )


class TokenError(Exception):
    """No OAuth2 token could be obtained; ``reason`` goes into the attempt's error."""

    def __init__(self, reason: str, *, status: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


async def client_credentials_token(
    sender: Sender, *, token_url: str, client_id: str, client_secret: str, scope: str | None
) -> tuple[str, float]:
    """An OAuth2 client-credentials access token and its lifetime in seconds.

    Shared by the dispatcher (which caches it) and the API's test calls (which do not),
    so both authenticate exactly alike, through the same SSRF guard.
    """
    if not token_url or not client_id:
        raise TokenError("oauth2: token_url and client_id are required")
    form = {"grant_type": "client_credentials"}
    if scope:
        form["scope"] = scope
    # RFC 6749 §2.3.1: client credentials in HTTP Basic, form-urlencoded first.
    basic = f"{quote_plus(client_id)}:{quote_plus(client_secret)}".encode()
    result = await sender.post_form(
        token_url, form, authorization="Basic " + base64.b64encode(basic).decode()
    )
    if result.error is not None:
        raise TokenError(f"oauth2 token request failed: {result.error}", status=result.status)
    try:
        payload = orjson.loads(result.body)
        value = payload["access_token"]
        lifetime = float(payload.get("expires_in", DEFAULT_TOKEN_LIFETIME_S))
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise TokenError("oauth2 token response without access_token") from exc
    if not isinstance(value, str) or not value:
        raise TokenError("oauth2 token response without access_token")
    # The token becomes a header of requests on connections other tenants share: only
    # the characters RFC 6750 allows, so it can never end the header or the request.
    if len(value) > MAX_TOKEN_CHARS or _B64TOKEN.fullmatch(value) is None:
        raise TokenError("oauth2 access_token is not an RFC 6750 b64token")
    if not math.isfinite(lifetime):
        lifetime = DEFAULT_TOKEN_LIFETIME_S
    return value, min(max(lifetime, 0.0), MAX_TOKEN_LIFETIME_S)
