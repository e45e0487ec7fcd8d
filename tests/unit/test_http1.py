"""What the callback client will put on the wire (callbacks.http1.serialize and the
request builder's header checks), and that every request it writes is exactly one
request to h11, a strict independent HTTP/1.1 parser."""

from __future__ import annotations

import string
from datetime import UTC, datetime
from typing import Any

import h11
import pytest
from callbacks.http1 import InvalidRequest, Origin, serialize
from callbacks.models.profiles import ProfileRecord
from callbacks.request import RequestBuildError, build_request
from callbacks.sender import split_url
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

ORIGIN = Origin("https", "hooks.example", 443)
NOW = datetime(2026, 11, 24, 10, tzinfo=UTC)

# Bounded and reproducible: no example database, a fixed sequence of examples.
FUZZ = settings(
    max_examples=300,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)


def parse_one(payload: bytes) -> tuple[h11.Request, bytes]:
    """The one request in ``payload`` and its body; fails on anything more or less."""
    conn = h11.Connection(h11.SERVER)
    conn.receive_data(payload)
    request = conn.next_event()
    assert isinstance(request, h11.Request), request
    body = b""
    while True:
        event = conn.next_event()
        if isinstance(event, h11.Data):
            body += event.data
            continue
        assert isinstance(event, h11.EndOfMessage), event
        break
    assert conn.next_event() is h11.NEED_DATA  # PAUSED would mean bytes after the request
    assert conn.trailing_data == (b"", False)  # and nothing after it
    return request, body


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("X-A", "a\r\nX-Injected: 1"),
        ("X-A", "a\rb"),
        ("X-A", "a\nb"),
        ("X-A", "a\x00b"),
        ("X-A", "a\x7fb"),
        ("X-A", "a\tb"),
        ("X-A", "a\x1bb"),
        ("X-A", "a\x85b"),  # NEL, a line break to some parsers
        ("Authorization", "Bearer t\r\n\r\nPOST /inject HTTP/1.1\r\nHost: x\r\n\r\n"),
        ("X A", "v1"),
        ("X-A:", "v1"),
        ("X-A\r\nX-B", "v1"),
        ("", "v1"),
        ("Ä", "v1"),
        ("X(A)", "v1"),
    ],
)
def test_serialize_refuses_header_fields_that_could_end_the_request(name: str, value: str) -> None:
    with pytest.raises(InvalidRequest) as raised:
        serialize("POST", ORIGIN, "/hook", [(name, value)], b"{}")
    assert value not in str(raised.value)  # the message never carries the value


@pytest.mark.parametrize(
    "target",
    ["/a b", "/a\r\nX: 1", "/a\x00", "/a\tb", "/ä", "", "/a HTTP/1.0\r\n\r\nGET /x"],
)
def test_serialize_refuses_a_target_with_space_control_or_non_ascii(target: str) -> None:
    with pytest.raises(InvalidRequest):
        serialize("POST", ORIGIN, target, [], b"{}")


@pytest.mark.parametrize("method", ["GE T", "GET\r\n", "", "PÖST"])
def test_serialize_refuses_a_method_that_is_not_a_token(method: str) -> None:
    with pytest.raises(InvalidRequest):
        serialize(method, ORIGIN, "/", [], None)


def test_serialize_refuses_a_host_with_space_or_controls() -> None:
    with pytest.raises(InvalidRequest):
        serialize("GET", Origin("http", "a b\r\nX: y", 80), "/", [], None)


def test_accepted_request_is_exactly_one_request() -> None:
    headers = [("X-Obs", "naïve value with spaces"), ("X-Empty", "")]
    payload = serialize("POST", ORIGIN, "/hook?a=%20&b=~", headers, b'{"a": 1}')
    request, body = parse_one(payload)
    assert request.target == b"/hook?a=%20&b=~"
    assert (b"host", b"hooks.example") in request.headers
    assert (b"x-obs", "naïve value with spaces".encode()) in request.headers
    assert body == b'{"a": 1}'


def test_a_non_ascii_path_is_percent_encoded_before_it_is_sent() -> None:
    origin, target, _ = split_url("https://hooks.example/ünï/ß?q=ö")
    assert target == "/%C3%BCn%C3%AF/%C3%9F?q=%C3%B6"
    parse_one(serialize("GET", origin, target, [], None))


_TOKEN_CHARS = "!#$%&'*+-.^_`|~" + string.ascii_letters + string.digits
_VISIBLE = "".join(map(chr, range(0x21, 0x7F)))
_NO_CONTROLS = st.characters(codec="utf-8", exclude_categories=["Cc", "Cs"])


@FUZZ
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE"]),
    target=st.one_of(st.text(_VISIBLE, max_size=40), st.text(max_size=40)),
    headers=st.one_of(
        st.lists(
            st.tuples(
                st.text(_TOKEN_CHARS, min_size=1, max_size=12), st.text(_NO_CONTROLS, max_size=40)
            ),
            max_size=6,
        ),
        st.lists(st.tuples(st.text(max_size=12), st.text(max_size=40)), max_size=6),
    ),
    body=st.one_of(st.none(), st.binary(max_size=64)),
)
def test_whatever_serialize_writes_h11_reads_as_that_one_request(
    method: str, target: str, headers: list[tuple[str, str]], body: bytes | None
) -> None:
    try:
        payload = serialize(method, ORIGIN, "/" + target, headers, body)
    except InvalidRequest:
        event("refused by serialize")
        return
    event("sent")
    request, received = parse_one(payload)
    assert request.method == method.encode()
    assert request.target == ("/" + target).encode()
    sent = [(b"host", b"hooks.example")]
    sent += [(name.lower().encode(), value.strip(" ").encode()) for name, value in headers]
    assert [(n, v) for n, v in request.headers if n != b"content-length"] == sent
    assert received == (body or b"")


# Profiles and event data as a hostile tenant or event could write them.
_hostile_text = st.lists(
    st.one_of(
        st.characters(codec="utf-8"),
        st.sampled_from(["\r", "\n", "\r\n", "\x00", "\t", "\x7f", " ", "{{", "}}", "%", "?"]),
    ),
    max_size=12,
).map("".join)
_variables = st.fixed_dictionaries(
    {"message_id": _hostile_text, "status": _hostile_text, "to": _hostile_text}
)


@st.composite
def profiles(draw: st.DrawFn) -> ProfileRecord:
    header_value = st.one_of(
        st.sampled_from(["{{message_id}}", "id {{status}} to {{to}}", "fixed"]), _hostile_text
    )
    return ProfileRecord.model_validate(
        {
            "id": "prof-1",
            "account_id": "acc-1",
            "created_at": NOW,
            "updated_at": NOW,
            "title": "fuzzed",
            "channel": "sms",
            "events": ["sms.send"],
            "method": draw(st.sampled_from(["GET", "POST", "PUT", "DELETE"])),
            "url": "https://hooks.example/"
            + draw(st.sampled_from(["", "a/{{message_id}}", "ü/{{status}}?x={{to}}", "p q"])),
            "headers": draw(
                st.dictionaries(
                    st.one_of(st.sampled_from(["X-Id", "X-Status", "Accept"]), _hostile_text),
                    header_value,
                    max_size=3,
                )
            ),
            "query_params": draw(
                st.dictionaries(_hostile_text, st.sampled_from(["{{to}}", "a b"]), max_size=2)
            ),
            "body_type": draw(st.sampled_from(["json", "text", "form"])),
            "body": '{"id": "{{message_id}}", "s": "{{status}}"}',
            "form_fields": {"id": "{{message_id}}", "to": "{{to}}"},
            "authentication": draw(
                st.sampled_from(
                    [
                        {"type": "none"},
                        {"type": "basic", "username": "u\r\n", "password": "p:ä"},
                        {"type": "bearer", "token": "tok"},
                        {"type": "bearer", "token": "tok\r\nX-Evil: 1"},
                    ]
                )
            ),
        }
    )


@settings(FUZZ, max_examples=150)
@given(profile=profiles(), variables=_variables)
def test_every_built_request_is_one_request_to_h11(
    profile: ProfileRecord, variables: dict[str, Any]
) -> None:
    from callbacks.request import static_auth_header

    try:
        request = build_request(
            profile,
            variables,
            delivery_id="dlv_1",
            timestamp=1_700_000_000,
            signing_secrets=[],
            auth_header=static_auth_header(profile),
        )
    except RequestBuildError:
        event("refused by the builder")
        return  # refused before anything could be sent
    try:
        origin, target, _ = split_url(request.url)
        payload = serialize(request.method, origin, target, list(request.headers), request.body)
    except InvalidRequest:
        event("refused by serialize")
        return
    event("sent")
    parsed, body = parse_one(payload)
    assert parsed.target == target.encode()
    assert body == (request.body or b"")
    names = [name for name, _ in parsed.headers]
    assert names.count(b"host") == 1
    assert names.count(b"authorization") <= 1


@pytest.mark.parametrize("value", ["a\x00b", "a\x1bb", "a\tb", "a\x7f", "a\x9bb"])
def test_control_characters_from_event_data_never_reach_a_header(value: str) -> None:
    record = ProfileRecord.model_validate(
        {
            "id": "prof-1",
            "account_id": "acc-1",
            "created_at": NOW,
            "updated_at": NOW,
            "title": "t",
            "channel": "sms",
            "events": ["sms.send"],
            "url": "https://hooks.example/",
            "headers": {"X-Status": "status={{status}}"},
        }
    )
    with pytest.raises(RequestBuildError) as raised:
        build_request(
            record,
            {"status": value},
            delivery_id="dlv_1",
            timestamp=1_700_000_000,
            signing_secrets=[],
            auth_header=None,
        )
    assert raised.value.reason == "header_injection:X-Status"
