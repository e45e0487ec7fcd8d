"""A circuit breaker's states (``dispatcher.endpoints.breaker``): open, one probe, closed."""

from __future__ import annotations

from dispatcher.endpoints.breaker import Breaker


def _admit(breaker: Breaker, now: float) -> bool:
    """What the guard does: a closed breaker lets every attempt go, a half-open one its
    one probe."""
    if breaker.state == "closed":
        return True
    if breaker.may_probe(now):
        breaker.start_probe()
        return True
    return False


def test_breaker_opens_probes_once_and_closes() -> None:
    breaker = Breaker(threshold=3, open_s=10)
    for _ in range(2):
        breaker.observe(False, now=0)
    assert breaker.failures == 2
    assert breaker.observe(False, now=1) == "open"
    assert not _admit(breaker, now=5)
    assert _admit(breaker, now=11)  # cool-down over: one probe
    assert str(breaker.state) == "half_open"
    assert not _admit(breaker, now=11.1)  # only one
    assert breaker.observe(False, now=12) == "open"  # probe failed: open again
    assert not _admit(breaker, now=15)
    assert _admit(breaker, now=22.5)
    assert breaker.observe(True, now=23) == "closed"
    assert _admit(breaker, now=23)


def test_a_probe_that_ends_unanswered_lets_the_next_one_go() -> None:
    breaker = Breaker(threshold=1, open_s=10)
    breaker.observe(False, now=0)
    assert _admit(breaker, now=10)
    assert not _admit(breaker, now=10.5)
    breaker.end_probe()  # cancelled before an answer
    assert _admit(breaker, now=10.6)
