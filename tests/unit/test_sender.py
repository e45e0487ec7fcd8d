"""The SSRF guard of callbacks.sender: our resolver and IP-literal checks."""

from __future__ import annotations

import socket

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult
from callbacks.sender import ForbiddenTarget, GuardedResolver, literal_ip_refusal
from yarl import URL


class FakeResolver(AbstractResolver):
    def __init__(self, addresses: list[str]) -> None:
        self.addresses = addresses

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [
            ResolveResult(hostname=host, host=a, port=port, family=family, proto=0, flags=0)
            for a in self.addresses
        ]

    async def close(self) -> None:
        return None


async def test_resolver_keeps_only_public_addresses() -> None:
    resolver = GuardedResolver(
        allow_private_targets=False,
        inner=FakeResolver(["10.0.0.7", "93.184.216.34", "169.254.169.254"]),
    )
    got = await resolver.resolve("rebind.example", 443)
    assert [r["host"] for r in got] == ["93.184.216.34"]


@pytest.mark.parametrize(
    "addresses",
    [
        ["127.0.0.1"],
        ["10.1.2.3", "192.168.0.1"],
        ["169.254.169.254"],
        ["::1"],
        ["fd00::1"],
        ["::ffff:127.0.0.1"],
        [],
    ],
)
async def test_resolver_refuses_when_nothing_public_is_left(addresses: list[str]) -> None:
    resolver = GuardedResolver(allow_private_targets=False, inner=FakeResolver(addresses))
    with pytest.raises(ForbiddenTarget):
        await resolver.resolve("internal.example", 80)


async def test_resolver_allows_everything_when_configured() -> None:
    resolver = GuardedResolver(allow_private_targets=True, inner=FakeResolver(["127.0.0.1"]))
    assert [r["host"] for r in await resolver.resolve("localhost", 80)] == ["127.0.0.1"]


async def test_real_localhost_is_refused() -> None:
    resolver = GuardedResolver(allow_private_targets=False)
    try:
        with pytest.raises(ForbiddenTarget):
            await resolver.resolve("localhost", 80)
    finally:
        await resolver.close()


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
    assert (literal_ip_refusal(URL(url), False) is not None) is refused
    assert literal_ip_refusal(URL(url), True) is None
