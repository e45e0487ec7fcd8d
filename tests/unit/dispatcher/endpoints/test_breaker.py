"""A circuit breaker's states (``dispatcher.endpoints.breaker``): open, one probe, closed."""

from __future__ import annotations

from dispatcher.endpoints.breaker import Breaker


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
