"""The one HTTP client that reaches customer endpoints (dispatcher and API test calls).

Why a module of its own: the SSRF guard only holds if every outgoing call goes through
the same checks. The connector gets *our* resolver, which drops every address that
``ssrf.forbidden_reason`` refuses, so the socket is opened only to an address that was
checked (a DNS answer that changes between check and connect cannot slip through);
IP-literal URLs bypass resolvers in aiohttp, so they are checked here before the call.
Redirects are never followed. Connections are pooled and kept alive.
"""

from __future__ import annotations

import base64
import ipaddress
import socket
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_plus

import aiohttp
import orjson
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from callbacks.request import DeliveryRequest
from callbacks.retry import parse_retry_after
from callbacks.ssrf import forbidden_reason

MAX_RESPONSE_BODY = 64 * 1024
DEFAULT_TOKEN_LIFETIME_S = 300.0


class ForbiddenTarget(OSError):
    """Every address of the host is one a callback may not reach."""

    def __init__(self, host: str, reason: str) -> None:
        super().__init__(f"target {host} refused: {reason}")
        self.host = host
        self.reason = reason


class GuardedResolver(AbstractResolver):
    """Wraps the default resolver and keeps only addresses the SSRF rules allow."""

    def __init__(
        self, *, allow_private_targets: bool, inner: AbstractResolver | None = None
    ) -> None:
        self._allow_private = allow_private_targets
        self._inner: AbstractResolver = inner or aiohttp.DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        if self._allow_private:
            return results
        allowed: list[ResolveResult] = []
        reason = "no address"
        for result in results:
            why = forbidden_reason(ipaddress.ip_address(result["host"]))
            if why is None:
                allowed.append(result)
            else:
                reason = why
        if not allowed:
            raise ForbiddenTarget(host, reason)
        return allowed

    async def close(self) -> None:
        await self._inner.close()


@dataclass(frozen=True)
class AttemptResult:
    """What one HTTP attempt gave. ``error`` is None only for a 2xx.

    ``error_kind`` is a bounded label for metrics: ``http_status``, ``redirect``,
    ``timeout``, ``connection``, ``forbidden_target``, ``invalid_request``.
    """

    status: int | None
    headers: tuple[tuple[str, str], ...]
    body: bytes
    latency_ms: float
    error: str | None
    error_kind: str | None = None
    retry_after_s: float | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def literal_ip_refusal(url: URL, allow_private_targets: bool) -> str | None:
    """Why an IP-literal URL host is refused (aiohttp does not resolve literals)."""
    if allow_private_targets or url.host is None:
        return None
    try:
        address = ipaddress.ip_address(url.host)
    except ValueError:
        return None
    return forbidden_reason(address)


def _forbidden_in(exc: BaseException) -> ForbiddenTarget | None:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ForbiddenTarget):
            return seen
        os_error = getattr(seen, "os_error", None)
        if isinstance(os_error, ForbiddenTarget):
            return os_error
        seen = seen.__cause__ or seen.__context__
    return None


class Sender:
    """A pooled, SSRF-guarded HTTP client. Create once, ``await close()`` at the end."""

    def __init__(
        self,
        *,
        allow_private_targets: bool,
        timeout_s: float,
        max_body_bytes: int = MAX_RESPONSE_BODY,
        resolver: AbstractResolver | None = None,
    ) -> None:
        self.allow_private_targets = allow_private_targets
        self.timeout_s = timeout_s
        self.max_body_bytes = max_body_bytes
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        connector = aiohttp.TCPConnector(
            resolver=resolver or GuardedResolver(allow_private_targets=allow_private_targets),
            limit=0,  # per-host caps are the dispatcher's job (endpoint protection)
            ttl_dns_cache=30,
            enable_cleanup_closed=True,
        )
        self.session = aiohttp.ClientSession(
            connector=connector,
            auto_decompress=True,
            skip_auto_headers=("User-Agent",),
            timeout=aiohttp.ClientTimeout(total=timeout_s),
        )

    async def close(self) -> None:
        await self.session.close()

    async def send(
        self, request: DeliveryRequest, *, timeout_s: float | None = None
    ) -> AttemptResult:
        url = URL(request.url, encoded=True)
        return await self._call(
            request.method,
            url,
            headers=list(request.headers),
            data=request.body,
            timeout_s=timeout_s,
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
        headers = [("Accept", "application/json")]
        if authorization is not None:
            headers.append(("Authorization", authorization))
        return await self._call("POST", URL(url), headers=headers, data=form, timeout_s=timeout_s)

    async def _call(
        self,
        method: str,
        url: URL,
        *,
        headers: list[tuple[str, str]],
        data: Any,
        timeout_s: float | None = None,
    ) -> AttemptResult:
        started = time.perf_counter()

        def elapsed() -> float:
            return (time.perf_counter() - started) * 1000.0

        refusal = literal_ip_refusal(url, self.allow_private_targets)
        if refusal is not None:
            return AttemptResult(
                None, (), b"", 0.0, f"target {url.host} refused: {refusal}", "forbidden_target"
            )
        timeout = self._timeout if timeout_s is None else aiohttp.ClientTimeout(total=timeout_s)
        try:
            async with self.session.request(
                method,
                url,
                headers=headers,
                data=data,
                allow_redirects=False,
                timeout=timeout,
            ) as response:
                body = await response.content.read(self.max_body_bytes)
                status = response.status
                out_headers = tuple(response.headers.items())
                latency = elapsed()
                if 200 <= status < 300:
                    return AttemptResult(status, out_headers, body, latency, None, None, None)
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
                if 300 <= status < 400:
                    location = response.headers.get("Location", "")
                    error = f"HTTP {status} redirect to {location} (not followed)"
                    kind = "redirect"
                else:
                    error, kind = f"HTTP {status}", "http_status"
                return AttemptResult(status, out_headers, body, latency, error, kind, retry_after)
        except TimeoutError:
            return AttemptResult(None, (), b"", elapsed(), "timeout", "timeout")
        except aiohttp.InvalidURL as exc:
            return AttemptResult(None, (), b"", elapsed(), f"invalid url: {exc}", "invalid_request")
        except (aiohttp.ClientError, OSError) as exc:
            forbidden = _forbidden_in(exc)
            if forbidden is not None:
                return AttemptResult(None, (), b"", elapsed(), str(forbidden), "forbidden_target")
            text = str(exc) or type(exc).__name__
            return AttemptResult(
                None, (), b"", elapsed(), f"connection error: {text}", "connection"
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
    return value, lifetime
