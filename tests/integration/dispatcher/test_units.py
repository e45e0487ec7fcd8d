"""Pure pieces of the dispatcher: commit points, the breaker and the per-host guard."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from aiokafka.structs import TopicPartition
from dispatcher.endpoints.breaker import Breaker
from dispatcher.endpoints.guard import EndpointGuard, Rejected
from dispatcher.jobs import Job, SourcePosition, job_from_record
from dispatcher.progress import OffsetTracker

TP = TopicPartition("t", 0)


@asynccontextmanager
async def slot(guard: EndpointGuard, host: str) -> AsyncIterator[None]:
    """One attempt's hold on ``host``: acquire, then release with the probe flag."""
    probe = await guard.acquire(host)
    try:
        yield
    finally:
        guard.release(host, probe)


def test_commit_point_is_the_first_unfinished_offset() -> None:
    tracker = OffsetTracker()
    parts = {o: tracker.start(TP, o) for o in (10, 11, 12, 13)}
    assert tracker.commit_points() == {}
    tracker.finish(parts[12], 12)
    tracker.finish(parts[11], 11)
    assert tracker.commit_points() == {}  # 10 still running
    tracker.finish(parts[10], 10)
    assert tracker.commit_points() == {TP: 13}
    tracker.committed({TP: 13})
    assert tracker.commit_points() == {}
    tracker.finish(parts[13], 13)
    assert tracker.commit_points() == {TP: 14}
    assert tracker.in_flight == 0


def test_work_of_a_revoked_partition_does_not_count_after_reassignment() -> None:
    tracker = OffsetTracker()
    old = tracker.start(TP, 5)
    tracker.start(TP, 6)
    tracker.forget({TP})
    assert tracker.in_flight == 0
    new = tracker.start(TP, 5)
    tracker.finish(old, 5)  # the old ownership's task finishing late
    assert tracker.in_flight == 1
    tracker.finish(new, 5)
    assert tracker.commit_points() == {TP: 6}


def test_breaker_opens_probes_once_and_closes() -> None:
    breaker = Breaker(threshold=3, open_s=10)
    for _ in range(2):
        breaker.observe(False, now=0)
    assert breaker.failures == 2
    assert breaker.observe(False, now=1) == "open"
    assert not breaker.admit(now=5)
    assert breaker.admit(now=11)  # cool-down over: one probe
    assert str(breaker.state) == "half_open"
    assert not breaker.admit(now=11.1)  # only one
    assert breaker.observe(False, now=12) == "open"  # probe failed: open again
    assert not breaker.admit(now=15)
    assert breaker.admit(now=22.5)
    assert breaker.observe(True, now=23) == "closed"
    assert breaker.admit(now=23)


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


def test_retry_headers_round_trip() -> None:
    job = Job(b"{}", b"k", SourcePosition("sms.send", 2, 41))
    headers = job.retry_headers(3, "msg_x", "p-1")
    again = job_from_record(b"{}", b"k", "callbacks.retry.5s", 2, 7, headers)
    assert again == Job(b"{}", b"k", SourcePosition("sms.send", 2, 41), 3, "msg_x", "p-1")
    fresh = job_from_record(b"{}", b"k", "sms.send", 1, 9, [])
    assert fresh.attempt == 1
    assert fresh.source == SourcePosition("sms.send", 1, 9)
