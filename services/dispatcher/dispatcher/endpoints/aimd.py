"""Additive-increase / multiplicative-decrease of one endpoint host's concurrency. Pure.

A fixed per-host cap is either too low for a big receiver or too high for a small one,
which then answers ``429``/``503`` or times out and every refused call costs a retry.
Like TCP congestion control, the limit grows by about one slot per round trip of fast
successes and halves on a sign of overload, never below 1 nor above the ceiling
(``CALLBACKS_MAX_CONCURRENCY_PER_HOST``).

- *Fast* 2xx: no slower than ``SLOW_FACTOR`` times the host's usual 2xx latency (a
  moving average) or ``FAST_FLOOR_S``, whichever is larger. A slow 2xx means the
  receiver is queueing: the limit holds.
- Growth only while the host uses at least half its limit: a host that is not limited by
  us gives no evidence that more would be fine.
- Cautious near the last overload: once the limit is back within one slot of where it
  was last cut, it grows ``PLATEAU_FACTOR`` times slower, and at normal speed again
  once past it (the receiver may have grown). So the limit lingers just below where the
  receiver refused instead of probing it again at once; the cut is still a halving.
- One halving per round trip: an overload answer to a request that started before the
  last halving, or that comes within one usual round trip of it, is the same congestion
  event and is not counted again (otherwise one burst of 429s would take the limit
  straight to 1). The second rule covers a slot freed by the first ``429`` that went to
  a waiting callback before the cut was observed: its request, sent just after the cut,
  is refused for the same overload and must not halve the limit again.

How many callbacks may wait for a throttled host, and when parked ones come back, is
``endpoints.parking``'s business; docs/adaptive-concurrency.md has the figures behind
these rules.
"""

from __future__ import annotations

from dataclasses import dataclass

SLOW_FACTOR = 2.0
FAST_FLOOR_S = 0.05
EWMA_WEIGHT = 0.1  # of a new 2xx latency in the usual-latency average
OVERLOAD_STATUSES = frozenset({429, 503})
PLATEAU_FACTOR = 8.0  # how much slower the limit grows within a slot of its last cut


@dataclass
class Aimd:
    """One host's limit. ``limit`` is fractional; ``allowed`` is what the guard uses."""

    ceiling: int
    limit: float = 0.0  # 0: start at the ceiling
    usual_latency_s: float | None = None
    last_decrease: float = float("-inf")
    cut_from: float = 0.0  # the limit when it was last cut (0: never cut)

    def __post_init__(self) -> None:
        if self.limit <= 0:
            self.limit = float(self.ceiling)

    @property
    def allowed(self) -> int:
        return max(1, min(self.ceiling, int(self.limit)))

    @property
    def throttled(self) -> bool:
        return self.allowed < self.ceiling

    def is_fast(self, latency_s: float) -> bool:
        usual = self.usual_latency_s
        return usual is None or latency_s <= max(FAST_FLOOR_S, SLOW_FACTOR * usual)

    def on_success(self, latency_s: float, in_flight: int) -> None:
        """A 2xx that took ``latency_s``; ``in_flight`` counts it and its companions."""
        fast = self.is_fast(latency_s)
        usual = self.usual_latency_s
        self.usual_latency_s = (
            latency_s if usual is None else usual + EWMA_WEIGHT * (latency_s - usual)
        )
        if fast and in_flight * 2 >= self.allowed:
            step = 1.0 / self.limit
            if abs(self.limit - self.cut_from) < 1.0:
                step /= PLATEAU_FACTOR
            self.limit = min(float(self.ceiling), self.limit + step)

    def on_overload(self, started_at: float, now: float) -> bool:
        """A 429, 503 or timeout of a request started at ``started_at``; True if halved."""
        if started_at < self.last_decrease or now - self.last_decrease < (
            self.usual_latency_s or 0.0
        ):
            return False
        self.cut_from = self.limit
        self.limit = max(1.0, self.limit / 2.0)
        self.last_decrease = now
        return True

    def observe(
        self, *, status: int | None, timed_out: bool, latency_s: float, in_flight: int, now: float
    ) -> None:
        """Feed one finished attempt; other failures (500, refused connection) are the
        circuit breaker's business and leave the limit alone."""
        if status is not None and 200 <= status < 300:
            self.on_success(latency_s, in_flight)
        elif timed_out or status in OVERLOAD_STATUSES:
            self.on_overload(now - latency_s, now)
