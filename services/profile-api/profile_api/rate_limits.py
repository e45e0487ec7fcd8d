"""Per-account rate limits on the calls that make the platform do work for a tenant.

The Test call sends a real HTTP request (and may fetch an OAuth2 token first) and
``send-now`` sends an email; without a limit one account could use the API as a traffic
generator or a mail cannon. Each limit is a token bucket per account: ``limit`` calls,
refilled evenly over ``window_s`` (``CALLBACKS_TEST_CALL_LIMIT`` /
``CALLBACKS_TEST_CALL_WINDOW``, ``CALLBACKS_SEND_NOW_LIMIT`` / ``CALLBACKS_SEND_NOW_WINDOW``).
A refused call is a ``429`` problem with ``Retry-After``.

Buckets live in the process, so with N API replicas an account gets at most N times a
limit; they are a guard against abuse, not a billing meter. Memory is bounded: a full
bucket carries no information and is dropped, and at most ``MAX_ACCOUNTS`` are held.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from profile_api.keys import SETTINGS
from profile_api.problems import Problem

Clock = Callable[[], float]
MAX_ACCOUNTS = 100_000
RATE_LIMITED = "rate-limited"


@dataclass
class _Bucket:
    tokens: float
    at: float


class RateLimiter:
    """``limit`` calls per ``window_s`` per key, as a token bucket; ``clock`` is monotonic."""

    def __init__(
        self, name: str, limit: int, window_s: float, clock: Clock = time.monotonic
    ) -> None:
        if limit < 1 or window_s <= 0:
            raise ValueError("a rate limit needs limit >= 1 and a positive window")
        self.name = name
        self.limit = limit
        self.window_s = window_s
        self._rate = limit / window_s  # tokens per second
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}

    def acquire(self, key: str) -> float:
        """Take one call for ``key``: 0.0 if allowed, else the seconds until one is."""
        now = self._clock()
        bucket = self._buckets.get(key)
        tokens = float(self.limit)
        if bucket is not None:
            tokens = min(self.limit, bucket.tokens + (now - bucket.at) * self._rate)
        if tokens < 1.0:
            self._buckets[key] = _Bucket(tokens, now)
            return (1.0 - tokens) / self._rate
        if len(self._buckets) >= MAX_ACCOUNTS and key not in self._buckets:
            self._prune(now)
        self._buckets[key] = _Bucket(tokens - 1.0, now)
        return 0.0

    def _prune(self, now: float) -> None:
        """Drop the buckets that have refilled (they hold nothing a new one would not)."""
        full = [
            k
            for k, b in self._buckets.items()
            if b.tokens + (now - b.at) * self._rate >= self.limit
        ]
        for key in full:
            del self._buckets[key]
        if len(self._buckets) >= MAX_ACCOUNTS:  # all busy: forget the oldest
            oldest = min(self._buckets, key=lambda k: self._buckets[k].at)
            del self._buckets[oldest]

    def check(self, key: str) -> None:
        """Take one call for ``key`` or raise the ``429`` problem saying when to retry."""
        wait_s = self.acquire(key)
        if wait_s > 0:
            retry_after = max(1, math.ceil(wait_s))
            raise Problem(
                429,
                f"at most {self.limit} {self.name} per {_window(self.window_s)} per account; "
                f"retry in {retry_after} s",
                kind=RATE_LIMITED,
                headers={"Retry-After": str(retry_after)},
            )


def _window(seconds: float) -> str:
    for unit, size in (("hour", 3600.0), ("minute", 60.0)):
        if seconds >= size and seconds % size == 0:
            count = int(seconds // size)
            return unit if count == 1 else f"{count} {unit}s"
    return f"{seconds:g} s"


TEST_CALLS = web.AppKey("test_call_limiter", RateLimiter)
SEND_NOW = web.AppKey("send_now_limiter", RateLimiter)


def install(app: web.Application, *, clock: Clock = time.monotonic) -> None:
    """Put both limiters on ``app``, sized by its settings."""
    settings = app[SETTINGS]
    app[TEST_CALLS] = RateLimiter(
        "test calls", settings.test_call_limit, settings.test_call_window, clock
    )
    app[SEND_NOW] = RateLimiter(
        "report sends", settings.send_now_limit, settings.send_now_window, clock
    )


def limit_test_calls(request: web.Request, account: str) -> None:
    request.app[TEST_CALLS].check(account)


def limit_send_now(request: web.Request, account: str) -> None:
    request.app[SEND_NOW].check(account)
