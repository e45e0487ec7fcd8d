"""How much work a throttled host may queue, and when its parked callbacks come back. Pure.

A host whose limit was cut (``endpoints.aimd``) keeps a bounded queue in memory
(``queue_bound``: about ``QUEUE_S`` of its work), so it cannot hold the in-flight
budget the healthy hosts need. Callbacks beyond it are *parked*: written to a retry
topic with their own due time (``park``), same attempt, no outcome. They must come back
about when the host can take them: too late and it runs dry, too early and they are
parked again (a record produced and read back for nothing).

- ``Pace``: how long the host takes per callback when kept busy, erring low. Early
  returns cost a little work; late ones cost the host's throughput.
- ``Calendar``: one per host, of ``SLOT_S`` slots. A parked callback books the first
  slot with room from the moment the work ahead of it leaves half a queue; it then
  finds about half a queue ahead of it, so the host never runs dry for want of parked
  work and an estimate off by up to 2x neither starves it nor turns the callback away
  again. A slot has room for as many callbacks as the host finishes in ``SLOT_S`` at its
  *current* pace, so the calendar heals itself: slots booked while the pace looked
  faster than it is are full and skipped (their surplus comes back early and books
  again further on), and slots booked while it looked slower are topped up later.

The slot is also the due time's grid (``PARK_GRANULARITY_MS``): a retry partition
wakes once per slot for the callbacks parked in it, not once per callback.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

SLOT_S = 0.1
# Callbacks that may queue for a host whose limit was cut: about QUEUE_S of its work at
# its pace, at least QUEUE_MIN_PER_SLOT per slot of its limit, never more than QUEUE_MAX
# (a quarter of the default in-flight budget, 1000: the rest stays with the healthy
# hosts). The queue only has to cover how late parked callbacks may come back (their
# slot, a fetch), not a retry delay.
QUEUE_S = 1.0
QUEUE_MIN_PER_SLOT = 4
QUEUE_MAX = 250
FALLBACK_LATENCY_S = 0.05  # before any 2xx was seen
PACE_WEIGHT = 0.05  # of a new gap between 2xx completions in the pace's moving average
PACE_MIN_SAMPLES = 8  # gaps measured before the pace is trusted
MIN_LATENCY_WINDOW_S = 10.0
MEAN_LIMIT_WEIGHT = 0.02  # of the current limit in its moving average, per 2xx

# A parked record waits at least this long (no tight park/return loop) and its due time
# is rounded up to a multiple of this, so a retry partition wakes for a group of parked
# records at most this often instead of once per record (each wake is a fetch).
PARK_GRANULARITY_MS = 100


@dataclass
class Pace:
    """Seconds per callback of one host kept busy, from two estimates, the lower one:

    - the measured gap between its 2xx completions while callbacks waited for it at
      both ends of the gap (so idle time does not count);
    - its fastest 2xx latency of the last ``MIN_LATENCY_WINDOW_S`` over its average
      limit (Little's law with the round trip a queue-free request takes).

    The gap alone errs high just when most callbacks get parked: while the dispatcher
    takes in a backlog its own lag slows every completion down for a moment, and
    callbacks parked on that estimate would come back seconds late.
    """

    gap_s: float | None = None
    samples: int = 0
    last_success_at: float | None = None
    busy_at_last_success: bool = False
    min_latency_s: float | None = None
    min_latency_at: float = 0.0
    mean_limit: float = 0.0

    def on_success(self, *, latency_s: float, now: float, queued: int, limit: int) -> None:
        """A 2xx that took ``latency_s``; ``queued`` callbacks waited for the host then."""
        if self.min_latency_s is None or (
            latency_s <= self.min_latency_s or now - self.min_latency_at > MIN_LATENCY_WINDOW_S
        ):
            self.min_latency_s, self.min_latency_at = latency_s, now
        mean = self.mean_limit or float(limit)
        self.mean_limit = mean + MEAN_LIMIT_WEIGHT * (limit - mean)
        if queued and self.busy_at_last_success and self.last_success_at is not None:
            # A busy host finishes one callback at least every latency: a longer gap is
            # the dispatcher's own lag.
            gap = min(now - self.last_success_at, latency_s)
            self.samples += 1
            # A plain mean of the first samples, then a moving average (one early gap
            # of ~0, two answers read in one loop turn, must not set the pace alone).
            weight = max(PACE_WEIGHT, 1.0 / self.samples)
            current = self.gap_s or 0.0
            self.gap_s = current + weight * (gap - current)
        self.last_success_at = now
        self.busy_at_last_success = queued > 0

    def service_s(self, limit: int) -> float:
        latency = self.min_latency_s or FALLBACK_LATENCY_S
        by_latency = latency / max(self.mean_limit, float(limit), 1.0)
        if self.gap_s is not None and self.samples >= PACE_MIN_SAMPLES:
            return min(self.gap_s, by_latency)
        return by_latency


def queue_bound(limit: int, service_s: float) -> int:
    """How many callbacks may wait for a throttled host with ``limit`` slots."""
    return min(QUEUE_MAX, max(QUEUE_MIN_PER_SLOT * limit, int(QUEUE_S / service_s)))


def slot_of(t: float) -> int:
    """The slot holding clock time ``t`` (rounded first: 100.0 / 0.1 is 999.99...)."""
    return math.floor(round(t / SLOT_S, 6))


@dataclass
class Calendar:
    """Callbacks booked per slot (slot *i* starts at ``i * SLOT_S`` clock seconds)."""

    booked: dict[int, float] = field(default_factory=dict)
    oldest: int = 0  # no slot before this one is kept

    def book(self, now: float, earliest: float, service_s: float) -> float:
        """Book one callback from ``earliest`` on, for a host that takes ``service_s``
        per callback; returns when the booked slot starts (never before ``now``)."""
        self._forget_before(slot_of(now))
        per_slot = SLOT_S / service_s if service_s > 0 else math.inf
        slot = max(slot_of(earliest), self.oldest)
        while self.booked.get(slot, 0.0) + 1.0 > max(per_slot, 1.0):
            slot += 1
        self.booked[slot] = self.booked.get(slot, 0.0) + 1.0
        # A host slower than one callback per slot takes this one over several slots.
        span = math.ceil(1.0 / per_slot) if per_slot < 1.0 else 1
        for extra in range(1, span):
            self.booked[slot + extra] = math.inf
        return max(now, slot * SLOT_S)

    def _forget_before(self, slot: int) -> None:
        if slot <= self.oldest:
            return
        if slot - self.oldest > len(self.booked):
            self.booked = {s: n for s, n in self.booked.items() if s >= slot}
        else:
            for old in range(self.oldest, slot):
                self.booked.pop(old, None)
        self.oldest = slot


class RetryLanes:
    """The latest due time this process wrote to each retry topic, per partition.

    Records of a retry partition are read in order, so a parked callback written behind
    a record due later waits for it (head-of-line). Under co-partitioning, partition *i*
    of every retry topic is written by the member that owns partition *i* of the
    sources, so it knows what it wrote there; after a rebalance or restart it does not,
    and a parked callback may wait behind a retry, at most its topic's delay.
    """

    def __init__(self) -> None:
        self._due_ms: dict[tuple[float, int], int] = {}

    def wrote(self, delay_s: float, partition: int, due_ms: int) -> None:
        key = (delay_s, partition)
        self._due_ms[key] = max(self._due_ms.get(key, 0), due_ms)

    def latest(self, delay_s: float, partition: int) -> int:
        return self._due_ms.get((delay_s, partition), 0)


def park(
    schedule: Sequence[float],
    wait_s: float | None,
    now_ms: int,
    latest: Callable[[float], int] = lambda _delay: 0,
) -> tuple[float, int | None]:
    """Where a parked callback goes: (retry topic delay, its own due time or None).

    ``wait_s`` is the guard's estimate of when the host has room (None: no estimate, a
    host that stopped completing); ``latest(delay)`` the latest due time already written
    to that topic's partition (``RetryLanes``). The due time is the wait, at least
    ``PARK_GRANULARITY_MS``, rounded up to a multiple of it. The topic is the shortest
    whose delay covers the wait (so the record is due by then even if its header were
    lost; the due time never exceeds it) and holds nothing due later: real retries go to
    the schedule's first delays, so parked callbacks move to a longer topic instead of
    waiting behind them. If every such topic holds a later record, the one that frees
    soonest. Without an estimate the record waits the shortest delay, as a retry would.
    """
    delays = sorted(set(schedule))  # the default schedule repeats its last delay
    if wait_s is None:
        return delays[0], None
    step = PARK_GRANULARITY_MS
    due_ms = math.ceil((now_ms + max(float(step), wait_s * 1000.0)) / step) * step
    covering = [d for d in delays if d >= wait_s] or [delays[-1]]
    delay = next((d for d in covering if latest(d) <= due_ms), None)
    if delay is None:
        delay = min(covering, key=latest)
    return delay, min(due_ms, now_ms + int(delay * 1000))
