"""The adaptive per-host concurrency limit: additive increase, multiplicative decrease."""

from __future__ import annotations

import asyncio

import pytest
from dispatcher.endpoints.aimd import Aimd
from dispatcher.endpoints.guard import EndpointGuard, Rejected
from dispatcher.endpoints.limit_gauge import EndpointLimitCollector
from prometheus_client import CollectorRegistry


def limits(guard: EndpointGuard) -> dict[str, int]:
    """Each host's current limit, as the limit gauge reads it."""
    return {host: limit for host, limit, _attempts in guard.limits()}


def test_starts_at_the_ceiling() -> None:
    assert Aimd(64).allowed == 64


@pytest.mark.parametrize(
    ("status", "timed_out", "halves"),
    [
        (429, False, True),
        (503, False, True),
        (None, True, True),
        (500, False, False),  # the breaker's business, not a sign of overload
        (404, False, False),
        (None, False, False),  # connection refused
    ],
)
def test_overload_signals_halve_the_limit(
    status: int | None, timed_out: bool, halves: bool
) -> None:
    aimd = Aimd(64)
    aimd.observe(status=status, timed_out=timed_out, latency_s=0.01, in_flight=64, now=10.0)
    assert aimd.allowed == (32 if halves else 64)


def test_one_halving_per_round_trip() -> None:
    aimd = Aimd(64)
    for _ in range(50):  # a burst of 429s to requests that were all in flight together
        aimd.observe(status=429, timed_out=False, latency_s=0.02, in_flight=64, now=10.0)
    assert aimd.allowed == 32
    # A request started after that cut is new evidence.
    aimd.observe(status=429, timed_out=False, latency_s=0.01, in_flight=32, now=10.05)
    assert aimd.allowed == 16


def test_never_below_one() -> None:
    aimd = Aimd(8)
    for step in range(20):
        aimd.on_overload(started_at=float(step), now=float(step))
    assert aimd.allowed == 1


def test_grows_about_one_per_round_trip_of_fast_successes_up_to_the_ceiling() -> None:
    aimd = Aimd(10, limit=4.0)
    for _ in range(5):  # about one full window of fast successes: +1
        aimd.on_success(0.01, in_flight=4)
    assert aimd.allowed == 5
    for _ in range(1000):
        aimd.on_success(0.01, in_flight=10)
    assert aimd.allowed == 10


def test_grows_slowly_within_a_slot_of_the_last_cut_then_at_full_speed() -> None:
    aimd = Aimd(64, limit=9.0)
    assert aimd.on_overload(started_at=1.0, now=1.0)  # cut at 9: 4.5
    for _ in range(40):  # a few round trips back up to within a slot of 9
        aimd.on_success(0.01, in_flight=9)
    assert 8.0 <= aimd.limit < 9.0
    before = aimd.limit
    for _ in range(9):  # one round trip near 9: an eighth of the usual step
        aimd.on_success(0.01, in_flight=9)
    assert aimd.limit - before == pytest.approx(9 / before / 8, rel=0.1)
    for _ in range(200):
        aimd.on_success(0.01, in_flight=64)
    assert aimd.limit > 10.0  # past the old cut: full speed again (the receiver grew)
    step_from = aimd.limit
    aimd.on_success(0.01, in_flight=64)
    assert aimd.limit - step_from == pytest.approx(1 / step_from)


def test_slow_successes_and_an_underused_limit_do_not_grow() -> None:
    aimd = Aimd(64, limit=8.0)
    for _ in range(20):
        aimd.on_success(0.01, in_flight=8)
    grown = aimd.limit
    aimd.on_success(1.0, in_flight=8)  # 100x the usual latency: the receiver is queueing
    assert aimd.limit == grown
    aimd.on_success(0.01, in_flight=1)  # one in flight of ~10 allowed: no evidence
    assert aimd.limit == grown


async def test_guard_admits_waiters_as_the_limit_changes() -> None:
    now = [0.0]
    guard = EndpointGuard(max_per_host=4, failure_threshold=100, open_s=1, clock=lambda: now[0])
    held = [await guard.acquire("h") for _ in range(4)]
    assert held == [False] * 4
    waiter = asyncio.ensure_future(guard.acquire("h"))
    await asyncio.sleep(0)
    assert not waiter.done()
    # A 429: the limit halves to 2, so two releases are needed before the waiter runs.
    guard.observe("h", False, status=429, latency_s=0.0)
    assert limits(guard)["h"] == 2
    guard.release("h", False)
    guard.release("h", False)
    await asyncio.sleep(0)
    assert not waiter.done()
    guard.release("h", False)
    await asyncio.wait_for(waiter, 1)
    guard.release("h", False)
    guard.release("h", False)


async def test_a_refused_attempt_cuts_the_limit_before_its_slot_is_handed_on() -> None:
    guard = EndpointGuard(max_per_host=2, failure_threshold=100, open_s=1)
    await guard.acquire("h")
    await guard.acquire("h")
    waiters = [asyncio.ensure_future(guard.acquire("h")) for _ in range(2)]
    await asyncio.sleep(0)
    # The deliverer releases the slot, then records the 429 in the same loop turn.
    guard.release("h", False)
    guard.observe("h", False, status=429, latency_s=0.001)
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    # Limit 1, one attempt still running: the freed slot was not handed on.
    assert [w.done() for w in waiters] == [False, False]
    guard.release("h", False)  # an attempt that ends without a result (cancelled)
    await asyncio.wait_for(waiters[0], 1)  # the next loop turn hands the slot on
    assert not waiters[1].done()
    guard.release("h", False)
    await asyncio.wait_for(waiters[1], 1)
    guard.release("h", False)


async def test_a_cancelled_waiter_gives_its_slot_on() -> None:
    guard = EndpointGuard(max_per_host=1, failure_threshold=100, open_s=1)
    await guard.acquire("h")
    first = asyncio.ensure_future(guard.acquire("h"))
    second = asyncio.ensure_future(guard.acquire("h"))
    await asyncio.sleep(0)
    guard.release("h", False)  # grants ``first`` ...
    first.cancel()  # ... which is cancelled before it runs: ``second`` gets the slot
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert second.done()
    assert first.cancelled()
    guard.release("h", False)


async def test_a_queued_attempt_starts_in_the_turn_its_slot_is_granted() -> None:
    """``start`` runs inside the release that grants the slot (the dispatcher sends the
    request from there), before the waiting task wakes; not while the breaker is open."""
    guard = EndpointGuard(max_per_host=1, failure_threshold=1, open_s=60)
    started: list[str] = []
    await guard.acquire("h")
    waiter = asyncio.ensure_future(guard.acquire("h", lambda: started.append("w")))
    await asyncio.sleep(0)
    guard.release("h", False)
    guard.observe("h", True, status=200, latency_s=0.01)
    assert started == ["w"]
    assert not waiter.done()  # the task wakes a loop turn later
    assert await waiter is False  # not a probe, and no "circuit_open" for a started one
    guard.release("h", False)

    await guard.acquire("h")
    late = asyncio.ensure_future(guard.acquire("h", lambda: started.append("late")))
    await asyncio.sleep(0)
    guard.release("h", False)
    guard.observe("h", False, status=500)  # opens the breaker before the grant
    with pytest.raises(Rejected, match="circuit_open"):
        await late
    assert started == ["w"]


def test_gauge_labels_only_the_busiest_hosts() -> None:
    guard = EndpointGuard(max_per_host=64, failure_threshold=100, open_s=1)
    for n in range(5):
        guard._host(f"h{n}").attempts = 100 - n  # set up the ranking
    guard.observe("h4", False, status=429)  # the least busy host is throttled
    registry = CollectorRegistry()
    collector = EndpointLimitCollector(top=3)
    collector.follow(guard)
    registry.register(collector)
    value = registry.get_sample_value
    assert value("callbacks_endpoint_concurrency_limit", {"host": "h0"}) == 64
    assert value("callbacks_endpoint_concurrency_limit", {"host": "h3"}) is None
    assert value("callbacks_endpoint_concurrency_limit", {"host": "other"}) == 32


def test_an_overload_within_a_round_trip_of_the_cut_is_the_same_event() -> None:
    aimd = Aimd(64)
    for _ in range(10):
        aimd.on_success(0.02, in_flight=64)  # the host usually answers in 20 ms
    aimd.observe(status=429, timed_out=False, latency_s=0.001, in_flight=64, now=10.0)
    assert aimd.allowed == 32
    # The slot that 429 freed went to a waiting callback before the cut was recorded; its
    # request left just after the cut and was refused for the same overload.
    aimd.observe(status=429, timed_out=False, latency_s=0.001, in_flight=64, now=10.005)
    assert aimd.allowed == 32
    # A round trip later, a refusal is new evidence.
    aimd.observe(status=429, timed_out=False, latency_s=0.001, in_flight=32, now=10.03)
    assert aimd.allowed == 16
    assert not Aimd(64).throttled


async def test_an_attempt_whose_early_start_fails_takes_the_usual_path() -> None:
    """``HostAttempt._start`` runs inside another attempt's release: an error there must
    not escape into it; the attempt builds its request when its task wakes instead."""
    from callbacks.sender import AttemptResult, Sender
    from dispatcher.endpoints.attempt import HostAttempt

    guard = EndpointGuard(max_per_host=1, failure_threshold=100, open_s=1)
    sender = Sender(allow_private_targets=True, timeout_s=1)

    def prepare() -> None:
        raise ValueError("unexpected")

    async def build() -> AttemptResult:
        return AttemptResult(None, (), b"", 0.0, "render: bad", "render_error")

    await guard.acquire("h")
    attempt = HostAttempt(guard, sender, "h", prepare)  # type: ignore[arg-type]
    running = asyncio.ensure_future(attempt.run(build))
    await asyncio.sleep(0)
    guard.release("h", False)
    guard.observe("h", True, status=200, latency_s=0.01)  # grants the slot: no raise
    result = await running
    assert result.error_kind == "render_error"
    assert not attempt.sent
    assert guard._host("h").active == 0  # the slot came back
    await sender.close()


async def test_idle_hosts_are_forgotten_busy_and_broken_ones_kept() -> None:
    """The guard's table would grow with every host ever seen: one idle for
    FORGET_IDLE_S is dropped when a new host appears (at most every SWEEP_EVERY_S)."""
    from dispatcher.endpoints.guard import FORGET_IDLE_S

    now = [0.0]
    guard = EndpointGuard(max_per_host=4, failure_threshold=1, open_s=1e6, clock=lambda: now[0])
    for host in ("idle", "busy", "broken", "parked"):
        await guard.acquire(host)
    for host in ("idle", "broken", "parked"):
        guard.release(host, False)
    guard.observe("broken", False, status=500)  # breaker open
    guard.observe("idle", True, status=429)  # a learned limit, forgotten with the host
    guard._host("parked").parked.book(now[0], FORGET_IDLE_S + 100.0, 0.01)
    now[0] = FORGET_IDLE_S + 1.0
    guard._host("new")
    assert sorted(host for host, _, _ in guard.limits()) == ["broken", "busy", "new", "parked"]
    guard._host("idle")  # seen again: starts afresh
    assert limits(guard)["idle"] == 4
    guard.release("busy", False)
