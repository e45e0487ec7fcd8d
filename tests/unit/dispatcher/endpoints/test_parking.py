"""Parked callbacks come back when their throttled host has room, not after a retry delay."""

from __future__ import annotations

import asyncio
import math

import pytest
from callbacks.wire import H_DUE_MS, SourcePosition, read_due_ms
from dispatcher.endpoints.guard import EndpointGuard, Rejected
from dispatcher.endpoints.parking import (
    FALLBACK_LATENCY_S,
    QUEUE_MAX,
    Calendar,
    Pace,
    RetryLanes,
    park,
    queue_bound,
    slot_of,
)
from dispatcher.fetch_pauses import record_due_in_s
from dispatcher.jobs import Job, job_from_record

NOW_MS = 1_700_000_000_000  # a multiple of the 100 ms grid
SCHEDULE = (5.0, 30.0, 120.0)


@pytest.mark.parametrize(
    ("wait_s", "delay_s", "due_ms"),
    [
        (None, 5.0, None),  # a stalled host: no estimate, the shortest delay, no due time
        (0.0, 5.0, NOW_MS + 100),  # at least one grid step: no tight park/return loop
        (0.03, 5.0, NOW_MS + 100),
        (0.1, 5.0, NOW_MS + 100),
        (0.35, 5.0, NOW_MS + 400),  # rounded up to the grid
        (4.99, 5.0, NOW_MS + 5000),
        (5.01, 30.0, NOW_MS + 5100),  # the shortest topic whose delay covers the wait
        (400.0, 120.0, NOW_MS + 120_000),  # never later than the longest topic's delay
    ],
)
def test_park_picks_the_topic_and_the_due_time(
    wait_s: float | None, delay_s: float, due_ms: int | None
) -> None:
    assert park(SCHEDULE, wait_s, NOW_MS) == (delay_s, due_ms)


def test_park_avoids_waiting_behind_a_retry_due_later() -> None:
    lanes = RetryLanes()
    lanes.wrote(5.0, 0, NOW_MS + 5000)  # a real retry in partition 0 of the 5 s topic
    lanes.wrote(30.0, 0, NOW_MS + 200)  # a callback parked earlier on the 30 s topic
    here = {p: (lambda d, p=p: lanes.latest(d, p)) for p in (0, 1)}
    assert park(SCHEDULE, 0.5, NOW_MS, here[0]) == (30.0, NOW_MS + 500)
    assert park(SCHEDULE, 0.5, NOW_MS, here[1]) == (5.0, NOW_MS + 500)  # partition 1 is free
    lanes.wrote(30.0, 0, NOW_MS + 20_000)
    lanes.wrote(120.0, 0, NOW_MS + 90_000)
    # Every topic holds something due later: the one that frees soonest.
    assert park(SCHEDULE, 0.5, NOW_MS, here[0]) == (5.0, NOW_MS + 500)
    lanes.wrote(5.0, 0, NOW_MS + 1000)  # due times only move later
    assert lanes.latest(5.0, 0) == NOW_MS + 5000


def test_park_due_time_never_beyond_the_topic_delay_off_grid() -> None:
    now = NOW_MS + 37
    delay, due = park((1.0,), 0.99, now)
    assert delay == 1.0
    assert due == now + 1000  # the grid would say +1063: the topic's delay wins


def test_due_header_round_trips_and_does_not_change_the_job() -> None:
    job = Job(b"{}", b"k", SourcePosition("sms.send", 2, 41))
    headers = job.retry_headers(3, "msg_x", "p-1", NOW_MS + 700)
    assert read_due_ms(headers) == NOW_MS + 700
    again = job_from_record(b"{}", b"k", "callbacks.retry.5s", 2, 7, headers)
    assert again == Job(b"{}", b"k", SourcePosition("sms.send", 2, 41), 3, "msg_x", "p-1")
    assert read_due_ms(job.retry_headers(3, "msg_x", "p-1")) is None


@pytest.mark.parametrize(
    ("headers", "expected_s"),
    [
        ([], 5.0),  # a retry: its topic's delay after it was written
        ([(H_DUE_MS, str(NOW_MS + 300).encode())], 0.3),  # parked: its own due time
        ([(H_DUE_MS, str(NOW_MS - 300).encode())], -0.3),  # overdue: due now
        ([(H_DUE_MS, str(NOW_MS + 60_000).encode())], 5.0),  # never past the topic delay
        ([(H_DUE_MS, b"soon")], 5.0),  # a bad header is ignored, not trusted
        ([(H_DUE_MS, b"")], 5.0),
    ],
)
def test_record_due_in_s(headers: list[tuple[str, bytes]], expected_s: float) -> None:
    assert record_due_in_s(NOW_MS, headers, 5.0, NOW_MS) == pytest.approx(expected_s)


def test_calendar_fills_each_slot_with_what_the_host_takes_in_it() -> None:
    calendar = Calendar()
    # 10 ms per callback: 10 per 100 ms slot.
    backs = [calendar.book(now=100.0, earliest=100.25, service_s=0.01) for _ in range(25)]
    assert [slot_of(b) for b in backs] == [1002] * 10 + [1003] * 10 + [1004] * 5
    assert backs[0] == pytest.approx(100.2)
    assert sum(calendar.booked.values()) == 25


def test_calendar_skips_overbooked_slots_and_tops_up_underbooked_ones() -> None:
    calendar = Calendar()
    for _ in range(20):  # booked while the host looked fast: 20 in slot 1000
        calendar.book(now=100.0, earliest=100.0, service_s=0.005)
    for _ in range(2):  # booked while it looked slow: 2 in slot 1001
        calendar.book(now=100.0, earliest=100.1, service_s=0.05)
    # Now the pace is 10 ms (10 per slot): slot 1000 is full, slot 1001 has room for 8.
    backs = [calendar.book(now=100.0, earliest=100.0, service_s=0.01) for _ in range(9)]
    assert [slot_of(b) for b in backs] == [1001] * 8 + [1002]


def test_calendar_spaces_a_slow_host_over_several_slots() -> None:
    calendar = Calendar()
    backs = [calendar.book(now=100.0, earliest=100.0, service_s=0.25) for _ in range(3)]
    assert [slot_of(b) for b in backs] == [1000, 1003, 1006]


def test_calendar_never_books_the_past_and_forgets_it() -> None:
    calendar = Calendar()
    for _ in range(5):
        calendar.book(now=100.0, earliest=100.0, service_s=0.1)
    later = calendar.book(now=200.0, earliest=150.0, service_s=0.1)
    assert later == pytest.approx(200.0)
    assert sum(calendar.booked.values()) == 1
    assert min(calendar.booked) == slot_of(200.0)


def test_pace_counts_only_gaps_of_a_busy_host() -> None:
    pace = Pace()
    now = 10.0
    for _ in range(20):  # busy: callbacks waiting at every completion, one per 5 ms
        now += 0.005
        pace.on_success(latency_s=0.04, now=now, queued=5, limit=8)
    assert pace.gap_s == pytest.approx(0.005)
    now += 3.0  # idle for 3 s, then busy again: the gap is idle time, not pace
    pace.on_success(latency_s=0.04, now=now, queued=0, limit=8)
    pace.on_success(latency_s=0.04, now=now + 0.005, queued=5, limit=8)
    assert pace.gap_s == pytest.approx(0.005)
    assert pace.service_s(8) == pytest.approx(0.005)


def test_pace_errs_low_while_the_dispatcher_lags() -> None:
    pace = Pace()
    now = 10.0
    for _ in range(20):  # completions seen 30 ms apart though the host answers in 20 ms
        now += 0.03
        pace.on_success(latency_s=0.02, now=now, queued=50, limit=8)
    assert pace.gap_s == pytest.approx(0.02)  # a gap never counts for more than a latency
    assert pace.service_s(8) == pytest.approx(0.02 / 8)  # fastest latency over the limit


def test_pace_before_any_success_and_the_queue_bound() -> None:
    assert Pace().service_s(4) == pytest.approx(FALLBACK_LATENCY_S / 4)
    assert queue_bound(4, 0.005) == 200  # about a second of the host's work
    assert queue_bound(4, 1.0) == 16  # at least 4 per slot of its limit
    assert queue_bound(64, 0.0001) == QUEUE_MAX


async def _hold(guard: EndpointGuard, host: str, n: int) -> list[asyncio.Task[bool]]:
    """``n`` callbacks acquiring ``host``'s slots; returns their (waiting) acquisitions."""
    acquisitions = [asyncio.ensure_future(guard.acquire(host)) for _ in range(n)]
    await asyncio.sleep(0)
    return acquisitions


async def test_a_throttled_host_with_a_full_queue_tells_callbacks_when_to_come_back() -> None:
    now = [100.0]
    guard = EndpointGuard(max_per_host=64, failure_threshold=99, open_s=30, clock=lambda: now[0])
    state = guard._host("h")
    state.aimd.limit = 2.0  # cut: throttled
    for _ in range(10):  # a host that takes 20 ms per callback and slot: 10 ms per callback
        state.pace.on_success(latency_s=0.02, now=now[0], queued=0, limit=2)
    bound = guard._queue_bound(state)
    assert bound == 100
    held = await _hold(guard, "h", 2 + bound)
    waits = []
    for _ in range(30):
        with pytest.raises(Rejected) as info:
            await guard.acquire("h")
        assert info.value.reason == "host_busy"
        assert info.value.come_back_in_s is not None
        waits.append(info.value.come_back_in_s)
    # Behind 2 running and 100 queued, from when half a queue is left: 0.52 s; then
    # 10 per slot (the host's 100 ms).
    assert waits[0] == pytest.approx(0.5)
    assert [round(w, 1) for w in waits] == [0.5] * 10 + [0.6] * 10 + [0.7] * 10
    for acquisition in held:
        acquisition.cancel()
    await asyncio.gather(*held, return_exceptions=True)


async def test_a_stalled_host_gives_no_estimate() -> None:
    now = [0.0]
    guard = EndpointGuard(max_per_host=1, failure_threshold=99, open_s=30, clock=lambda: now[0])
    held = await _hold(guard, "h", 2)  # one running, one waiting
    now[0] = 5.0  # nothing finished for 5 s
    with pytest.raises(Rejected) as info:
        await guard.acquire("h")
    assert (info.value.reason, info.value.come_back_in_s) == ("host_busy", None)
    for acquisition in held:
        acquisition.cancel()
    await asyncio.gather(*held, return_exceptions=True)


async def test_a_cut_parks_the_waiters_beyond_the_new_bound_without_leaking_slots() -> None:
    now = [100.0]
    guard = EndpointGuard(max_per_host=8, failure_threshold=99, open_s=30, clock=lambda: now[0])
    held = await _hold(guard, "h", 8 + 40)  # 8 running at the ceiling, 40 waiting
    state = guard._hosts["h"]
    assert state.active == 8
    state.pace.on_success(latency_s=4.0, now=now[0], queued=0, limit=8)  # a slow host
    guard.observe("h", False, status=429, latency_s=0.001)  # cut to 4: bound 16 (4 per slot)
    assert state.aimd.allowed == 4
    await asyncio.sleep(0)
    shed = [a for a in held if a.done() and a.exception() is not None]
    assert len(shed) == 40 - 16
    assert all(isinstance(a.exception(), Rejected) for a in shed)
    waits = [a.exception().come_back_in_s for a in shed]  # type: ignore[union-attr]
    assert all(w is not None and w >= 0 for w in waits)
    assert (state.active, len(state.waiters)) == (8, 16)
    for _ in range(8):  # the 8 running finish: 4 waiters start (the new limit)
        guard.release("h", False)
    await asyncio.sleep(0)
    assert (state.active, len(state.waiters)) == (4, 12)
    for acquisition in held:
        acquisition.cancel()
    await asyncio.gather(*held, return_exceptions=True)
    assert math.isfinite(sum(n for n in state.parked.booked.values() if n != math.inf))
