"""Why a callback attempt did not deliver: one type whose members carry their policy. Pure.

Each kind says what follows from it, so no module keeps its own set of strings:

- ``final``: no retry can cure it (the target is refused, the request cannot be built,
  the callback is past its ``max_age``); the callback fails at once.
- ``retriable``: the retry schedule may cure it (still subject to ``retry_on``).
- ``held``: the callback was held back before any request (its host is busy, or a
  circuit breaker is open): not an attempt, so its attempt number does not advance.
- ``reached``: the request reached the host (written to a connection, or answered).
- ``scope``: whose health it speaks of. Connection-level failures before the request
  was written (refused, reset, TLS, DNS, connect timeout) are the *host*'s; answers and
  failures after the request was written are the *endpoint*'s (its profile), so one
  path's ``5xx`` never trips the breaker of another profile on the same host.

The member values are the bounded labels used in metrics and dead-letter reasons; the
outcome record's free-text ``error`` is separate and unchanged by this type.
"""

from __future__ import annotations

from enum import StrEnum


class Scope(StrEnum):
    HOST = "host"
    ENDPOINT = "endpoint"
    NONE = "none"  # says nothing about the receiver (never reached it, or our side)


class FailureKind(StrEnum):
    # Answered, but not with a 2xx.
    HTTP_STATUS = "http_status"
    REDIRECT = "redirect"  # a 3xx: redirects are not followed
    # The request was written and no (whole) answer came: the endpoint's.
    TIMEOUT = "timeout"
    CONNECTION_LOST = "connection_lost"
    # No request was written: the host's.
    CONNECT_TIMEOUT = "connect_timeout"
    CONNECTION = "connection"  # refused, reset, TLS handshake, DNS
    # Never sent, our side or the profile's: no retry helps.
    FORBIDDEN_TARGET = "forbidden_target"
    INVALID_REQUEST = "invalid_request"
    RENDER_ERROR = "render_error"
    EXPIRED = "expired"  # past the profile's max_age
    # Never sent, may pass: the OAuth2 token endpoint failed.
    OAUTH_TOKEN = "oauth_token"  # noqa: S105 - a kind, not a secret
    # Held back, not an attempt.
    HOST_BUSY = "host_busy"
    ACCOUNT_BUSY = "account_busy"
    CIRCUIT_OPEN = "circuit_open"

    @property
    def final(self) -> bool:
        return self in _FINAL

    @property
    def held(self) -> bool:
        return self in _HELD

    @property
    def retriable(self) -> bool:
        return not self.final and not self.held

    @property
    def reached(self) -> bool:
        return self in _REACHED

    @property
    def scope(self) -> Scope:
        if self in _REACHED:
            return Scope.ENDPOINT
        if self in _HOST:
            return Scope.HOST
        return Scope.NONE

    @property
    def timed_out(self) -> bool:
        """A sign of an overloaded host for the adaptive limit."""
        return self in (FailureKind.TIMEOUT, FailureKind.CONNECT_TIMEOUT)


_FINAL = frozenset(
    {
        FailureKind.FORBIDDEN_TARGET,
        FailureKind.INVALID_REQUEST,
        FailureKind.RENDER_ERROR,
        FailureKind.EXPIRED,
    }
)
_HELD = frozenset({FailureKind.HOST_BUSY, FailureKind.ACCOUNT_BUSY, FailureKind.CIRCUIT_OPEN})
_REACHED = frozenset(
    {
        FailureKind.HTTP_STATUS,
        FailureKind.REDIRECT,
        FailureKind.TIMEOUT,
        FailureKind.CONNECTION_LOST,
    }
)
_HOST = frozenset({FailureKind.CONNECT_TIMEOUT, FailureKind.CONNECTION})
