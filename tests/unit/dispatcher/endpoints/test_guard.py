"""The per-host guard (``dispatcher.endpoints.guard``): its cap, its breakers, a stalled host."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from dispatcher.endpoints.guard import EndpointGuard, Rejected


@asynccontextmanager
async def slot(guard: EndpointGuard, host: str) -> AsyncIterator[None]:
    """One attempt's hold on ``host``: acquire, then release with the probe flag."""
    probe = await guard.acquire(host)
    try:
        yield
    finally:
        guard.release(host, probe)


async def test_guard_caps_concurrency_per_host() -> None:
    guard = EndpointGuard(max_per_host=2, failure_threshold=5, open_s=30)
    running = 0
    peak = 0

    async def call(host: str) -> None:
        nonlocal running, peak
        async with slot(guard, host):
            running += 1
            peak = max(peak, running)
            await asyncio.sleep(0.01)
            running -= 1

    await asyncio.gather(*(call("a:1") for _ in range(10)))
    assert peak == 2


async def test_guard_fails_fast_while_open() -> None:
    now = [0.0]
    guard = EndpointGuard(max_per_host=4, failure_threshold=2, open_s=30, clock=lambda: now[0])
    guard.observe("h:1", False)
    guard.observe("h:1", False)
    with pytest.raises(Rejected) as info:
        async with slot(guard, "h:1"):
            pass
    assert info.value.reason == "circuit_open"
    async with slot(guard, "other:1"):
        pass  # other hosts are unaffected


async def test_guard_sheds_waiters_of_a_host_that_stopped_completing() -> None:
    now = [0.0]
    guard = EndpointGuard(max_per_host=1, failure_threshold=99, open_s=30, clock=lambda: now[0])
    release = asyncio.Event()

    async def hang() -> None:
        async with slot(guard, "slow:1"):
            await release.wait()

    holder = asyncio.create_task(hang())
    waiter = asyncio.create_task(hang())
    await asyncio.sleep(0)
    now[0] = 5.0  # nothing finished for 5 s, one waiter already queued
    with pytest.raises(Rejected) as info:
        async with slot(guard, "slow:1"):
            pass
    assert info.value.reason == "host_busy"
    release.set()
    await asyncio.gather(holder, waiter)
