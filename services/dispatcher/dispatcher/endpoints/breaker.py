"""A circuit breaker: after ``threshold`` consecutive failures, one probe per ``open_s``.

Pure and clock-free: the caller passes ``now``. The guard keeps one per host (failures to
connect) and one per endpoint while it has failures (answers and failures after the
request was written), ``dispatcher.endpoints.guard``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

BreakerState = Literal["closed", "open", "half_open"]

# A half-open breaker's probe is under way: held-back callbacks look again this soon.
PROBE_RECHECK_S = 1.0


@dataclass
class Breaker:
    """Opens after ``threshold`` consecutive failures; one probe after ``open_s``."""

    threshold: int
    open_s: float
    state: BreakerState = "closed"
    failures: int = 0
    opened_at: float = 0.0
    probing: bool = False

    def may_probe(self, now: float) -> bool:
        """Not closed: whether a probe may go now (half-open, none under way); an open
        breaker whose ``open_s`` is over turns half-open here."""
        if self.state == "open" and now - self.opened_at >= self.open_s:
            self.state = "half_open"
        return self.state == "half_open" and not self.probing

    def start_probe(self) -> None:
        """The probe ``may_probe`` allowed is under way: no other goes until it ends."""
        self.probing = True

    def end_probe(self) -> None:
        """The probe ended (its result, if any, goes to ``observe``): another may go."""
        self.probing = False

    def retry_in_s(self, now: float) -> float:
        """When a callback held back now should look again: the probe window."""
        if self.state == "open":
            return max(0.0, self.opened_at + self.open_s - now)
        return min(self.open_s, PROBE_RECHECK_S)

    def observe(self, ok: bool, now: float) -> BreakerState | None:
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
