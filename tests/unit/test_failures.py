"""Failure kinds carry their policy; breakers take what is theirs; waiters share fairly."""

from __future__ import annotations

import asyncio

import pytest
from callbacks.failures import FailureKind, Scope
from callbacks.retry import decide
from dispatcher.endpoints.guard import EndpointGuard, Rejected

K = FailureKind


@pytest.mark.parametrize(
    ("kind", "final", "retriable", "held", "reached", "scope"),
    [
        (K.HTTP_STATUS, False, True, False, True, Scope.ENDPOINT),
        (K.REDIRECT, False, True, False, True, Scope.ENDPOINT),
        (K.TIMEOUT, False, True, False, True, Scope.ENDPOINT),
        (K.CONNECTION_LOST, False, True, False, True, Scope.ENDPOINT),
        (K.CONNECT_TIMEOUT, False, True, False, False, Scope.HOST),
        (K.CONNECTION, False, True, False, False, Scope.HOST),
        (K.FORBIDDEN_TARGET, True, False, False, False, Scope.NONE),
        (K.INVALID_REQUEST, True, False, False, False, Scope.NONE),
        (K.RENDER_ERROR, True, False, False, False, Scope.NONE),
        (K.EXPIRED, True, False, False, False, Scope.NONE),
        (K.OAUTH_TOKEN, False, True, False, False, Scope.NONE),
        (K.HOST_BUSY, False, False, True, False, Scope.NONE),
        (K.ACCOUNT_BUSY, False, False, True, False, Scope.NONE),
        (K.CIRCUIT_OPEN, False, False, True, False, Scope.NONE),
    ],
)
def test_each_kind_knows_its_policy(
    kind: FailureKind, final: bool, retriable: bool, held: bool, reached: bool, scope: Scope
) -> None:
    assert (kind.final, kind.retriable, kind.held, kind.reached, kind.scope) == (
        final,
        retriable,
        held,
        reached,
        scope,
    )


def test_wire_labels_are_unchanged() -> None:
    assert [str(k) for k in (K.TIMEOUT, K.CONNECTION, K.HOST_BUSY, K.CIRCUIT_OPEN)] == [
        "timeout",
        "connection",
        "host_busy",
        "circuit_open",
    ]


def test_a_final_kind_is_final_whatever_the_schedule() -> None:
    for kind in (K.FORBIDDEN_TARGET, K.EXPIRED, K.RENDER_ERROR, K.INVALID_REQUEST):
        decision = decide(
            status=None, kind=kind, attempt=1, schedule=(1.0,), retry_on="all_failures"
        )
        assert (decision.delay_s, decision.final_reason) == (None, kind)
    retried = decide(
        status=None, kind=K.CONNECTION, attempt=1, schedule=(1.0,), retry_on="transient_only"
    )
    assert retried.delay_s == 1.0


async def test_an_endpoints_answers_never_open_the_breaker_of_another_on_its_host() -> None:
    guard = EndpointGuard(max_per_host=8, failure_threshold=2, open_s=30)
    for _ in range(3):
        guard.observe("h", False, status=503, endpoint="b", scope=Scope.ENDPOINT)
    assert guard._hosts["h"].endpoints["b"].state == "open"
    assert guard._hosts["h"].breaker.state == "closed"
    assert guard.open_count() == 1
    assert await guard.acquire("h", endpoint="a") is False  # A goes on
    guard.release("h", False, endpoint="a")
    with pytest.raises(Rejected) as info:
        await guard.acquire("h", endpoint="b")
    assert info.value.reason == K.CIRCUIT_OPEN
    assert info.value.come_back_in_s == pytest.approx(30, abs=1)  # come back at the probe window


async def test_connection_failures_open_the_hosts_breaker_for_every_profile() -> None:
    guard = EndpointGuard(max_per_host=8, failure_threshold=2, open_s=30)
    for _ in range(2):
        guard.observe("h", False, endpoint="b", scope=K.CONNECTION.scope)
    for endpoint in ("a", "b"):
        with pytest.raises(Rejected, match="circuit_open"):
            await guard.acquire("h", endpoint=endpoint)


async def test_freed_slots_go_round_robin_between_the_profiles_waiting() -> None:
    guard = EndpointGuard(max_per_host=1, failure_threshold=99, open_s=30)
    await guard.acquire("h", endpoint="x")
    order: list[str] = []

    async def wait(endpoint: str) -> None:
        await guard.acquire("h", endpoint=endpoint)
        order.append(endpoint)
        guard.release("h", False, endpoint=endpoint)

    greedy = [asyncio.ensure_future(wait("greedy")) for _ in range(5)]
    await asyncio.sleep(0)
    modest = asyncio.ensure_future(wait("modest"))
    await asyncio.sleep(0)
    guard.release("h", False, endpoint="x")
    await asyncio.gather(*greedy, modest)
    assert order[:2] == ["greedy", "modest"]  # not behind all five


async def test_a_host_over_its_share_is_parked_while_another_host_has_work() -> None:
    guard = EndpointGuard(max_per_host=64, failure_threshold=99, open_s=30)
    guard.share_budget(8, host_share=0.25, account_share=0.5)  # 2 per host, 4 per account
    await guard.acquire("slow", endpoint="p", account="a")
    await guard.acquire("slow", endpoint="p", account="a")
    await guard.acquire("slow", endpoint="p", account="a")  # alone: no one to make room for
    assert guard._hosts["slow"].active == 3
    await guard.acquire("other", endpoint="q", account="b")
    with pytest.raises(Rejected) as info:
        await guard.acquire("slow", endpoint="p", account="a")
    assert info.value.reason == K.HOST_BUSY
    await guard.acquire("third", endpoint="r", account="a")  # 4 for account a: its share
    with pytest.raises(Rejected) as busy:
        await guard.acquire("fourth", endpoint="s", account="a")
    assert busy.value.reason == K.ACCOUNT_BUSY
    assert guard._accounts["a"] == 4
