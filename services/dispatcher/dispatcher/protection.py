"""Endpoint protection: a concurrency cap and a circuit breaker per endpoint host.

Why: every customer endpoint shares one process. Without a cap, a slow host would hold
every in-flight slot; without a breaker, a dead host would cost a full timeout per
callback. A host that is at its cap *and* not completing anything (its oldest request
has been running for a while) takes no more waiters: further callbacks to it are handed
to the retry path at once (``host_busy``), so the in-flight budget stays with the
healthy hosts. A busy host that keeps answering keeps its queue, however long.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Literal

BreakerState = Literal["closed", "open", "half_open"]

# A host at its cap that has finished nothing for this long is "not completing".
STALL_AFTER_S = 1.0
# Waiters a stalled host may keep, in multiples of its concurrency cap.
STALLED_WAITERS_FACTOR = 1


class Rejected(Exception):
    """The attempt was not started; ``reason`` is ``circuit_open`` or ``host_busy``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


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
    semaphore: asyncio.Semaphore
    breaker: Breaker
    waiting: int = 0
    active: int = 0
    last_progress: float = 0.0


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

    def _host(self, host: str) -> _Host:
        state = self._hosts.get(host)
        if state is None:
            state = _Host(asyncio.Semaphore(self._max), Breaker(self._threshold, self._open_s))
            self._hosts[host] = state
        return state

    def open_count(self) -> int:
        return sum(1 for h in self._hosts.values() if h.breaker.state == "open")

    def state_of(self, host: str) -> BreakerState:
        return self._host(host).breaker.state

    @staticmethod
    def _stalled(state: _Host, now: float) -> bool:
        return state.semaphore.locked() and now - state.last_progress > STALL_AFTER_S

    async def acquire(self, host: str) -> bool:
        """Take one of the host's slots for one attempt (``release`` it after); raises
        Rejected instead. Returns whether this attempt is the half-open probe."""
        state = self._host(host)
        now = self._clock()
        if state.breaker.state != "closed" and not state.breaker.admit(now):
            raise Rejected("circuit_open")
        probe = state.breaker.state == "half_open"
        if (
            not probe
            and state.waiting >= self._max * STALLED_WAITERS_FACTOR
            and self._stalled(state, now)
        ):
            raise Rejected("host_busy")
        if state.semaphore.locked() or state.waiting:
            state.waiting += 1
            try:
                await state.semaphore.acquire()
            except BaseException:
                if probe:
                    state.breaker.probing = False
                raise
            finally:
                state.waiting -= 1
        else:
            await state.semaphore.acquire()  # free: returns without suspending
        if not probe and state.breaker.state != "closed":
            # The breaker opened while this attempt queued: fail fast like the rest.
            state.semaphore.release()
            raise Rejected("circuit_open")
        if state.active == 0:
            state.last_progress = self._clock()  # a host that was idle starts afresh
        state.active += 1
        return probe

    def release(self, host: str, probe: bool) -> None:
        state = self._hosts[host]
        state.active -= 1
        state.last_progress = self._clock()
        state.semaphore.release()
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

    def record(self, host: str, ok: bool) -> None:
        """Feed the breaker: ``ok`` means the host answered like a live server."""
        state = self._host(host)
        changed = state.breaker.record(ok, self._clock())
        if changed is not None and self._on_transition is not None:
            self._on_transition(host, changed)
