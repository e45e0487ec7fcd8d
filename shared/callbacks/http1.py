"""A small HTTP/1.1 client for callbacks: one request, one response, pooled connections.

Why our own and not ``aiohttp.ClientSession``: a callback is the simplest HTTP exchange
there is (a short body out, a status and a few headers back) and the dispatcher makes
thousands a second on one core. ``ClientSession.request`` spent ~250 µs of CPU on each
(request and response objects, cookie jar, tracing hooks, timers, stream readers), about
half of everything the dispatcher did per callback. Here a request is one ``bytes`` written
to a kept-alive socket and the response is parsed by httptools (the C llhttp parser that
Node.js uses), so the client costs a fraction of that.

What it does, and nothing more: HTTP/1.1 over TCP or TLS (certificates verified against
the system's trust store), keep-alive with a per-origin pool of idle connections,
``Content-Length``, chunked and read-until-close responses, gzip/deflate response bodies,
and a total timeout per request. Redirects are never followed. The caller chooses the
addresses to connect to (``connect_to``), so the SSRF guard decides where a socket goes.

What it refuses, so that neither a caller's value nor a peer's answer can break the
framing of a connection that other tenants' callbacks share: ``serialize`` writes no
request whose method or header name is not an RFC 9110 token, whose header value holds a
control character, or whose target holds anything but visible ASCII (``InvalidRequest``);
and an answer may use at most ``Limits`` of header section, header fields and bytes on
the wire before the connection is dropped (``ProtocolError``), interim answers included.
"""

from __future__ import annotations

import asyncio
import re
import ssl
import time
import zlib
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import cast

import httptools

# A pooled connection idle for longer is dropped, not reused: servers close idle
# keep-alive connections after 5-75 s (nginx 75 s, Node 5 s) and a request written to a
# socket the server is closing is lost.
IDLE_S = 4.0
MAX_IDLE_PER_ORIGIN = 256


class ProtocolError(ConnectionError):
    """The peer's answer was not valid HTTP/1.1, went past ``Limits``, or the connection
    ended mid-response."""


class InvalidRequest(ValueError):
    """A request ``serialize`` will not write: it could end early or smuggle another
    request onto the connection. The message names the part, never its value."""


@dataclass(frozen=True)
class Limits:
    """How much of an answer is read. Defaults are no looser than aiohttp's client
    (8190 bytes per header field, 128 headers; it has no limit on the whole section)."""

    body_bytes: int = 64 * 1024  # kept of the body; the rest is dropped with the connection
    header_bytes: int = 32 * 1024  # the status lines and headers of an exchange, 1xx included
    header_field_bytes: int = 8190  # one header's name and value
    headers: int = 100  # header fields of an exchange, 1xx and trailers included

    @property
    def tail_bytes(self) -> int:
        """Bytes after the header section (body, chunk framing, trailers): twice the body
        leaves room for any sane chunking; beyond it the answer is cut like a long body."""
        return 2 * self.body_bytes + self.header_bytes


_UPGRADE = "invalid HTTP response: 101 Switching Protocols unasked"
# RFC 9110 §5.6.2 token (methods and header names).
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# Any control character: C0 (HTAB included), DEL and C1. CR and LF would end the field.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_C1 = re.compile(r"[\x80-\x9f]")
# Bytes a request head may hold: visible ASCII, space, CR, LF and UTF-8's high bytes.
_ALLOWED_BYTES = b"\r\n" + bytes(range(0x20, 0x7F)) + bytes(range(0x80, 0x100))
# What h11 and RFC 9112 accept in a request target: visible ASCII, no space.
_TARGET = re.compile(r"[\x21-\x7e]+")
# Names and methods found to be tokens: a handful, met on every request.
_TOKENS: set[str] = set()


def valid_token(text: str) -> bool:
    """A method or header name (RFC 9110 token)."""
    if text in _TOKENS:
        return True
    if _TOKEN.fullmatch(text) is None:
        return False
    if len(_TOKENS) < 4096:
        _TOKENS.add(text)
    return True


def valid_field_value(text: str) -> bool:
    """A header value ``serialize`` will write: no control character at all."""
    return _CONTROL.search(text) is None


@dataclass(frozen=True)
class Response:
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive)."""
        wanted = name.lower()
        for key, value in self.headers:
            if key.lower() == wanted:
                return value
        return None


@dataclass(frozen=True)
class Origin:
    """Where a request goes: scheme, host (as in the URL) and port."""

    scheme: str
    host: str
    port: int

    @property
    def tls(self) -> bool:
        return self.scheme == "https"

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.tls else 80
        return host if self.port == default else f"{host}:{self.port}"


class _Connection(asyncio.Protocol):
    """One socket; at most one request at a time on it (no pipelining). It goes back to
    its pool (``on_free``) as soon as a kept-alive answer is read, before anyone awaits
    the answer, so ``on_answer`` can already start the next request on it."""

    def __init__(
        self, origin: Origin, limits: Limits, on_free: Callable[[_Connection], None]
    ) -> None:
        self.origin = origin
        self._limits = limits
        self._max_body = limits.body_bytes
        self._on_free = on_free
        self.transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._waiter: asyncio.Future[Response] | None = None
        self._on_answer: Callable[[int], None] | None = None
        self._headers: list[tuple[str, str]] = []
        self._body: list[bytes] = []
        self._body_size = 0
        self._headers_done = False
        self._framed = False  # Content-Length or chunked: the end is known without EOF
        self._keep_alive = False
        self._in_head = True  # reading status lines and headers (not body or trailers)
        self._room = limits.header_bytes  # bytes left for the part being read
        self._header_count = 0
        self._error: ProtocolError | None = None  # why a callback stopped the parser
        self.got_bytes = False  # any byte of a response arrived (a retry would be unsafe)
        self.closed = False
        self.idle_since = 0.0

    # -- asyncio.Protocol --------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not subclasses of asyncio.Transport, only alike.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.got_bytes = True
        if self._waiter is None:
            self.close()  # bytes nobody asked for would be read as the next answer
            return
        view = memoryview(data)
        try:
            # Fed in pieces no larger than what the current part may still take, so the
            # parser never holds more than the limits (an endless header is buffered by
            # httptools until it ends).
            while view and not self.closed:
                if self._room <= 0:
                    self._over_limit()
                    return
                piece, view = view[: self._room], view[self._room :]
                self._room -= len(piece)
                self._parser.feed_data(piece)
            if self._room <= 0 and not self.closed and self._waiter is not None:
                self._over_limit()
        except httptools.HttpParserUpgrade:  # before on_headers_complete refuses it
            self._fail(ProtocolError(_UPGRADE))
            self.close()
        except httptools.HttpParserError as exc:
            self._fail(self._error or ProtocolError(f"invalid HTTP response: {exc}"))
            self.close()

    def _over_limit(self) -> None:
        if self._in_head:
            limit = self._limits.header_bytes
            self._fail(ProtocolError(f"response header section over {limit} bytes"))
            self.close()
        else:
            self._finish(keep_alive=False)  # body cut: drop the rest with the connection

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        if self._headers_done and not self._framed:
            self._finish(keep_alive=False)  # a read-until-close body ends here
            return
        reason = f": {exc}" if exc else ""
        self._fail(ProtocolError(f"server closed the connection before answering{reason}"))

    # -- httptools callbacks -------------------------------------------------------------
    def on_message_begin(self) -> None:
        if self._waiter is None:
            self.close()  # an answer after the answer: the connection is out of step
        self._headers = []
        self._body = []
        self._body_size = 0
        self._headers_done = False
        self._framed = False

    def on_header(self, name: bytes, value: bytes) -> None:
        limits = self._limits
        if len(name) + len(value) > limits.header_field_bytes:
            self._stop(f"response header field over {limits.header_field_bytes} bytes")
        self._header_count += 1
        if self._header_count > limits.headers:
            self._stop(f"response with more than {limits.headers} header fields")
        self._headers.append((name.decode("latin-1"), value.decode("latin-1")))

    def _stop(self, reason: str) -> None:
        """End parsing from inside a parser callback (``feed_data`` then raises)."""
        self._error = ProtocolError(reason)
        raise self._error

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if status == 101:  # we never ask to switch protocols; llhttp would stop here
            self._stop(_UPGRADE)
        self._headers_done = True
        for key, value in self._headers:
            lowered = key.lower()
            if lowered == "content-length" or (
                lowered == "transfer-encoding" and "chunked" in value.lower()
            ):
                self._framed = True
        if status in (204, 304) or status < 200:
            self._framed = True  # no body by definition
        self._keep_alive = self._parser.should_keep_alive()
        if status >= 200:
            self._in_head = False
            self._room += self._limits.tail_bytes

    def on_body(self, body: bytes) -> None:
        room = self._max_body - self._body_size
        if room > 0:
            chunk = body[:room]
            self._body.append(chunk)
            self._body_size += len(chunk)
        if self._body_size >= self._max_body:
            self._finish(keep_alive=False)  # enough: drop the rest with the connection

    def on_message_complete(self) -> None:
        if self._parser.get_status_code() < 200:
            return  # an interim answer (100, 103): the real one follows on this socket
        self._finish(keep_alive=self._keep_alive)

    # -- requests ------------------------------------------------------------------------
    def start(
        self, payload: bytes, on_answer: Callable[[int], None] | None
    ) -> asyncio.Future[Response]:
        """Write one request; the future is its response (``Pool.start`` on
        ``on_answer``)."""
        assert self.transport is not None
        self.got_bytes = False
        self._in_head = True
        self._room = self._limits.header_bytes
        self._header_count = 0
        self._error = None
        self._on_answer = on_answer
        waiter = self._waiter = asyncio.get_running_loop().create_future()
        self.transport.write(payload)
        return waiter

    def _finish(self, *, keep_alive: bool) -> None:
        waiter, self._waiter = self._waiter, None
        if not keep_alive:
            self.close()
        if waiter is None or waiter.done():
            return
        body = b"".join(self._body)
        try:
            body = _decoded(body, self._headers, self._max_body)
        except zlib.error as exc:
            waiter.set_exception(ProtocolError(f"undecodable response body: {exc}"))
            return
        status = self._parser.get_status_code()
        waiter.set_result(Response(status, tuple(self._headers), body))
        if keep_alive:
            self._on_free(self)
        on_answer, self._on_answer = self._on_answer, None
        if on_answer is not None:
            on_answer(status)

    def time_out(self) -> None:
        self._fail(TimeoutError())
        self.close()

    def _fail(self, exc: Exception) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    @property
    def reusable(self) -> bool:
        return not self.closed and self._waiter is None and self.transport is not None

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


def _decoded(body: bytes, headers: list[tuple[str, str]], limit: int) -> bytes:
    """Undo a gzip or deflate ``Content-Encoding`` (we never ask for one, but some
    servers send it anyway), keeping at most ``limit`` bytes."""
    for key, value in headers:
        if key.lower() == "content-encoding":
            coding = value.strip().lower()
            if coding in ("gzip", "x-gzip"):
                return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(body, limit)
            if coding == "deflate":
                return zlib.decompressobj().decompress(body, limit)
    return body


def serialize(
    method: str, origin: Origin, target: str, headers: list[tuple[str, str]], body: bytes | None
) -> bytes:
    """The request bytes; raises ``InvalidRequest`` rather than write a request that is
    not exactly one well-formed HTTP/1.1 message, whatever its caller checked."""
    host = origin.host_header
    lines = [f"{method} {target} HTTP/1.1\r\nHost: {host}\r\n"]
    names_ok = valid_token(method)
    for key, value in headers:
        names_ok = valid_token(key) and names_ok
        lines.append(f"{key}: {value}\r\n")
    if body is not None or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body) if body else 0}\r\n")
    lines.append("\r\n")
    text = "".join(lines)
    head = text.encode("utf-8")
    # Checked on the whole head at once (this runs for every callback): the only CR and
    # LF are the line ends written here, no other control character is anywhere, and
    # target and host are visible ASCII (their controls are among the head's).
    breaks = len(lines) + 1
    if (
        not names_ok
        or head.count(b"\n") != breaks
        or head.count(b"\r") != breaks
        or head.translate(None, _ALLOWED_BYTES)
        or not (text.isascii() or _C1.search(text) is None)
        or not (target and target.isascii() and " " not in target)
        or not (host and host.isascii() and " " not in host)
    ):
        raise _refusal(method, target, host, headers)
    return head + body if body else head


def _refusal(method: str, target: str, host: str, headers: list[tuple[str, str]]) -> InvalidRequest:
    """What ``serialize`` refused, named without its value."""
    if not valid_token(method):
        return InvalidRequest("method is not an RFC 9110 token")
    if _TARGET.fullmatch(target) is None:
        return InvalidRequest("request target holds a space, control or non-ASCII character")
    if _TARGET.fullmatch(host) is None:
        return InvalidRequest("host holds a space, control or non-ASCII character")
    for key, value in headers:
        if not valid_token(key):
            return InvalidRequest("a header name is not an RFC 9110 token")
        if not valid_field_value(value):
            return InvalidRequest(f"header {key} holds a control character")
    return InvalidRequest("request head is malformed")


class Exchange:
    """One request on its way (``Pool.start``): its connection once written, the response
    future, and one timer for the deadline (cheaper than ``asyncio.timeout``)."""

    __slots__ = ("_response", "_timer", "conn", "deadline", "on_answer", "origin", "payload")

    def __init__(
        self,
        origin: Origin,
        payload: bytes,
        deadline: float,
        on_answer: Callable[[int], None] | None,
    ) -> None:
        self.origin, self.payload, self.deadline = origin, payload, deadline
        self.on_answer = on_answer
        self.conn: _Connection | None = None
        self._response: asyncio.Future[Response] | None = None
        self._timer: asyncio.TimerHandle | None = None

    @property
    def written(self) -> bool:
        """The request went out on the connection it is on now (the failure of one
        that did not is the host's, not the endpoint's: ``callbacks.failures``)."""
        return self._response is not None

    def detach(self) -> None:
        """Forget a kept-alive connection that closed before answering anything."""
        self.conn, self._response, self._timer = None, None, None

    def begin(self, loop: asyncio.AbstractEventLoop, conn: _Connection) -> None:
        self.conn = conn
        self._timer = loop.call_at(self.deadline, conn.time_out)
        self._response = conn.start(self.payload, self.on_answer)

    async def wait(self) -> Response:
        assert self.conn is not None
        assert self._response is not None
        assert self._timer is not None
        response = self._response
        try:
            return await response
        except BaseException:
            if not response.done() or response.cancelled() or response.exception():
                self.conn.close()  # mid-exchange (timeout, cancel, error): unusable
            # else answered, then cancelled: the connection is back in the pool already
            raise
        finally:
            self._timer.cancel()


class Pool:
    """Kept-alive connections per origin, most recently used first."""

    def __init__(self, *, limits: Limits, tls: ssl.SSLContext | None = None) -> None:
        self._limits = limits
        self._idle: dict[Origin, deque[_Connection]] = {}
        self._tls = tls  # None: the system's trust store, made on first use
        self._closed = False

    def _tls_context(self) -> ssl.SSLContext:
        if self._tls is None:
            self._tls = ssl.create_default_context()
        return self._tls

    def _take_idle(self, origin: Origin) -> _Connection | None:
        idle = self._idle.get(origin)
        now = time.monotonic()
        while idle:
            conn = idle.pop()
            if conn.reusable and now - conn.idle_since < IDLE_S:
                return conn
            conn.close()
        return None

    def _give_back(self, conn: _Connection) -> None:
        if self._closed or not conn.reusable:
            conn.close()
            return
        idle = self._idle.setdefault(conn.origin, deque())
        if len(idle) >= MAX_IDLE_PER_ORIGIN:
            conn.close()
            return
        conn.idle_since = time.monotonic()
        idle.append(conn)

    async def _connect(self, origin: Origin, addresses: list[str]) -> _Connection:
        loop = asyncio.get_running_loop()
        error: OSError | None = None
        for address in addresses:
            try:
                _transport, conn = await loop.create_connection(
                    lambda: _Connection(origin, self._limits, self._give_back),
                    address,
                    origin.port,
                    ssl=self._tls_context() if origin.tls else None,
                    server_hostname=origin.host if origin.tls else None,
                )
            except OSError as exc:  # ssl.SSLError is an OSError too
                error = exc
                continue
            return conn
        raise error or ConnectionError(f"no address to connect to for {origin.host}")

    def start(
        self,
        origin: Origin,
        payload: bytes,
        *,
        timeout_s: float,
        on_answer: Callable[[int], None] | None = None,
    ) -> Exchange:
        """Begin sending ``payload`` (from ``serialize``) to ``origin``: written now if a
        kept-alive connection is idle (``Exchange.written``), else by ``finish``, which
        connects first. ``timeout_s`` counts from now. ``on_answer(status)`` runs as soon
        as a whole response is parsed, a loop turn before the caller wakes (the
        dispatcher hands the host's slot on from there); it must not raise."""
        loop = asyncio.get_running_loop()
        exchange = Exchange(origin, payload, loop.time() + timeout_s, on_answer)
        conn = self._take_idle(origin)
        if conn is not None:
            exchange.begin(loop, conn)
        return exchange

    async def finish(
        self,
        exchange: Exchange,
        *,
        connect_to: Callable[[], Awaitable[list[str]]] | None,
    ) -> Response:
        """The response to a started exchange; raises TimeoutError past its deadline.

        ``connect_to`` gives the addresses a new connection may use, in order; None means
        the origin's host as it is (an IP literal). A kept-alive connection closed before
        answering anything is replaced once by a fresh one, as browsers do."""
        if exchange.conn is not None:
            try:
                return await exchange.wait()
            except ProtocolError:
                if exchange.conn.got_bytes:
                    raise
                exchange.detach()
        origin = exchange.origin
        async with asyncio.timeout_at(exchange.deadline):
            addresses = [origin.host] if connect_to is None else await connect_to()
            conn = await self._connect(origin, addresses)
        exchange.begin(asyncio.get_running_loop(), conn)
        return await exchange.wait()

    def close(self) -> None:
        self._closed = True
        for idle in self._idle.values():
            for conn in idle:
                conn.close()
        self._idle.clear()
