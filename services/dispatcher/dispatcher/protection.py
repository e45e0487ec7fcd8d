"""Endpoint protection: an adaptive concurrency limit and a circuit breaker per host.

Why: every customer endpoint shares one process. Without a cap, a slow host would hold
every in-flight slot; without a breaker, a dead host would cost a full timeout per
callback. The cap adapts (``dispatcher.aimd``): it halves when the host answers 429 or
503 or times out and grows back on fast successes, up to ``max_per_host``.

Callbacks beyond what a host should hold are *parked* (``host_busy``: handed to a retry
topic without an attempt), so the in-flight budget stays with the healthy hosts:

- a host whose limit was cut keeps a bounded queue (``parking.queue_bound``: about a
  second of its work). A callback beyond it, or one of a queue that outgrew the bound
  when the limit was cut, is told when the host will have room for it (``wait_s``; a
  slot of the host's ``parking.Calendar``), and comes back then (``jobs.park``);
- a host at its limit that has finished nothing for a while (``STALL_AFTER_S``, or
  twice its usual latency if longer) keeps one round of waiters; callbacks beyond it
  have no useful estimate and wait a full retry delay (``wait_s`` None).

A busy host that keeps answering at its full (uncut) limit keeps its queue, however
long: nothing says it is overloaded, and bounding it would park a fast host's bursts.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Literal

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from dispatcher.aimd import SLOW_FACTOR, Aimd
from dispatcher.parking import Calendar, Pace, queue_bound, slot_of

BreakerState = Literal["closed", "open", "half_open"]

# A host at its cap that has finished nothing for this long is "not completing".
STALL_AFTER_S = 1.0
# Waiters a stalled host may keep, in multiples of its concurrency limit.
STALLED_WAITERS_FACTOR = 1
ENDPOINT_CONCURRENCY_LIMIT = "callbacks_endpoint_concurrency_limit"
# Hosts with their own label value in that gauge (the busiest); the rest are "other".
LIMIT_GAUGE_TOP_HOSTS = 20
# A host idle this long is forgotten (``EndpointGuard._forget_idle``), looked for when a
# new host is first seen, at most this often.
FORGET_IDLE_S = 600.0
SWEEP_EVERY_S = 60.0


def _STARTED() -> None:  # noqa: N802 - a marker, see ``_Host.starters``
    """A waiter's request went out when its slot was granted."""


class Rejected(Exception):
    """The attempt was not started; ``reason`` is ``circuit_open`` or ``host_busy``."""

    def __init__(self, reason: str, wait_s: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        # host_busy: in about how many seconds the host has room (None: no estimate)
        self.wait_s = wait_s


@dataclass
class Breaker:
    """Opens after ``threshold`` consecutive failures; one probe after ``open_s``."""

    threshold: int
    open_s: float
    state: BreakerState = "closed"
    failures: int = 0
    opened_at: float = 0.0
    probing: bool = False

    def admit(self, now: float) -> bool:
        if self.state == "closed":
            return True
        if self.state == "open" and now - self.opened_at >= self.open_s:
            self.state = "half_open"
        if self.state == "half_open" and not self.probing:
            self.probing = True
            return True
        return False

    def record(self, ok: bool, now: float) -> BreakerState | None:
        """Count a result; returns the new state when it changed."""
        before = self.state
        self.probing = False
        if ok:
            self.failures = 0
            self.state = "closed"
        else:
            self.failures += 1
            if self.state == "half_open" or self.failures >= self.threshold:
                self.state = "open"
                self.opened_at = now
        return self.state if self.state != before else None


@dataclass
class _Host:
    aimd: Aimd
    breaker: Breaker
    waiters: deque[asyncio.Future[None]] = field(default_factory=deque)
    active: int = 0
    attempts: int = 0  # ranks hosts for the limit gauge
    last_progress: float = 0.0
    pace: Pace = field(default_factory=Pace)
    parked: Calendar = field(default_factory=Calendar)  # when parked ones come back
    grant_pending: bool = False  # a freed slot waits for its attempt's result
    # Waiters that start their request themselves when granted (``acquire``'s
    # ``start``); a granted one that did stays in here, as ``_STARTED``, until it wakes.
    starters: dict[asyncio.Future[None], Callable[[], None]] = field(default_factory=dict)


class EndpointGuard:
    def __init__(
        self,
        *,
        max_per_host: int,
        failure_threshold: int,
        open_s: float,
        on_transition: Callable[[str, BreakerState], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._max = max_per_host
        self._threshold = failure_threshold
        self._open_s = open_s
        self._hosts: dict[str, _Host] = {}
        self._clock = clock
        self._on_transition = on_transition
        self._swept_at = clock()

    def _host(self, host: str) -> _Host:
        state = self._hosts.get(host)
        if state is None:
            now = self._clock()
            if now - self._swept_at >= SWEEP_EVERY_S:
                self._forget_idle(now)
            state = _Host(Aimd(self._max), Breaker(self._threshold, self._open_s))
            state.last_progress = now
            self._hosts[host] = state
        return state

    def _forget_idle(self, now: float) -> None:
        """Drop hosts idle for ``FORGET_IDLE_S``: nothing running or waiting, breaker
        closed, no parked callbacks booked to come back. Customers' hosts come and go;
        the table would otherwise grow for as long as the process lives. A host seen
        again starts afresh (at the ceiling), as after a restart."""
        self._swept_at = now
        current = slot_of(now)
        idle = [
            host
            for host, state in self._hosts.items()
            if now - state.last_progress > FORGET_IDLE_S
            and state.active == 0
            and not state.waiters
            and state.breaker.state == "closed"
            and not any(slot >= current for slot in state.parked.booked)
        ]
        for host in idle:
            del self._hosts[host]

    def open_count(self) -> int:
        return sum(1 for h in self._hosts.values() if h.breaker.state == "open")

    def state_of(self, host: str) -> BreakerState:
        return self._host(host).breaker.state

    def limit_of(self, host: str) -> int:
        return self._host(host).aimd.allowed

    def limits(self) -> list[tuple[str, int, int]]:
        """(host, current limit, attempts so far) of every host seen."""
        return [(h, s.aimd.allowed, s.attempts) for h, s in self._hosts.items()]

    @staticmethod
    def _stalled(state: _Host, now: float) -> bool:
        """At its limit and nothing finished for longer than a request usually takes."""
        usual = state.aimd.usual_latency_s or 0.0
        patience = max(STALL_AFTER_S, SLOW_FACTOR * usual)
        return state.active >= state.aimd.allowed and now - state.last_progress > patience

    @staticmethod
    def _queue_bound(state: _Host) -> int:
        limit = state.aimd.allowed
        return queue_bound(limit, state.pace.service_s(limit))

    @staticmethod
    def _come_back_in_s(state: _Host, now: float) -> float:
        """In how many seconds a callback parked now should come back to a throttled
        host: the first slot of its calendar with room from when the callbacks running
        and queued leave half a queue (``dispatcher.parking``)."""
        limit = state.aimd.allowed
        service_s = state.pace.service_s(limit)
        ahead = state.active + len(state.waiters) - queue_bound(limit, service_s) // 2
        return state.parked.book(now, now + ahead * service_s, service_s) - now

    def _shed(self, state: _Host) -> None:
        """Park the waiters beyond the queue bound of a host whose limit was just cut
        (they queued while its limit was higher), newest first."""
        bound = self._queue_bound(state)
        now = self._clock()
        while len(state.waiters) > bound:
            waiter = state.waiters.pop()
            state.starters.pop(waiter, None)
            if not waiter.done():
                waiter.set_exception(Rejected("host_busy", self._come_back_in_s(state, now)))

    async def acquire(self, host: str, start: Callable[[], None] | None = None) -> bool:
        """Take one of the host's slots for one attempt (``release`` it after); raises
        Rejected instead. Returns whether this attempt is the half-open probe.

        ``start``, if given, is called when a queued attempt is granted its slot, in
        the loop turn that freed it (usually the one that read an answer), so it can
        send its request then rather than a loop turn later, when this returns. It must
        not raise. An attempt granted while the breaker is not closed is not started."""
        state = self._host(host)
        now = self._clock()
        if state.breaker.state != "closed" and not state.breaker.admit(now):
            raise Rejected("circuit_open")
        probe = state.breaker.state == "half_open"
        allowed = state.aimd.allowed
        queued = len(state.waiters)
        if not probe:
            if queued >= allowed * STALLED_WAITERS_FACTOR and self._stalled(state, now):
                raise Rejected("host_busy")
            if state.aimd.throttled and queued >= self._queue_bound(state):
                raise Rejected("host_busy", self._come_back_in_s(state, now))
        if state.active >= allowed or state.waiters:
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            state.waiters.append(waiter)
            if start is not None:
                state.starters[waiter] = start
            try:
                await waiter  # ``_grant`` counts the slot as ours before waking us
            except Rejected:
                # Shed by ``_shed``: already out of the queue, never held a slot.
                if probe:
                    state.breaker.probing = False
                raise
            except BaseException:
                state.starters.pop(waiter, None)
                if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                    self._free(state)  # granted, then cancelled: hand the slot on
                elif waiter in state.waiters:  # ``_grant``/``_shed`` may have dropped it
                    state.waiters.remove(waiter)
                if probe:
                    state.breaker.probing = False
                raise
            started = state.starters.pop(waiter, None) is _STARTED
        else:
            state.active += 1
            started = False
        if not probe and not started and state.breaker.state != "closed":
            # The breaker opened while this attempt queued: fail fast like the rest.
            self._free(state)
            raise Rejected("circuit_open")
        if state.active == 1:
            state.last_progress = self._clock()  # a host that was idle starts afresh
        state.attempts += 1
        return probe

    @staticmethod
    def _grant(state: _Host) -> None:
        """Wake waiters while the (possibly changed) limit has room, in arrival order."""
        while state.waiters and state.active < state.aimd.allowed:
            waiter = state.waiters.popleft()
            if not waiter.done():
                state.active += 1
                waiter.set_result(None)
                start = state.starters.get(waiter)
                if start is not None:
                    if state.breaker.state == "closed":
                        state.starters[waiter] = _STARTED
                        start()
                    else:
                        del state.starters[waiter]

    def _free(self, state: _Host, *, defer: bool = False) -> None:
        state.active -= 1
        if not state.waiters:
            return
        if not defer:
            self._grant(state)
        elif not state.grant_pending:
            state.grant_pending = True
            asyncio.get_running_loop().call_soon(self._deferred_grant, state)

    def _deferred_grant(self, state: _Host) -> None:
        state.grant_pending = False
        self._grant(state)

    def release(self, host: str, probe: bool) -> None:
        """Give the slot back. It goes to the next waiter once the attempt's result is
        recorded (``record``, right after, or the next loop turn without one): a ``429``
        must cut the limit before its slot is handed on, or the waiter's request goes
        out at the old limit and is refused too (measured: about one ``429`` in two)."""
        state = self._hosts[host]
        state.last_progress = self._clock()
        self._free(state, defer=True)
        if probe and state.breaker.probing:
            # The probe ended without a result (cancelled): let another one try.
            state.breaker.probing = False

    @asynccontextmanager
    async def slot(self, host: str) -> AsyncIterator[None]:
        """``acquire``/``release`` as a context manager (tests, non-hot paths)."""
        probe = await self.acquire(host)
        try:
            yield
        finally:
            self.release(host, probe)

    def record(
        self,
        host: str,
        ok: bool,
        *,
        status: int | None = None,
        timed_out: bool = False,
        latency_s: float = 0.0,
    ) -> None:
        """Feed the breaker (``ok``: the host answered like a live server) and the
        adaptive limit (the status, or a timeout, and how long the call took)."""
        state = self._host(host)
        now = self._clock()
        changed = state.breaker.record(ok, now)
        if changed is not None and self._on_transition is not None:
            self._on_transition(host, changed)
        allowed = state.aimd.allowed
        state.aimd.observe(
            status=status,
            timed_out=timed_out,
            latency_s=latency_s,
            in_flight=state.active + 1,
            now=now,
        )
        if status is not None and 200 <= status < 300:
            state.pace.on_success(
                latency_s=latency_s, now=now, queued=len(state.waiters), limit=allowed
            )
        if state.waiters:
            if state.aimd.allowed < allowed and state.aimd.throttled:
                self._shed(state)
            self._grant(state)  # the limit may have grown


class EndpointLimitCollector(Collector):
    """``callbacks_endpoint_concurrency_limit{host}`` at scrape time.

    Hosts are customers' and unbounded, so only the busiest ``top`` get their own label
    value; the rest are one series, ``host="other"``, showing the *lowest* limit among
    them (the one worth a look: a throttled host stays visible even outside the top).
    """

    def __init__(self, top: int = LIMIT_GAUGE_TOP_HOSTS) -> None:
        self._top = top
        self._guard: EndpointGuard | None = None

    def follow(self, guard: EndpointGuard) -> None:
        self._guard = guard

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            ENDPOINT_CONCURRENCY_LIMIT,
            "Current adaptive concurrency limit per endpoint host (busiest hosts; the "
            "lowest limit of the rest as host=other).",
            labels=["host"],
        )
        hosts = sorted(self._guard.limits() if self._guard else [], key=lambda h: -h[2])
        for host, limit, _attempts in hosts[: self._top]:
            family.add_metric([host], limit)
        rest = hosts[self._top :]
        if rest:
            family.add_metric(["other"], min(limit for _host, limit, _attempts in rest))
        yield family
