"""The callback HTTP client (callbacks.http1 behind callbacks.sender) against real sockets.

Each server here is a plain asyncio TCP server on 127.0.0.1 that answers with exact
bytes, so framing cases a friendly framework would hide (chunked, read-until-close,
interim 1xx, a keep-alive connection closed under us, garbage) are tested as they
arrive on the wire.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from callbacks.failures import FailureKind, Scope
from callbacks.http1 import Limits
from callbacks.request import DeliveryRequest
from callbacks.sender import AttemptResult, Call, Sender

from tests.helpers import self_signed_certificate

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    """One request's head and body (Content-Length framed, as our client sends)."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    return head, await reader.readexactly(length)


@asynccontextmanager
async def serving(
    handler: Handler, tls: ssl.SSLContext | None = None
) -> AsyncIterator[tuple[str, list[asyncio.StreamWriter]]]:
    connections: list[asyncio.StreamWriter] = []

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer)
        try:
            await handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0, ssl=tls)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"{'https' if tls else 'http'}://127.0.0.1:{port}", connections
    finally:
        server.close()
        for writer in connections:
            writer.close()
        await server.wait_closed()


def answering(*responses: bytes, close: bool = False) -> Handler:
    """A handler that answers successive requests on a connection with ``responses``
    (the last one repeats), and closes after each when ``close``."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        index = 0
        while True:
            await read_request(reader)
            writer.write(responses[min(index, len(responses) - 1)])
            await writer.drain()
            index += 1
            if close:
                return

    return handle


def post(url: str, body: bytes = b'{"a": 1}') -> DeliveryRequest:
    return DeliveryRequest(
        "POST", url, (("Content-Type", "application/json"), ("X-Api-Key", "k")), body
    )


def sender(timeout_s: float = 5.0, tls: ssl.SSLContext | None = None) -> Sender:
    return Sender(allow_private_targets=True, timeout_s=timeout_s, tls=tls)


async def send_each(*urls: str, timeout_s: float = 5.0) -> list[AttemptResult]:
    """POST to each url in turn with one client (so kept-alive connections are reused)."""
    client = sender(timeout_s)
    try:
        return [await client.send(post(url)) for url in urls]
    finally:
        await client.close()


async def test_request_bytes_and_keep_alive_reuse() -> None:
    seen: list[tuple[bytes, bytes]] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            seen.append(await read_request(reader))
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    async with serving(handle) as (base, connections):
        client = sender()
        try:
            for _ in range(3):
                result = await client.send(post(f"{base}/hook/a?x=1&y=%20"))
                assert (result.ok, result.status, result.body) == (True, 200, b"ok")
        finally:
            await client.close()
    assert len(connections) == 1  # one kept-alive socket for all three
    head, body = seen[0]
    lines = head.decode().split("\r\n")
    assert lines[0] == "POST /hook/a?x=1&y=%20 HTTP/1.1"
    port = base.rsplit(":", 1)[1]
    assert lines[1] == f"Host: 127.0.0.1:{port}"
    assert "X-Api-Key: k" in lines
    assert "Content-Length: 8" in lines
    assert body == b'{"a": 1}'


async def test_chunked_and_headers() -> None:
    chunked = (
        b"HTTP/1.1 429 Too Many Requests\r\nTransfer-Encoding: chunked\r\n"
        b"retry-after: 7\r\n\r\n4\r\nslow\r\n5\r\n down\r\n0\r\n\r\n"
    )
    async with serving(answering(chunked)) as (base, _):
        [result] = await send_each(base)
    assert (result.status, result.body, result.error) == (429, b"slow down", "HTTP 429")
    assert result.retry_after_s == 7.0
    assert ("retry-after", "7") in result.headers


async def test_read_until_close_body() -> None:
    response = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nall of it"
    async with serving(answering(response, close=True)) as (base, connections):
        first, second = await send_each(base, base)
    assert (first.body, second.body) == (b"all of it", b"all of it")
    assert len(connections) == 2  # a closed connection is never reused


async def test_interim_response_is_skipped() -> None:
    response = b"HTTP/1.1 103 Early Hints\r\nLink: </s>\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n"
    async with serving(answering(response)) as (base, _):
        [result] = await send_each(base)
    assert (result.ok, result.status, result.body) == (True, 204, b"")


async def test_redirect_is_a_failure_with_its_location() -> None:
    response = (
        b"HTTP/1.1 302 Found\r\nLocation: https://elsewhere.example/\r\nContent-Length: 0\r\n\r\n"
    )
    async with serving(answering(response)) as (base, _):
        [result] = await send_each(base)
    assert result.error_kind == "redirect"
    assert result.error == "HTTP 302 redirect to https://elsewhere.example/ (not followed)"


async def test_gzip_body_is_decoded_and_large_bodies_are_cut() -> None:
    packed = gzip.compress(b'{"access_token": "t"}')
    big = b"x" * 100_000
    responses = (
        b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n%s"
        % (len(packed), packed),
        b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(big), big),
    )
    async with serving(answering(*responses)) as (base, _):
        client = Sender(allow_private_targets=True, timeout_s=5, limits=Limits(body_bytes=1000))
        try:
            decoded = await client.send(post(base))
            cut = await client.send(post(base))
        finally:
            await client.close()
    assert decoded.body == b'{"access_token": "t"}'
    assert (cut.status, cut.body) == (200, b"x" * 1000)


async def test_stale_keep_alive_connection_is_replaced_once() -> None:
    """The server drops a kept-alive connection just as our next request arrives (it
    reads it and closes without a byte back): that request goes out again, once, on a
    fresh connection."""
    response = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

    async def answer_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(response)
        await writer.drain()
        await read_request(reader)  # ... and hang up on the second

    async with serving(answer_once) as (base, connections):
        first, second = await send_each(base, base)
    assert first.ok
    assert second.ok
    assert len(connections) == 2


async def test_garbage_and_early_close_after_the_request_are_the_endpoints() -> None:
    """The request was written: a connection error then says something about the
    endpoint (its profile's breaker), not about the host taking connections."""

    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)

    for handler in (answering(b"SSH-2.0-OpenSSH_9.6\r\n\r\n"), hang_up):
        async with serving(handler) as (base, _):
            [result] = await send_each(base)
        assert result.error_kind == FailureKind.CONNECTION_LOST, result
        assert result.error_kind.scope is Scope.ENDPOINT
        assert result.error_kind.reached
        assert result.error is not None
        assert result.error.startswith("connection error: ")


async def test_timeout_and_refused_connection() -> None:
    async def never(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await asyncio.sleep(30)

    async with serving(never) as (base, _):
        client = sender(timeout_s=0.2)
        try:
            result = await client.send(post(base))
        finally:
            await client.close()
    assert (result.error_kind, result.error) == ("timeout", "timeout")
    assert 150 < result.latency_ms < 2000
    assert result.error_kind is not None
    assert result.error_kind.scope is Scope.ENDPOINT  # it was sent, then no answer
    [refused] = await send_each(base)  # the server is gone now
    assert refused.error_kind == FailureKind.CONNECTION
    assert refused.error_kind.scope is Scope.HOST  # nothing was sent
    assert not refused.error_kind.reached


async def test_invalid_urls_are_not_sent() -> None:
    client = sender()
    try:
        for url in ("ftp://127.0.0.1/x", "http://127.0.0.1:99999/x"):
            result = await client.send(post(url))
            assert result.error_kind == "invalid_request", url
    finally:
        await client.close()


def _certificate(tmp_path: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A server context with a self-signed certificate for 127.0.0.1, and a client
    context that trusts exactly that certificate."""
    cert_file, key_file = self_signed_certificate(tmp_path)
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert_file, key_file)
    client = ssl.create_default_context(cafile=str(cert_file))
    return server, client


async def test_tls_verified_and_unverified(tmp_path: Path) -> None:
    server_tls, client_tls = _certificate(tmp_path)
    response = b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecret"
    async with serving(answering(response), tls=server_tls) as (base, _):
        trusting = sender(tls=client_tls)
        default = sender()  # the system trust store does not know our certificate
        try:
            result = await trusting.send(post(base))
            refused = await default.send(post(base))
        finally:
            await trusting.close()
            await default.close()
    assert (result.ok, result.body) == (True, b"secret")
    assert refused.error_kind == "connection"
    assert refused.error is not None
    assert "CERTIFICATE_VERIFY_FAILED" in refused.error


async def test_on_answer_runs_with_the_status_before_the_caller_wakes() -> None:
    """The dispatcher hands a host's slot on from ``on_answer``: it must run once per
    parsed answer, before ``send`` returns, and not at all for a timeout."""
    calls: list[tuple[int, bool]] = []
    returned = False

    def on_answer(status: int) -> None:
        calls.append((status, returned))

    async def silent(reader: asyncio.StreamReader, _writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await asyncio.sleep(5)

    refused = b"HTTP/1.1 429 Too Many Requests\r\nContent-Length: 0\r\n\r\n"
    async with serving(answering(refused)) as (base, _), serving(silent) as (quiet, _):
        client = sender(timeout_s=0.3)
        try:
            result = await client.send(post(f"{base}/hook"), on_answer=on_answer)
            returned = True
            assert result.status == 429
            timed_out = await client.send(post(f"{quiet}/hook"), on_answer=on_answer)
            assert timed_out.error_kind == "timeout"
        finally:
            await client.close()
    assert calls == [(429, False)]


async def test_a_caller_cancelled_after_its_answer_leaves_the_reused_connection_alone() -> None:
    """A connection goes back to the pool when its answer is parsed, and ``on_answer``
    may start the next request on it at once; the first caller, cancelled before it
    woke, must not close that connection under the second request."""
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    async with serving(answering(ok)) as (base, connections):
        client = sender()
        try:
            await client.send(post(f"{base}/warm"))  # one kept-alive connection
            second: list[Call] = []
            first: asyncio.Task[AttemptResult] | None = None

            def on_answer(_status: int) -> None:
                second.append(client.begin(post(f"{base}/next")))
                assert first is not None
                first.cancel()

            first = asyncio.ensure_future(client.send(post(f"{base}/hook"), on_answer=on_answer))
            with contextlib.suppress(asyncio.CancelledError):
                await first
            assert second[0].written  # on the connection the first answer freed
            result = await second[0].result()
        finally:
            await client.close()
    assert (result.ok, result.body) == (True, b"ok")
    assert len(connections) == 1
