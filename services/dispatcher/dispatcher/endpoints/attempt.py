"""One attempt's hold on its endpoint host's slot, from queueing to the answer.

A throttled host's every slot cycle is its own latency plus the dispatcher's turnaround,
so the slot moves on in the same loop turn as the answer that freed it: the HTTP client
calls ``on_answer`` as soon as it parsed an answer, which releases the slot and feeds
the result to the guard (a ``429`` cuts the limit before the slot is handed on,
``endpoints.guard``), and the waiter granted that slot sends its request right there
(``start``) instead of when its task wakes a turn later. Attempts that cannot send from
there (OAuth2 profiles, whose token may need a request; a render error) take the usual
path when their task wakes.

Each result goes to the breaker of its scope (``callbacks.failures``): an answer or a
failure after the request was written to the endpoint's (the profile's), a failure to
connect to the host's.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from callbacks.failures import Scope
from callbacks.request import DeliveryRequest
from callbacks.sender import AttemptResult, Call, Sender

from dispatcher.endpoints.guard import EndpointGuard, Rejected


class HostAttempt:
    """One attempt: ``run`` it once; ``sent`` says afterwards whether a request was made."""

    __slots__ = (
        "_account",
        "_answered",
        "_call",
        "_endpoint",
        "_guard",
        "_host",
        "_prepare",
        "_probe",
        "_sender",
        "_t0",
    )

    def __init__(
        self,
        guard: EndpointGuard,
        sender: Sender,
        host: str,
        prepare: Callable[[], DeliveryRequest | None],
        *,
        endpoint: str = "",
        account: str = "",
    ) -> None:
        """``prepare`` renders the request synchronously for ``start``, or gives None
        when it cannot (the attempt then builds it when its task wakes). ``endpoint``
        is the profile (its breaker and fair share of the host), ``account`` its owner
        (its share of the in-flight budget)."""
        self._guard, self._sender, self._host, self._prepare = guard, sender, host, prepare
        self._endpoint, self._account = endpoint, account
        self._answered = False
        self._probe = False
        self._t0 = 0.0
        self._call: Call | None = None

    @property
    def sent(self) -> bool:
        """A request was made (not refused a slot, not failed to build)."""
        return self._call is not None

    def _on_answer(self, status: int) -> None:
        if self._answered:
            return  # abandoned (cancelled after an early start): the slot is free
        self._answered = True
        self._release()
        latency_s = time.perf_counter() - self._t0
        # A 429 is a live host asking us to slow down: the adaptive limit and
        # Retry-After handle it; opening the breaker would stop it for a while.
        self._guard.observe(
            self._host,
            status < 500,
            status=status,
            latency_s=latency_s,
            endpoint=self._endpoint,
            scope=Scope.ENDPOINT,
        )

    def _release(self) -> None:
        self._guard.release(self._host, self._probe, endpoint=self._endpoint, account=self._account)

    def _begin(self, request: DeliveryRequest) -> None:
        self._t0 = time.perf_counter()
        self._call = self._sender.begin(request, on_answer=self._on_answer)

    def _start(self) -> None:
        # Runs inside the guard's grant (often inside the HTTP client's read of another
        # answer), so it must not raise: anything unexpected is met again, and handled,
        # on the usual path when the task wakes.
        try:
            request = self._prepare()
            if request is not None:
                self._begin(request)
        except Exception:  # noqa: BLE001 - see above
            self._call = None

    async def run(
        self, build: Callable[[], Awaitable[DeliveryRequest | AttemptResult]]
    ) -> AttemptResult:
        """Take a slot, send (``build`` the request unless it went out already), and
        give the slot back with the result; a refused slot is a result too."""
        guard = self._guard
        try:
            self._probe = await guard.acquire(
                self._host, self._start, endpoint=self._endpoint, account=self._account
            )
        except Rejected as exc:
            return AttemptResult(
                None, (), b"", 0.0, exc.reason, exc.reason, come_back_in_s=exc.come_back_in_s
            )
        except asyncio.CancelledError:
            self._answered = True  # the guard freed the slot; an early answer is moot
            raise
        try:
            if self._call is None:
                built = await build()
                if isinstance(built, AttemptResult):
                    return built  # could not be built: nothing was sent
                self._begin(built)
            assert self._call is not None
            result = await self._call.result()
        finally:
            unanswered = not self._answered
            if unanswered:
                self._answered = True
                self._release()
        kind = result.error_kind
        if unanswered and kind is not None:  # no HTTP answer
            guard.observe(
                self._host,
                False,
                timed_out=kind.timed_out,
                latency_s=result.latency_ms / 1000,
                endpoint=self._endpoint,
                scope=kind.scope,
            )
        return result
