"""The per-account token bucket of profile_api.rate_limits, on a clock the test moves."""

from __future__ import annotations

import pytest
from profile_api.problems import Problem
from profile_api.rate_limits import MAX_ACCOUNTS, RateLimiter
from profile_api.routes.test_calls import public_error


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_up_to_the_limit_then_a_wait_that_refills_evenly() -> None:
    clock = Clock()
    limiter = RateLimiter("test calls", 3, 60.0, clock)
    assert [limiter.acquire("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.acquire("a") == pytest.approx(20.0)  # one call per 20 s refills
    assert limiter.acquire("b") == 0.0  # another account has its own bucket
    clock.now += 20.0
    assert limiter.acquire("a") == 0.0
    assert limiter.acquire("a") == pytest.approx(20.0)
    clock.now += 3600.0
    assert [limiter.acquire("a") for _ in range(3)] == [0.0, 0.0, 0.0]  # capped at the limit


def test_a_refused_call_is_a_429_problem_with_retry_after() -> None:
    limiter = RateLimiter("report sends", 1, 3600.0, Clock())
    limiter.check("a")
    with pytest.raises(Problem) as refused:
        limiter.check("a")
    assert refused.value.status == 429
    assert refused.value.headers == {"Retry-After": "3600"}
    assert refused.value.kind == "rate-limited"
    assert "at most 1 report sends per hour" in refused.value.detail


def test_memory_stays_bounded() -> None:
    clock = Clock()
    limiter = RateLimiter("test calls", 1, 1.0, clock)
    for i in range(MAX_ACCOUNTS + 10):
        limiter.acquire(f"acct-{i}")
    assert len(limiter._buckets) <= MAX_ACCOUNTS


@pytest.mark.parametrize(
    ("error", "url", "shown"),
    [
        ("connection error: [Errno -2] Name or service not known", "https://nope.example/x",
         "connection error: could not connect to nope.example"),
        ("connection error: Multiple exceptions: [Errno 111] Connect call failed "
         "('10.0.3.7', 443)", "https://internal.example:443/",
         "connection error: could not connect to internal.example"),
        ("oauth2 token request failed: connection error: [Errno 113] No route to host",
         "https://auth.example/token",
         "oauth2 token request failed: connection error: could not connect to auth.example"),
        ("HTTP 503", "https://a.example/", "HTTP 503"),
        ("target a.example refused: private", "https://a.example/",
         "target a.example refused: private"),
        (None, "https://a.example/", None),
    ],
)  # fmt: skip
def test_test_call_errors_name_only_what_the_user_gave(
    error: str | None, url: str, shown: str | None
) -> None:
    assert public_error(error, url) == shown
