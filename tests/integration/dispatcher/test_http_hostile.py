"""The callback client against hostile peers on real loopback sockets: a tenant's token
endpoint that tries to smuggle a request onto a shared receiver, answers past the
header limits, a ``101``, and (fuzzed) answers of every bad shape, each of which must
end in a bounded result within the timeout, in bounded memory, and never as an
exception out of the client or into the event loop."""

from __future__ import annotations

import asyncio
import gzip
import time
import tracemalloc
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any

import h11
import orjson
import pytest
from callbacks.http1 import Limits
from callbacks.models.profiles import ProfileRecord
from callbacks.request import DeliveryRequest, build_request, static_auth_header
from callbacks.sender import AttemptResult, Sender, TokenError
from callbacks.settings import Settings
from dispatcher.oauth import TokenCache
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.integration.dispatcher.helpers import make_profile
from tests.integration.dispatcher.sink import Reply, Sink
from tests.integration.dispatcher.test_http_client import Handler, answering, post, read_request
from tests.integration.dispatcher.test_test_calls import PROFILE, _api

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
VARIABLES = {"message_id": "m-1", "status": "delivered", "to": "+15550100"}


@asynccontextmanager
async def serving(handler: Handler) -> AsyncIterator[tuple[str, list[asyncio.StreamWriter]]]:
    """A TCP server on 127.0.0.1 running ``handler`` per connection; on exit every
    connection is closed and every handler has returned (none is left to be cancelled)."""
    connections: list[asyncio.StreamWriter] = []
    handlers: set[asyncio.Task[None]] = set()

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer)
        task = asyncio.current_task()
        assert task is not None
        handlers.add(task)
        try:
            await handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client hung up: what a hostile server expects
        finally:
            writer.close()

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", connections
    finally:
        server.close()
        for writer in connections:
            writer.close()
        if handlers:
            await asyncio.wait(handlers, timeout=5)
        await server.wait_closed()


@contextmanager
def loop_errors() -> Iterator[list[dict[str, Any]]]:
    """What reaches the event loop's exception handler meanwhile (an exception that
    escaped a protocol callback lands there)."""
    loop = asyncio.get_running_loop()
    seen: list[dict[str, Any]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: seen.append(context))
    try:
        yield seen
    finally:
        loop.set_exception_handler(previous)


@dataclass
class Receiver:
    """What a strict HTTP/1.1 server (h11) read from each connection."""

    requests: list[tuple[h11.Request, bytes]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    connections: int = 0


@asynccontextmanager
async def shared_receiver() -> AsyncIterator[tuple[str, Receiver]]:
    """An endpoint several tenants send to; every request it parses is answered 200."""
    seen = Receiver()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.connections += 1
        conn = h11.Connection(h11.SERVER)
        request: h11.Request | None = None
        body = b""
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                data = await reader.read(65536)
                conn.receive_data(data)
                if not data:
                    return
            elif isinstance(event, h11.Request):
                request, body = event, b""
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                assert request is not None
                seen.requests.append((request, body))
                writer.write(conn.send(h11.Response(status_code=200, headers=[])) or b"")
                writer.write(conn.send(h11.EndOfMessage()) or b"")
                conn.start_next_cycle()
            else:
                return

    async def guarded(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await handle(reader, writer)
        except h11.RemoteProtocolError as exc:
            seen.errors.append(str(exc))

    async with serving(guarded) as (base, _connections):
        yield base, seen


def token_endpoint(access_token: str) -> bytes:
    body = orjson.dumps({"access_token": access_token, "expires_in": 3600})
    return b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (
        len(body),
        body,
    )


def request_for(profile: ProfileRecord, auth_header: str | None) -> DeliveryRequest:
    return build_request(
        profile,
        VARIABLES,
        delivery_id=f"dlv_{profile.id}",
        timestamp=int(time.time()),
        auth_header=auth_header,
    )


SMUGGLED = (
    "t0k\r\nContent-Length: 0\r\n\r\n"
    "POST /injected HTTP/1.1\r\nHost: shared.example\r\nContent-Length: 600\r\n\r\n"
)


async def test_a_token_with_crlf_smuggles_nothing_into_a_shared_receiver() -> None:
    """Tenant A's token endpoint answers a token that would end A's request and start a
    second one whose body swallows the next request on the connection: tenant B's, with
    B's credentials and signed payload. Neither the token cache nor ``serialize`` lets
    it through, and B's callback reaches the receiver intact on the same connection."""
    async with (
        serving(answering(token_endpoint(SMUGGLED))) as (token_base, _),
        shared_receiver() as (hook, receiver),
    ):
        tenant_a = make_profile(
            f"{hook}/a",
            account_id="acc-a",
            authentication={
                "type": "oauth2_client_credentials",
                "token_url": f"{token_base}/token",
                "client_id": "a",
                "client_secret": "s",
            },
        )
        tenant_b = make_profile(
            f"{hook}/b",
            account_id="acc-b",
            authentication={"type": "basic", "username": "b", "password": "b-secret"},
        )
        sender = Sender(allow_private_targets=True, timeout_s=5)
        try:
            warm = await sender.send(request_for(tenant_b, static_auth_header(tenant_b)))
            assert warm.ok  # one kept-alive connection to the receiver
            with pytest.raises(TokenError, match="RFC 6750"):
                await TokenCache(sender).header(tenant_a)
            # Whatever a caller checked or forgot: the same token straight into a request.
            smuggling = await sender.send(request_for(tenant_a, f"Bearer {SMUGGLED}"))
            sent_b = request_for(tenant_b, static_auth_header(tenant_b))
            delivered = await sender.send(sent_b)
        finally:
            await sender.close()
    assert smuggling.error_kind == "invalid_request"
    assert smuggling.error == "invalid request: header Authorization holds a control character"
    assert delivered.ok
    assert receiver.errors == []
    assert receiver.connections == 1  # nothing was written for A: the connection stayed good
    assert [request.target for request, _ in receiver.requests] == [b"/b", b"/b"]
    request, body = receiver.requests[1]
    headers = [(n.decode(), v.decode()) for n, v in request.headers]
    assert [(n, v) for n, v in headers if n not in ("host", "content-length")] == [
        (name.lower(), value) for name, value in sent_b.headers
    ]
    assert body == sent_b.body


async def test_the_api_test_call_refuses_a_token_with_crlf_too(
    topics: Settings, sink: Sink
) -> None:
    """The Test call fetches its token through the same ``client_credentials_token``."""
    sink.script("/evil-token", Reply(200, body=orjson.dumps({"access_token": SMUGGLED})))
    profile = {
        **PROFILE,
        "url": sink.url("/t"),
        "authentication": {
            "type": "oauth2_client_credentials",
            "token_url": sink.url("/evil-token"),
            "client_id": "a",
            "client_secret": "s",
        },
    }
    async for api in _api(topics):
        reply = await api.call("POST", "/v1/callback-profiles/test", json=profile)
        assert reply.status == 200, reply.body
        assert reply.body["delivered"] is False
        assert reply.body["request"] is None
        assert reply.body["error"] == "oauth2 access_token is not an RFC 6750 b64token"
    assert sink.at("/t") == []


async def write_endless(writer: asyncio.StreamWriter, unit: bytes) -> None:
    """``unit`` over and over until the client hangs up (a cap only for a broken one)."""
    if not unit:
        return
    batch = unit * max(1, 4096 // len(unit))
    for _ in range(256 * 1024 * 1024 // len(batch)):
        writer.write(batch)
        await writer.drain()
        await asyncio.sleep(0)  # drain does not yield below the high-water mark


async def hostile(
    script: bytes | list[bytes],
    *,
    endless: bytes = b"",
    limits: Limits | None = None,
    timeout_s: float = 2.0,
) -> tuple[AttemptResult, float, list[dict[str, Any]]]:
    """One POST to a server that answers ``script`` and then writes ``endless`` until
    the client hangs up; the result, the seconds it took and any loop errors."""
    pieces = [script] if isinstance(script, bytes) else script

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        for piece in pieces:
            writer.write(piece)
            await writer.drain()
        await write_endless(writer, endless)
        await reader.read()  # wait for the client to hang up

    async with serving(handle) as (base, _):
        client = Sender(allow_private_targets=True, timeout_s=timeout_s, limits=limits)
        with loop_errors() as errors:
            started = time.monotonic()
            try:
                result = await client.send(post(base))
            finally:
                await client.close()
            took = time.monotonic() - started
    return result, took, errors


HEAD = b"HTTP/1.1 200 OK\r\n"


@pytest.mark.parametrize(
    ("script", "endless", "error"),
    [
        (HEAD + b"X-Endless: ", b"a" * 4096, "response header section over 32768 bytes"),
        (HEAD, b"X-Many: v\r\n", "response with more than 100 header fields"),
        (HEAD + b"X-Big: " + b"a" * 8190 + b"\r\n\r\n", b"", "header field over 8190 bytes"),
        (
            HEAD + b"X-Fill: " + b"a" * 8000 + b"\r\n",
            b"X-Fill: " + b"a" * 8000 + b"\r\n",
            "section",
        ),
        (b"", b"HTTP/1.1 100 Continue\r\n\r\n", "response header section over 32768 bytes"),
        (b"", b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n", "than 100 header fields"),
        (b"HTTP/1.1 200 ", b"O" * 4096, "response header section over 32768 bytes"),
    ],
    ids=["endless-line", "many", "big-field", "big-section", "100-flood", "103-flood", "reason"],
)
async def test_header_section_limits_drop_the_connection(
    script: bytes, endless: bytes, error: str
) -> None:
    result, took, errors = await hostile(script, endless=endless)
    # The request was written: a hostile answer is the endpoint's, not the host's.
    assert result.error_kind == "connection_lost", result
    assert result.error is not None
    assert error in result.error
    assert took < 1.5  # the limit, not the 2 s timeout, ended it
    assert errors == []


async def test_header_limits_are_configurable() -> None:
    five = HEAD + b"".join(b"X-%d: v\r\n" % i for i in range(5)) + b"Content-Length: 0\r\n\r\n"
    six = HEAD + b"".join(b"X-%d: v\r\n" % i for i in range(6)) + b"Content-Length: 0\r\n\r\n"
    assert (await hostile(five, limits=Limits(headers=6)))[0].ok
    refused, _took, _errors = await hostile(six, limits=Limits(headers=6))
    assert refused.error == "connection error: response with more than 6 header fields"
    small = Limits(header_bytes=1024, header_field_bytes=300)

    def field(size: int) -> bytes:  # one header field of ``size`` bytes, name and value
        return HEAD + b"X-A: " + b"a" * (size - 3) + b"\r\nContent-Length: 0\r\n\r\n"

    assert (await hostile(field(300), limits=small))[0].ok
    over, _took, _errors = await hostile(field(301), limits=small)
    assert over.error == "connection error: response header field over 300 bytes"
    long = HEAD + b"".join(b"X-%d: %s\r\n" % (i, b"a" * 200) for i in range(5)) + b"\r\n"
    section, _took, _errors = await hostile(long, limits=small)
    assert section.error == "connection error: response header section over 1024 bytes"


async def test_endless_trailers_and_chunks_end_as_a_cut_body() -> None:
    chunked = HEAD + b"Transfer-Encoding: chunked\r\n\r\n"
    body, took, errors = await hostile(chunked, endless=b"1000\r\n" + b"a" * 4096 + b"\r\n")
    assert (body.status, len(body.body)) == (200, 64 * 1024)
    trailers, took_t, errors_t = await hostile(
        chunked + b"2\r\nok\r\n0\r\n", endless=b"T: v" * 1024
    )
    assert (trailers.status, trailers.body) == (200, b"ok")
    assert max(took, took_t) < 1.5
    assert errors == errors_t == []


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
        b"\x81\x05hello",
        b"HTTP/1.1 101 Switching Protocols\r\n\r\n",
    ],
)
async def test_a_101_answer_is_a_clean_failure(answer: bytes) -> None:
    result, took, errors = await hostile(answer)
    assert result.error_kind == "connection_lost"
    assert result.error == (
        "connection error: invalid HTTP response: 101 Switching Protocols unasked"
    )
    assert errors == []  # nothing escaped into the event loop
    assert took < 1.5


async def test_an_answer_out_of_turn_closes_the_connection() -> None:
    """Bytes after a complete answer are no answer to anything: the connection goes,
    so they can never be read as the answer to the next request."""
    stray = OK + b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nst"

    accepted = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal accepted
        accepted += 1
        if accepted == 1:
            await read_request(reader)
            writer.write(stray)
        while True:
            await read_request(reader)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nright")

    async with serving(handle) as (base, connections):
        client = Sender(allow_private_targets=True, timeout_s=2)
        try:
            first = await client.send(post(base))
            second = await client.send(post(base))
        finally:
            await client.close()
    assert (first.body, second.body) == (b"ok", b"right")
    assert len(connections) == 2


# -- fuzzing ---------------------------------------------------------------------------

FUZZ_TIMEOUT_S = 0.5
# A gzip bomb: 16 MiB of zeros in ~16 KiB, under the body limit, so all of it arrives.
BOMB = gzip.compress(b"\0" * (16 * 1024 * 1024), compresslevel=9)


@dataclass(frozen=True)
class Answer:
    """A hostile answer: pieces written in turn (``gap_s`` apart: a slow drip), then
    ``endless`` until the client hangs up, or a close."""

    pieces: tuple[bytes, ...]
    endless: bytes = b""
    gap_s: float = 0.0


def _valid(status: int, headers: list[tuple[bytes, bytes]], body: bytes, chunked: bool) -> bytes:
    head = b"HTTP/1.1 %d X\r\n" % status + b"".join(b"%s: %s\r\n" % h for h in headers)
    if chunked:
        return head + b"Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n" % (
            len(body),
            body,
        )
    return head + b"Content-Length: %d\r\n\r\n%s" % (len(body), body)


_name = st.binary(min_size=1, max_size=16)
_valid_answers = st.builds(
    _valid,
    st.sampled_from([100, 101, 103, 200, 204, 301, 404, 429, 500, 999]),
    st.lists(st.tuples(_name, st.binary(max_size=64)), max_size=8),
    st.binary(max_size=256),
    st.booleans(),
)


def _cut(answer: bytes, at: int) -> Answer:
    return Answer((answer[: at % (len(answer) + 1)],))  # then the server closes


def _drip(answer: bytes) -> Answer:
    return Answer(tuple(answer[i : i + 1] for i in range(len(answer))), gap_s=0.02)


generated_answers = st.one_of(
    st.binary(max_size=4096).map(lambda data: Answer((data,))),
    st.builds(_cut, _valid_answers, st.integers(min_value=0)),
    _valid_answers.map(lambda data: Answer((data,))),
    _valid_answers.map(_drip),
    st.integers(min_value=8000, max_value=400_000).map(
        lambda n: Answer((HEAD + b"X-Big: " + b"a" * n + b"\r\n\r\n",))
    ),
)

CHUNKED = HEAD + b"Transfer-Encoding: chunked\r\n\r\n"
# Answers that a limit must end long before the timeout.
HOSTILE = {
    "endless-header-line": Answer((HEAD + b"X-Endless: ",), endless=b"a" * 4096),
    "endless-headers": Answer((HEAD,), endless=b"X-Many: v\r\n"),
    "huge-header": Answer((HEAD + b"X-Big: " + b"a" * 1_000_000 + b"\r\n\r\n",)),
    "endless-status-line": Answer((b"HTTP/1.1 200 ",), endless=b"O" * 4096),
    "100-flood": Answer((b"",), endless=b"HTTP/1.1 100 Continue\r\n\r\n"),
    "103-flood": Answer((b"",), endless=b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"),
    "endless-chunks": Answer((CHUNKED,), endless=b"1000\r\n" + b"a" * 4096 + b"\r\n"),
    "endless-chunk-extension": Answer((CHUNKED + b"1;",), endless=b"e" * 4096),
    "endless-trailers": Answer((CHUNKED + b"0\r\n",), endless=b"T: v\r\n"),
    "endless-trailer-line": Answer((CHUNKED + b"0\r\nT: ",), endless=b"v" * 4096),
    "endless-read-until-close": Answer((HEAD + b"Connection: close\r\n\r\n",), b"b" * 4096),
    "gzip-bomb": Answer(
        (HEAD + b"Content-Encoding: gzip\r\nContent-Length: %d\r\n\r\n" % len(BOMB), BOMB)
    ),
    "chunked-gzip-bomb": Answer(
        (
            HEAD + b"Content-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"%x\r\n%s\r\n0\r\n\r\n" % (len(BOMB), BOMB),
        )
    ),
    "101-then-bytes": Answer((b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n",), b"\0"),
    "early-close": Answer(()),
    "random-bytes": Answer((bytes(range(256)) * 64,)),
}

MEMORY_BOUND = 4 * 1024 * 1024  # limits hold ~0.4 MiB; without them this is exceeded fast


@pytest.fixture(scope="module")
def traced() -> Iterator[None]:
    tracemalloc.start()
    try:
        yield
    finally:
        tracemalloc.stop()


async def bounded_exchange(answer: Answer) -> tuple[AttemptResult, float]:
    """One request answered with ``answer``: the result and the seconds it took, after
    checking it ended within the timeout, in bounded memory, with nothing raised."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        for piece in answer.pieces:
            writer.write(piece)
            await writer.drain()
            if answer.gap_s:
                await asyncio.sleep(answer.gap_s)  # the peer's pace, not a wait in the test
        await write_endless(writer, answer.endless)

    async with serving(handle) as (base, _):
        client = Sender(allow_private_targets=True, timeout_s=FUZZ_TIMEOUT_S)
        with loop_errors() as errors:
            tracemalloc.reset_peak()
            before = tracemalloc.get_traced_memory()[0]
            started = time.monotonic()
            try:
                result = await client.send(post(base))  # never raises: that is the contract
            finally:
                await client.close()
            took = time.monotonic() - started
            peak = tracemalloc.get_traced_memory()[1] - before
    assert isinstance(result, AttemptResult)
    assert took < FUZZ_TIMEOUT_S + 2.0  # the timeout, with room for a loaded machine
    assert peak < MEMORY_BOUND, f"peak {peak} bytes"
    assert len(result.body) <= client.limits.body_bytes
    assert len(result.headers) <= client.limits.headers
    assert result.ok or result.error_kind in (
        "connection",
        "connection_lost",
        "timeout",
        "http_status",
        "redirect",
    )
    assert errors == []
    return result, took


@pytest.mark.parametrize("name", list(HOSTILE))
async def test_endless_and_huge_answers_end_by_a_limit(traced: None, name: str) -> None:
    result, _took = await bounded_exchange(HOSTILE[name])
    assert result.error_kind != "timeout", result


@settings(
    max_examples=60,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(answer=generated_answers)
async def test_generated_hostile_answers_end_bounded(traced: None, answer: Answer) -> None:
    result, _took = await bounded_exchange(answer)
    event(result.error_kind or "ok")
