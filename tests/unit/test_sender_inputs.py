"""What callbacks.sender takes from outside before it builds a request: host names
(UTS #46), OAuth2 token answers (RFC 6750 b64token) and its limits from settings."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from callbacks.http1 import Limits
from callbacks.sender import (
    MAX_TOKEN_LIFETIME_S,
    AttemptResult,
    Sender,
    TokenError,
    client_credentials_token,
    split_url,
)
from callbacks.settings import Settings


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("https://faß.de/x", "xn--fa-hia.de"),  # IDNA 2003 would give fass.de
        ("https://Bücher.example/x", "xn--bcher-kva.example"),
        ("https://\uff25\uff38\uff21\uff2d\uff30\uff2c\uff25.com/x", "example.com"),  # fullwidth
        ("https://example.com/x", "example.com"),
        ("http://[::1]:8080/x", "::1"),
        ("http://hooks_1.example/x", "hooks_1.example"),
    ],
)
def test_host_names_are_encoded_by_uts46(url: str, host: str) -> None:
    origin, _target, _literal = split_url(url)
    assert origin.host == host


@pytest.mark.parametrize(
    "url",
    [
        "https://a b.example/x",
        "https://a%0d%0ab.example/x",
        "https://exa\x00mple.com/x",
        "https://\u200d.example/x",  # a zero-width joiner alone is no label
    ],
)
def test_invalid_host_names_are_refused(url: str) -> None:
    with pytest.raises((ValueError, UnicodeError)):
        split_url(url)


async def test_an_invalid_host_is_an_invalid_request_not_a_crash() -> None:
    from callbacks.request import DeliveryRequest

    sender = Sender(allow_private_targets=True, timeout_s=1)
    try:
        result = await sender.send(DeliveryRequest("GET", "https://a b.example/", (), None))
    finally:
        await sender.close()
    assert result.error_kind == "invalid_request"


class _TokenEndpoint:
    """A stand-in for ``Sender.post_form`` answering one token response body."""

    def __init__(self, payload: Any) -> None:
        self.body = payload if isinstance(payload, bytes) else orjson.dumps(payload)

    async def post_form(self, url: str, form: dict[str, str], **_: Any) -> AttemptResult:
        return AttemptResult(200, (), self.body, 1.0, None)


async def token(payload: Any) -> tuple[str, float]:
    endpoint: Any = _TokenEndpoint(payload)
    return await client_credentials_token(
        endpoint,
        token_url="https://auth.example/token",
        client_id="c",
        client_secret="s",
        scope=None,
    )


@pytest.mark.parametrize(
    "value",
    [
        "abc\r\n\r\nPOST /inject HTTP/1.1\r\nHost: shared.example\r\n\r\n",
        "abc\nX-Evil: 1",
        "abc def",
        "abc\x00",
        "abc\t",
        "ab=c",  # '=' only as padding at the end
        "tökën",
        "a" * 8193,
        "",
    ],
)
async def test_tokens_outside_rfc6750_are_refused(value: str) -> None:
    with pytest.raises(TokenError) as raised:
        await token({"access_token": value, "expires_in": 60})
    assert value == "" or value not in raised.value.reason


@pytest.mark.parametrize(
    "value", ["abc", "eyJhbGciOi.eyJzdWIi.sig-_~+/", "dGVzdA==", "a" * 8192, "0"]
)
async def test_b64tokens_are_accepted(value: str) -> None:
    assert await token({"access_token": value, "expires_in": 60}) == (value, 60.0)


@pytest.mark.parametrize(
    ("expires_in", "lifetime"),
    [(-5, 0.0), (1e12, MAX_TOKEN_LIFETIME_S), ("NaN", 300.0), ("Infinity", 300.0), (60, 60.0)],
)
async def test_token_lifetimes_are_bounded(expires_in: Any, lifetime: float) -> None:
    assert await token({"access_token": "t", "expires_in": expires_in}) == ("t", lifetime)


def test_header_limits_come_from_callbacks_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().max_response_header_bytes == Limits().header_bytes == 32768
    assert Settings().max_response_header_field_bytes == Limits().header_field_bytes == 8190
    assert Settings().max_response_headers == Limits().headers == 100
    monkeypatch.setenv("CALLBACKS_MAX_RESPONSE_HEADER_BYTES", "4096")
    monkeypatch.setenv("CALLBACKS_MAX_RESPONSE_HEADER_FIELD_BYTES", "1024")
    monkeypatch.setenv("CALLBACKS_MAX_RESPONSE_HEADERS", "20")
    sender = Sender.from_settings(Settings())
    assert sender.limits == Limits(header_bytes=4096, header_field_bytes=1024, headers=20)
