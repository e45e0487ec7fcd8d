"""The per-host guard: grants an attempt a slot of its host, or holds the callback back.

It keeps a concurrency limit per host, circuit breakers, fair queues and in-flight
shares, because every customer endpoint shares one process. Without a cap, a slow host
would hold every in-flight slot; without a breaker, a dead host would cost a full
timeout per callback. The cap adapts (``endpoints.aimd``): it halves when the host
answers 429 or 503 or times out and grows back on fast successes, up to
``max_per_host``.

Hosts are shared by tenants (one gateway with a path per product, an automation
platform), so a breaker has a scope (``callbacks.failures.Scope``):

- the *host's* breaker counts connection-level failures (refused, reset, TLS, DNS,
  connect timeout: nothing was sent) and opens for every profile on the host;
- an *endpoint's* breaker (one per profile, kept only while it has failures) counts
  answers (``5xx``) and failures after the request was written (timeouts), and opens for
  that profile only: one path's ``5xx`` never holds back another profile's callbacks.

A callback held back by an open breaker is told when its probe window opens
(``Rejected.come_back_in_s``) and is parked until then, without an attempt. The
adaptive limit stays per host (it is the host's capacity) and is shared fairly by the
profiles using it (``endpoints.fair_queue``).

No host and no account holds more than its share of the in-flight budget
(``share_budget``: callbacks running or waiting for a slot) while another host, or
account, asked for a slot within ``CONTENTION_WINDOW_S``, or while the guard holds
``PRESSURE_SHARE`` of the budget: the callbacks beyond it are parked (``host_busy`` with
the host's come-back estimate, ``account_busy`` without one). Alone and below that
pressure, a host or account may use more (nothing else is waiting for it).

Callbacks beyond what a host should hold are *parked* (``host_busy``: handed to a retry
topic without an attempt), so the in-flight budget stays with the healthy hosts:

- a host whose limit was cut keeps a bounded queue (``parking.queue_bound``: about a
  second of its work). A callback beyond it, or one of a queue that outgrew the bound
  when the limit was cut, is told when the host will have room for it
  (``come_back_in_s``; a slot of the host's ``parking.Calendar``), and comes back then
  (``parking.park``);
- a host at its limit that has finished nothing for a while (``STALL_AFTER_S``, or
  twice its usual latency if longer) keeps one round of waiters; callbacks beyond it
  have no useful estimate and wait a full retry delay (``come_back_in_s`` None).

A busy host that keeps answering at its full (uncut) limit keeps its queue, however
long: nothing says it is overloaded, and bounding it would park a fast host's bursts.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from callbacks.failures import FailureKind, Scope

from dispatcher.endpoints.aimd import SLOW_FACTOR, Aimd
from dispatcher.endpoints.breaker import Breaker, BreakerState
from dispatcher.endpoints.fair_queue import FairQueue, Granted, Waiter
from dispatcher.endpoints.parking import Calendar, Pace, queue_bound, slot_of

# A host at its cap that has finished nothing for this long is "not completing".
STALL_AFTER_S = 1.0
# Waiters a stalled host may keep, in multiples of its concurrency limit.
STALLED_WAITERS_FACTOR = 1
# A host idle this long is forgotten (``EndpointGuard._forget_idle``), looked for when a
# new host is first seen, at most this often.
FORGET_IDLE_S = 600.0
SWEEP_EVERY_S = 60.0
# Another host (account) counts as wanting room if it asked for a slot this recently.
CONTENTION_WINDOW_S = 1.0
# Or when the guard holds this share of the in-flight budget: fetching would soon pause,
# and the records behind it (of other hosts, unseen yet) could not ask at all.
PRESSURE_SHARE = 0.75


class Rejected(Exception):
    """The attempt was not started: held back (``reason.held``), not an attempt."""

    def __init__(self, reason: FailureKind, come_back_in_s: float | None = None) -> None:
        super().__init__(str(reason))
        self.reason = reason
        # In about how many seconds to come back: the host has room, or the breaker's
        # probe window opens (None: no estimate).
        self.come_back_in_s = come_back_in_s


class _Recent:
    """The two most recent distinct keys (hosts or accounts) that asked for a slot."""

    __slots__ = ("_a", "_b")

    def __init__(self) -> None:
        self._a: tuple[str, float] = ("", -math.inf)
        self._b: tuple[str, float] = ("", -math.inf)

    def saw(self, key: str, now: float) -> None:
        if self._a[0] != key:
            self._b = self._a
        self._a = (key, now)

    def others(self, key: str, now: float) -> bool:
        """Another key asked within ``CONTENTION_WINDOW_S``."""
        return any(k != key and now - t < CONTENTION_WINDOW_S for k, t in (self._a, self._b))


@dataclass
class _Host:
    aimd: Aimd
    breaker: Breaker  # connection-level failures: every profile on the host
    # Per endpoint (profile), only while it has failures: answers and timeouts.
    endpoints: dict[str, Breaker] = field(default_factory=dict)
    waiters: FairQueue = field(default_factory=FairQueue)
    active: int = 0
    attempts: int = 0  # ranks hosts for the limit gauge
    last_progress: float = 0.0
    pace: Pace = field(default_factory=Pace)
    parked: Calendar = field(default_factory=Calendar)  # when parked ones come back
    grant_pending: bool = False  # a freed slot waits for its attempt's result
    # Waiters that start their request themselves when granted (``acquire``'s
    # ``start``), until they are granted or leave the queue.
    starters: dict[Waiter, Callable[[], None]] = field(default_factory=dict)


class EndpointGuard:
    """The hosts seen lately and what holds for each: ``acquire`` a slot before an
    attempt, ``release`` it after, ``observe`` its result."""

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
        # In-flight shares (``share_budget``); unlimited until told otherwise.
        self._host_cap = math.inf
        self._account_cap = math.inf
        self._pressure = math.inf
        self._held = 0  # callbacks running or waiting for a slot, every host
        self._accounts: dict[str, int] = {}  # the same, per account
        self._recent_hosts = _Recent()
        self._recent_accounts = _Recent()

    def share_budget(self, budget: int, *, host_share: float, account_share: float) -> None:
        """Cap what one host, and one account, may hold of ``budget`` in-flight records
        (running or waiting for a slot) while another host, or account, has work."""
        self._host_cap = max(1, int(budget * host_share))
        self._account_cap = max(1, int(budget * account_share))
        self._pressure = budget * PRESSURE_SHARE

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
        """Drop hosts idle for ``FORGET_IDLE_S``: nothing running or waiting, breakers
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
            and all(b.state == "closed" for b in state.endpoints.values())
            and not any(slot >= current for slot in state.parked.booked)
        ]
        for host in idle:
            del self._hosts[host]

    def open_count(self) -> int:
        """Open breakers, host and endpoint scope."""
        return sum(
            (h.breaker.state == "open") + sum(b.state == "open" for b in h.endpoints.values())
            for h in self._hosts.values()
        )

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
        and queued leave half a queue (``endpoints.parking``)."""
        limit = state.aimd.allowed
        service_s = state.pace.service_s(limit)
        ahead = state.active + len(state.waiters) - queue_bound(limit, service_s) // 2
        return state.parked.book(now, now + ahead * service_s, service_s) - now

    def _shed(self, state: _Host) -> None:
        """Park the waiters beyond the queue bound of a host whose limit was just cut
        (they queued while its limit was higher), newest of the longest queue first."""
        bound = self._queue_bound(state)
        now = self._clock()
        while len(state.waiters) > bound:
            waiter = state.waiters.pop()
            state.starters.pop(waiter, None)
            if not waiter.done():
                come_back_in_s = self._come_back_in_s(state, now)
                waiter.set_exception(Rejected(FailureKind.HOST_BUSY, come_back_in_s))

    def _admit_breakers(self, state: _Host, endpoint: str, now: float) -> bool:
        """Raise ``circuit_open`` unless every breaker on the way admits the attempt;
        returns whether it is a probe (of the host's breaker, the endpoint's, or both)."""
        probes: list[Breaker] = []
        for breaker in (state.breaker, state.endpoints.get(endpoint)):
            if breaker is None or breaker.state == "closed":
                continue
            if not breaker.may_probe(now):
                raise Rejected(FailureKind.CIRCUIT_OPEN, breaker.retry_in_s(now))
            probes.append(breaker)
        for breaker in probes:
            breaker.start_probe()
        return bool(probes)

    def _closed_for(self, state: _Host, endpoint: str) -> bool:
        breaker = state.endpoints.get(endpoint)
        return state.breaker.state == "closed" and (breaker is None or breaker.state == "closed")

    def _held_back(self, state: _Host, endpoint: str, now: float) -> Rejected:
        wait = 0.0
        for breaker in (state.breaker, state.endpoints.get(endpoint)):
            if breaker is not None and breaker.state != "closed":
                wait = max(wait, breaker.retry_in_s(now))
        return Rejected(FailureKind.CIRCUIT_OPEN, wait)

    def _end_probe(self, state: _Host, endpoint: str) -> None:
        for breaker in (state.breaker, state.endpoints.get(endpoint)):
            if breaker is not None:
                breaker.end_probe()

    def _over_share(self, host: str, state: _Host, account: str, now: float) -> Rejected | None:
        """A host or account over its in-flight share while another one has work, or
        while the guard holds ``PRESSURE_SHARE`` of the budget."""
        self._recent_hosts.saw(host, now)
        pressed = self._held >= self._pressure
        if state.active + len(state.waiters) >= self._host_cap and (
            pressed or self._recent_hosts.others(host, now)
        ):
            return Rejected(FailureKind.HOST_BUSY, self._come_back_in_s(state, now))
        if not account:
            return None
        self._recent_accounts.saw(account, now)
        if self._accounts.get(account, 0) >= self._account_cap and (
            pressed or self._recent_accounts.others(account, now)
        ):
            return Rejected(FailureKind.ACCOUNT_BUSY)
        return None

    def _enter(self, account: str) -> None:
        self._held += 1
        if account:
            self._accounts[account] = self._accounts.get(account, 0) + 1

    def _leave(self, account: str) -> None:
        self._held -= 1
        if account:
            left = self._accounts[account] - 1
            if left:
                self._accounts[account] = left
            else:
                del self._accounts[account]

    async def acquire(
        self,
        host: str,
        start: Callable[[], None] | None = None,
        *,
        endpoint: str = "",
        account: str = "",
    ) -> bool:
        """Take one of the host's slots for one attempt (``release`` it after, with the
        same ``endpoint`` and ``account``); raises Rejected instead. Returns whether this
        attempt is a half-open probe.

        ``endpoint`` (the profile) picks the endpoint breaker and the fair-share queue;
        ``account`` is counted against its in-flight share.

        ``start``, if given, is called when a queued attempt is granted its slot, in
        the loop turn that freed it (usually the one that read an answer), so it can
        send its request then rather than a loop turn later, when this returns. It must
        not raise. An attempt granted while a breaker is not closed is not started."""
        state = self._host(host)
        now = self._clock()
        probe = self._admit_breakers(state, endpoint, now)
        allowed = state.aimd.allowed
        queued = len(state.waiters)
        if not probe:
            refusal = None
            if queued >= allowed * STALLED_WAITERS_FACTOR and self._stalled(state, now):
                refusal = Rejected(FailureKind.HOST_BUSY)
            elif state.aimd.throttled and queued >= self._queue_bound(state):
                refusal = Rejected(FailureKind.HOST_BUSY, self._come_back_in_s(state, now))
            else:
                refusal = self._over_share(host, state, account, now)
            if refusal is not None:
                raise refusal
        self._enter(account)
        try:
            started = await self._take_slot(state, allowed, start, endpoint)
        except BaseException:
            self._leave(account)
            if probe:
                self._end_probe(state, endpoint)
            raise
        if not probe and not started and not self._closed_for(state, endpoint):
            # A breaker opened while this attempt queued: held back like the rest.
            self._free(state)
            self._leave(account)
            raise self._held_back(state, endpoint, self._clock())
        if state.active == 1:
            state.last_progress = self._clock()  # a host that was idle starts afresh
        state.attempts += 1
        return probe

    async def _take_slot(
        self, state: _Host, allowed: int, start: Callable[[], None] | None, endpoint: str
    ) -> bool:
        """A slot now, or in the fair queue; returns whether ``start`` sent the request."""
        if state.active < allowed and not state.waiters:
            state.active += 1
            return False
        waiter: Waiter = asyncio.get_running_loop().create_future()
        state.waiters.append(endpoint, waiter)
        if start is not None:
            state.starters[waiter] = start
        try:
            granted = await waiter  # ``_grant`` counts the slot as ours before waking us
        except Rejected:
            raise  # shed by ``_shed``: already out of the queue, never held a slot
        except BaseException:
            state.starters.pop(waiter, None)
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self._free(state)  # granted, then cancelled: hand the slot on
            elif waiter in state.waiters:  # ``_grant``/``_shed`` may have dropped it
                state.waiters.remove(waiter)
            raise
        return granted is Granted.STARTED

    def _grant(self, state: _Host) -> None:
        """Wake waiters while the (possibly changed) limit has room, round-robin between
        the endpoints, in arrival order within one."""
        while state.waiters and state.active < state.aimd.allowed:
            endpoint, waiter = state.waiters.popleft()
            if not waiter.done():
                state.active += 1
                start = state.starters.pop(waiter, None)
                if start is not None and self._closed_for(state, endpoint):
                    waiter.set_result(Granted.STARTED)
                    start()
                else:
                    waiter.set_result(Granted.WOKEN)

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

    def release(self, host: str, probe: bool, *, endpoint: str = "", account: str = "") -> None:
        """Give the slot back. It goes to the next waiter once the attempt's result is
        observed (``observe``, right after, or the next loop turn without one): a ``429``
        must cut the limit before its slot is handed on, or the waiter's request goes
        out at the old limit and is refused too."""
        state = self._hosts[host]
        state.last_progress = self._clock()
        self._free(state, defer=True)
        self._leave(account)
        if probe:
            # The probe ended (its result, if any, is observed next): another may try.
            self._end_probe(state, endpoint)

    def observe(
        self,
        host: str,
        ok: bool,
        *,
        status: int | None = None,
        timed_out: bool = False,
        latency_s: float = 0.0,
        endpoint: str | None = None,
        scope: Scope = Scope.HOST,
    ) -> None:
        """Feed a breaker and the adaptive limit (the status, or a timeout, and how long
        the call took). ``ok`` (the receiver behaved like a live server) goes to the
        breaker of ``scope``: the host's, or ``endpoint``'s. An answer of any status
        also tells the host's breaker that the host is up."""
        state = self._host(host)
        now = self._clock()
        if scope is Scope.ENDPOINT and endpoint is not None:
            self._observe_endpoint(state, host, endpoint, ok, now)
            if status is not None:
                self._observe_breaker(state.breaker, host, True, now)
        elif scope is not Scope.NONE:
            self._observe_breaker(state.breaker, host, ok, now)
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

    def _observe_endpoint(
        self, state: _Host, host: str, endpoint: str, ok: bool, now: float
    ) -> None:
        breaker = state.endpoints.get(endpoint)
        if breaker is None:
            if ok:
                return  # a healthy endpoint keeps no breaker
            breaker = state.endpoints[endpoint] = Breaker(self._threshold, self._open_s)
        self._observe_breaker(breaker, f"{host} profile {endpoint}", ok, now)
        if breaker.state == "closed" and breaker.failures == 0:
            del state.endpoints[endpoint]

    def _observe_breaker(self, breaker: Breaker, name: str, ok: bool, now: float) -> None:
        changed = breaker.observe(ok, now)
        if changed is not None and self._on_transition is not None:
            self._on_transition(name, changed)
