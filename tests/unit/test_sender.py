"""The SSRF guard of callbacks.sender: our resolver, IP-literal checks and URL splitting."""

from __future__ import annotations

import pytest
from callbacks.sender import ForbiddenTarget, GuardedResolver, literal_ip_refusal, split_url


class fake:  # noqa: N801 - used like a function: fake([...]) is a resolver
    """A resolver answering ``addresses`` for any host, remembering what it was asked."""

    def __init__(self, addresses: list[str]) -> None:
        self.addresses = addresses
        self.calls: list[str] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append(host)
        return self.addresses


async def test_resolver_keeps_only_public_addresses() -> None:
    resolver = GuardedResolver(
        allow_private_targets=False,
        inner=fake(["10.0.0.7", "93.184.216.34", "169.254.169.254"]),
    )
    assert await resolver.resolve("rebind.example", 443) == ["93.184.216.34"]


@pytest.mark.parametrize(
    "addresses",
    [
        ["127.0.0.1"],
        ["10.1.2.3", "192.168.0.1"],
        ["169.254.169.254"],
        ["::1"],
        ["fd00::1"],
        ["fe80::1%eth0"],
        ["::ffff:127.0.0.1"],
        [],
    ],
)
async def test_resolver_refuses_when_nothing_public_is_left(addresses: list[str]) -> None:
    resolver = GuardedResolver(allow_private_targets=False, inner=fake(addresses))
    with pytest.raises(ForbiddenTarget):
        await resolver.resolve("internal.example", 80)


async def test_resolver_allows_everything_when_configured() -> None:
    resolver = GuardedResolver(allow_private_targets=True, inner=fake(["127.0.0.1"]))
    assert await resolver.resolve("localhost", 80) == ["127.0.0.1"]


async def test_resolver_caches_answers_but_checks_them_every_time() -> None:
    inner = fake(["127.0.0.1"])
    resolver = GuardedResolver(allow_private_targets=False, inner=inner)
    for _ in range(3):
        with pytest.raises(ForbiddenTarget):
            await resolver.resolve("cached.example", 80)
    assert inner.calls == ["cached.example"]


async def test_real_localhost_is_refused() -> None:
    resolver = GuardedResolver(allow_private_targets=False)
    with pytest.raises(ForbiddenTarget):
        await resolver.resolve("localhost", 80)


@pytest.mark.parametrize(
    ("url", "refused"),
    [
        ("http://127.0.0.1:8080/x", True),
        ("http://[::1]/x", True),
        ("http://10.0.0.1/x", True),
        ("http://169.254.169.254/latest/meta-data", True),
        ("http://93.184.216.34/x", False),
        ("https://example.com/x", False),  # names are checked by the resolver
    ],
)
def test_ip_literals(url: str, refused: bool) -> None:
    assert (literal_ip_refusal(url, False) is not None) is refused
    assert literal_ip_refusal(url, True) is None


@pytest.mark.parametrize(
    ("url", "host_header", "target", "literal"),
    [
        ("http://example.com", "example.com", "/", False),
        ("https://Example.COM:443/a/b?x=1&y=%20", "example.com", "/a/b?x=1&y=%20", False),
        ("http://user:pw@example.com:8080/h#frag", "example.com:8080", "/h", False),
        ("http://[::1]:9000/v6", "[::1]:9000", "/v6", True),
        ("https://bücher.example/", "xn--bcher-kva.example", "/", False),
    ],
)
def test_split_url(url: str, host_header: str, target: str, literal: bool) -> None:
    origin, got_target, got_literal = split_url(url)
    assert (origin.host_header, got_target, got_literal) == (host_header, target, literal)


@pytest.mark.parametrize("url", ["ftp://example.com/x", "http:///nohost", "http://h:99999/"])
def test_split_url_refuses(url: str) -> None:
    with pytest.raises(ValueError, match=r"(?i)scheme|host|port"):
        split_url(url)
