"""One callback, start to finish: validate, look up, skip or attempt, and conclude.

Every path ends in a record the broker acknowledged (outcome, retry record or dead
letter, ``dispatcher.records``) or a counted skip; only then is the source record done
and its offset committable. Failures of the endpoint are values here
(``AttemptResult``), never exceptions: the retry decision is the pure
``callbacks.retry.decide``.

No callback ends silently: a fresh event whose profile is not in the cache yet is held
for it (``ProfileCache.wait_for``) before it is skipped; a pending callback (a retry,
a parked or redelivered one) whose profile was disabled or deleted meanwhile ends with
a ``cancelled`` outcome; one that fails for an internal reason (too large to produce, a
metadata timeout, a bug) gets a ``failed`` outcome beside its dead letter. A callback
held back (``FailureKind.held``: its host or account busy, a breaker open) is parked
without an attempt: same attempt number, no outcome, back when there is room.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple, Protocol

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaTimeoutError, MessageSizeTooLargeError
from callbacks.durations import parse_duration
from callbacks.failures import FailureKind
from callbacks.logging import get_logger
from callbacks.models.events import Event, InvalidEvent, parse_event
from callbacks.models.outcomes import OutcomeStatus
from callbacks.models.profiles import ProfileRecord
from callbacks.request import (
    DeliveryRequest,
    RequestBuildError,
    build_request,
    static_auth_header,
)
from callbacks.retry import decide
from callbacks.sender import AttemptResult, Sender
from callbacks.settings import Settings

from dispatcher.batch import Batches, BatchSender
from dispatcher.batching import Handoff
from dispatcher.endpoints.attempt import HostAttempt
from dispatcher.endpoints.guard import EndpointGuard
from dispatcher.jobs import Job
from dispatcher.metrics import DispatcherMetrics
from dispatcher.oauth import TokenCache, TokenError
from dispatcher.ordering import Gate, MessageKey, OrderState
from dispatcher.records import RecordWriter
from dispatcher.rendering import (
    LazyVariables,
    delivery_id_for,
    host_key,
    skip_reason,
    variables_for_profile,
)

log = get_logger("dispatcher.deliver")

# Why a pending callback was cancelled, by the reason its event would now be skipped.
_CANCELLED_BECAUSE = {
    "unknown_profile": "profile deleted",
    "disabled": "profile disabled",
    "other_account": "profile moved to another account",
    "not_subscribed": "profile no longer subscribes to the event",
    "required_variable_missing": "profile now requires a variable the event lacks",
    "filtered": "profile's filters now exclude the event",
}


class Concluded(NamedTuple):
    """What an attempt came to: its records' acks, and what the ordering rules need."""

    status: OutcomeStatus | None  # None: parked without an attempt
    due_ms: int | None  # when it is due again, if it went to a retry topic
    acks: list[Awaitable[Any]]


class Profiles(Protocol):
    """What the deliverer asks of the profile cache (``dispatcher.profiles``)."""

    def get(self, profile_id: str) -> ProfileRecord | None: ...

    def deleted(self, profile_id: str) -> bool: ...

    async def wait_for(self, profile_id: str) -> ProfileRecord | None: ...


def internal_reason(exc: BaseException) -> str:
    """The dead-letter reason (a bounded kind) of an unexpected failure."""
    if isinstance(exc, MessageSizeTooLargeError):
        return "too_large"
    if isinstance(exc, KafkaTimeoutError):
        return "kafka_timeout"  # e.g. no metadata for a topic in time
    return "internal_error"


class Deliverer:
    """Takes a ``Job`` to the records that end it; ``process`` returns their acks."""

    def __init__(
        self,
        *,
        settings: Settings,
        profiles: Profiles,
        sender: Sender,
        guard: EndpointGuard,
        tokens: TokenCache,
        producer: AIOKafkaProducer,
        metrics: DispatcherMetrics,
        handoff: Handoff | None = None,
    ) -> None:
        self._schedule = settings.retry_delays_s
        self._profiles = profiles
        self._sender = sender
        self._guard = guard
        self._tokens = tokens
        self._metrics = metrics
        metrics.endpoint_limits.follow(guard)
        guard.share_budget(
            settings.max_in_flight,
            host_share=settings.host_in_flight_share,
            account_share=settings.account_in_flight_share,
        )
        self._records = RecordWriter(producer, settings, metrics, handoff or Handoff())
        # Per-message ordering state and its topic (``dispatcher.ordering``).
        self.ordering = OrderState(settings, self._records.ordering_state, metrics.ordering_waiting)
        self._batches = Batches(BatchSender(guard, sender, tokens, metrics))

    async def process(self, job: Job) -> list[Awaitable[Any]]:
        """Do ``job`` up to handing its records to the producer; returns their acks.

        The consume loop attaches callbacks to the acks, so a task need not stay alive
        just to wait for the broker.
        """
        try:
            return await self._handle(job)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - set aside below, loudly
            return await self.internal_failure(job, exc)

    async def internal_failure(self, job: Job, exc: Exception) -> list[Awaitable[Any]]:
        """A bug or a broker refusal must not stall the partition forever: the record
        goes to the dead letter topic (replayable from there; without its value if the
        value is what the broker refused) and, when the event is readable, its callback
        gets a final ``failed`` outcome, so the delivery log shows how it ended."""
        reason = internal_reason(exc)
        self._metrics.internal_errors.labels(stage="deliver").inc()
        log.error(
            "dispatch_internal_error",
            reason=reason,
            topic=job.source.topic,
            offset=job.source.offset,
            exc_info=exc,
        )
        error = f"{reason}: {exc!r}"[:500]
        acks = [await self._records.dead(job, reason, error)]
        try:
            event = parse_event(job.value)
        except InvalidEvent:
            return acks
        profile_id = job.profile_id or event.callback_profile_id
        delivery_id = job.delivery_id or delivery_id_for(event.event_id, profile_id)
        self._metrics.by_outcome["failed"].inc()
        acks.extend(self._chain_ended(job, profile_id, delivery_id))
        try:
            acks.append(
                await self._records.ending(
                    job, event, profile_id, delivery_id, status="failed", error=error
                )
            )
        except Exception:  # the dead letter above still holds the record
            log.exception("internal_failure_outcome_lost", event_id=event.event_id)
        return acks

    async def drain(self) -> None:
        """Wait until every record handed to a batcher is acknowledged (shutdown)."""
        await self._records.drain()

    async def dead_letter(self, job: Job, reason: str, error: str) -> None:
        """Dead-letter a record outside the delivery path (e.g. a bad redelivery request)."""
        await (await self._records.dead(job, reason, error))

    async def _handle(self, job: Job) -> list[Awaitable[Any]]:
        try:
            event = parse_event(job.value)
        except InvalidEvent as exc:
            return [await self._records.dead(job, "invalid_event", exc.reason)]
        profile_id = job.profile_id or event.callback_profile_id
        pending = job.delivery_id is not None  # a retry, parked or redelivered callback
        profile = self._profiles.get(profile_id)
        if profile is None and not pending:
            # Perhaps created a moment ago: its record may not have reached us yet.
            profile = await self._profiles.wait_for(profile_id)
        variables = None
        if profile is not None and (profile.required_options.enabled or profile.filters):
            # Only the required-variables and filter rules need them before the slot;
            # otherwise they are built once the host has room (a parked one never does).
            variables = variables_for_profile(event, profile, attempt=job.attempt, is_test=False)
        reason = skip_reason(event, profile, variables)
        if reason is not None:
            if pending and reason in _CANCELLED_BECAUSE:
                return await self._cancel(job, event, profile_id, reason)
            if reason == "unknown_profile" and self._profiles.deleted(profile_id):
                reason = "deleted"
            self._metrics.skipped.labels(reason=reason).inc()
            log.debug(
                "event_skipped", event_id=event.event_id, profile_id=profile_id, reason=reason
            )
            return []
        assert profile is not None
        delivery_id = job.delivery_id or delivery_id_for(event.event_id, profile.id)
        return await self._attempt(job, event, profile, variables, delivery_id)

    def _chain_ended(self, job: Job, profile_id: str, delivery_id: str) -> list[Awaitable[Any]]:
        """A callback of a keyed record ended: a fifo chain it headed or waited in goes
        on (the state write's ack, if one was needed)."""
        if job.key is None:
            return []
        message = (profile_id, job.key)
        ended = self.ordering.fifo_ended(job.source.partition, message, delivery_id)
        return [] if ended is None else [ended]

    async def _cancel(
        self, job: Job, event: Event, profile_id: str, reason: str
    ) -> list[Awaitable[Any]]:
        """End a pending callback whose profile no longer takes it: a final
        ``cancelled`` outcome (contract §6) carrying the attempt it would have been."""
        assert job.delivery_id is not None
        error = _CANCELLED_BECAUSE[reason]
        self._metrics.by_outcome["cancelled"].inc()
        log.info(
            "callback_cancelled",
            event_id=event.event_id,
            profile_id=profile_id,
            account_id=event.account_id,
            attempt=job.attempt,
            delivery_id=job.delivery_id,
            reason=error,
        )
        ack = await self._records.ending(
            job, event, profile_id, job.delivery_id, status="cancelled", error=error
        )
        return [ack, *self._chain_ended(job, profile_id, job.delivery_id)]

    async def _attempt(
        self,
        job: Job,
        event: Event,
        profile: ProfileRecord,
        variables: dict[str, Any] | None,
        delivery_id: str,
    ) -> list[Awaitable[Any]]:
        if profile.ordering == "none" or job.key is None:
            concluded = await self._attempt_now(job, event, profile, variables, delivery_id)
            if job.delivery_id is not None:
                # Left in a chain when the profile's ordering was turned off: let go.
                concluded.acks.extend(self._chain_ended(job, profile.id, delivery_id))
            return concluded.acks
        message = (profile.id, job.key)
        await self.ordering.ready(job.source.partition)  # its state read back
        async with self.ordering.turn(message):
            return await self._attempt_in_order(
                job, event, profile, variables, delivery_id, message
            )

    async def _attempt_in_order(  # noqa: PLR0917 - the callback and its message
        self,
        job: Job,
        event: Event,
        profile: ProfileRecord,
        variables: dict[str, Any] | None,
        delivery_id: str,
        message: MessageKey,
    ) -> list[Awaitable[Any]]:
        """The attempt under ``profile.ordering``, in the message's turn."""
        order = self.ordering
        partition = job.source.partition
        occurred_ms = int(event.occurred_at.timestamp() * 1000)
        if profile.ordering == "latest":
            if order.check_latest(partition, message, occurred_ms).action == "stale":
                return await self._stale(job, event, profile.id, delivery_id)
        else:
            gate = order.fifo_gate(
                partition, message, delivery_id, occurred_ms=occurred_ms, max_age=profile.max_age
            )
            if gate.action == "wait":
                return await self._wait_in_line(job, event, profile.id, delivery_id, gate)
        concluded = await self._attempt_now(job, event, profile, variables, delivery_id)
        written = order.attempted(
            profile.ordering,
            partition,
            message,
            delivery_id,
            status=concluded.status,
            due_ms=concluded.due_ms,
            occurred_ms=occurred_ms,
        )
        if written is not None:
            concluded.acks.append(written)
        return concluded.acks

    async def _wait_in_line(
        self, job: Job, event: Event, profile_id: str, delivery_id: str, gate: Gate
    ) -> list[Awaitable[Any]]:
        """``ordering: fifo``: not its message's head, so parked until about when the
        head may have ended (no attempt, no outcome)."""
        acks: list[Awaitable[Any]] = [] if gate.ack is None else [gate.ack]
        self._metrics.deferred.labels(reason="ordering").inc()
        log.debug(
            "callback_waits_in_line",
            event_id=event.event_id,
            profile_id=profile_id,
            delivery_id=delivery_id,
            wait_s=gate.wait_s,
        )
        acks.append(await self._records.park(job, profile_id, delivery_id, gate.wait_s))
        return acks

    async def _stale(
        self, job: Job, event: Event, profile_id: str, delivery_id: str
    ) -> list[Awaitable[Any]]:
        """``ordering: latest``: a newer status of the message was delivered already, so
        this one is not sent; a final ``stale`` outcome (contract §6)."""
        self._metrics.by_outcome["stale"].inc()
        log.info(
            "callback_stale",
            event_id=event.event_id,
            profile_id=profile_id,
            account_id=event.account_id,
            attempt=job.attempt,
            delivery_id=delivery_id,
        )
        error = "superseded by a newer status"
        ack = await self._records.ending(
            job, event, profile_id, delivery_id, status="stale", error=error
        )
        return [ack]

    async def _attempt_now(
        self,
        job: Job,
        event: Event,
        profile: ProfileRecord,
        variables: dict[str, Any] | None,
        delivery_id: str,
    ) -> Concluded:
        attempted_at = datetime.now(UTC)
        if profile.max_age and attempted_at > event.occurred_at + timedelta(
            seconds=parse_duration(profile.max_age)
        ):
            result = AttemptResult(None, (), b"", 0.0, "max_age exceeded", FailureKind.EXPIRED)
            return await self._conclude(job, event, profile, delivery_id, attempted_at, result)
        lazy = variables if variables is not None else LazyVariables(event, profile, job.attempt)
        is_oauth = profile.authentication.type == "oauth2_client_credentials"
        if profile.batch is not None:
            values = lazy.get if isinstance(lazy, LazyVariables) else (lambda: lazy)
            result = await self._batches.submit(
                profile, event.account_id, job.attempt, delivery_id, values
            )
            if result.status == 401 and is_oauth:
                self._tokens.invalidate(profile)  # the batch's retry fetches a new one
        else:
            result = await self._send(profile, lazy, delivery_id, event.account_id)
            if result.status == 401 and is_oauth:
                # The token may have been revoked or rotated early: fetch a new one, once.
                self._tokens.invalidate(profile)
                result = await self._send(profile, lazy, delivery_id, event.account_id)
        return await self._conclude(job, event, profile, delivery_id, attempted_at, result)

    async def _send(
        self,
        profile: ProfileRecord,
        variables: dict[str, Any] | LazyVariables,
        delivery_id: str,
        account_id: str,
    ) -> AttemptResult:
        # The slot first, then the request: a callback parked because its host is busy
        # costs no render or signature, and one that waited is stamped when it leaves.
        # (Variables stand in the path and query only, so the profile's url names the host.)
        def values() -> dict[str, Any]:
            return variables.get() if isinstance(variables, LazyVariables) else variables

        def prepare() -> DeliveryRequest | None:  # in the loop turn the slot came free
            if profile.authentication.type == "oauth2_client_credentials":
                return None  # its token may need a request first
            try:
                return build_request(
                    profile,
                    values(),
                    delivery_id=delivery_id,
                    timestamp=int(time.time()),  # stamped as it leaves
                    auth_header=static_auth_header(profile),
                )
            except RequestBuildError:
                return None  # ``build`` meets it again and concludes with it

        async def build() -> DeliveryRequest | AttemptResult:
            try:
                return await self._build(profile, values(), delivery_id)
            except RequestBuildError as exc:
                error = f"render: {exc.reason}"
                return AttemptResult(None, (), b"", 0.0, error, FailureKind.RENDER_ERROR)
            except TokenError as exc:
                kind = FailureKind.OAUTH_TOKEN
                return AttemptResult(exc.status, (), b"", 0.0, exc.reason, kind)

        host = host_key(profile.url)
        attempt = HostAttempt(
            self._guard, self._sender, host, prepare, endpoint=profile.id, account=account_id
        )
        result = await attempt.run(build)
        if attempt.sent:  # parked and fast-failed attempts took no time at the host
            self._metrics.duration.observe(result.latency_ms / 1000.0)
        return result

    async def _build(
        self, profile: ProfileRecord, variables: dict[str, Any], delivery_id: str
    ) -> DeliveryRequest:
        if profile.authentication.type == "oauth2_client_credentials":
            auth_header: str | None = await self._tokens.header(profile)
        else:
            auth_header = static_auth_header(profile)
        return build_request(
            profile,
            variables,
            delivery_id=delivery_id,
            timestamp=int(time.time()),  # stamped as it leaves
            auth_header=auth_header,
        )

    async def _conclude(  # noqa: PLR0917 - the attempt and its result
        self,
        job: Job,
        event: Event,
        profile: ProfileRecord,
        delivery_id: str,
        attempted_at: datetime,
        result: AttemptResult,
    ) -> Concluded:
        """Hand on what the attempt came to: delivered, deferred (held back without a
        request), retrying, or failed for good."""
        # Bound fields of the one canonical log line of this attempt.
        bound = {
            "event_id": event.event_id,
            "profile_id": profile.id,
            "account_id": event.account_id,
            "attempt": job.attempt,
            "delivery_id": delivery_id,
        }
        kind = result.error_kind
        acks: list[Awaitable[Any]]
        status: OutcomeStatus
        due_ms: int | None = None
        if result.ok:
            status, acks = "delivered", []
            self._delivered(result, bound)
        elif kind is not None and kind.held:
            return await self._deferred(job, profile.id, delivery_id, kind, result, bound)
        else:
            decision = decide(
                status=result.status,
                kind=kind,
                attempt=job.attempt,
                schedule=self._schedule,
                retry_on=profile.retry_on,
                retry_after_s=result.retry_after_s,
            )
            if decision.delay_s is not None:
                status = "retrying"
                due_ms = int(time.time() * 1000 + decision.delay_s * 1000)
                acks = [
                    await self._retrying(
                        job, profile.id, delivery_id, decision.delay_s, result=result, bound=bound
                    )
                ]
            else:
                status = "failed"
                reason = str(decision.final_reason or "exhausted")
                acks = [await self._failed(job, reason, result, bound)]
        self._metrics.by_outcome[status].inc()
        acks.append(
            await self._records.outcome(
                job,
                event,
                profile.id,
                delivery_id,
                status=status,
                result=result,
                attempted_at=attempted_at,
                final=status != "retrying",
            )
        )
        return Concluded(status, due_ms, acks)

    @staticmethod
    def _delivered(result: AttemptResult, bound: dict[str, Any]) -> None:
        # debug: the outcome record (and the delivery log built from it) is the durable
        # trace of a success; failures and retries stay at info and warning.
        log.debug(
            "callback_delivered",
            **bound,
            http_status=result.status,
            latency_ms=round(result.latency_ms, 3),
        )

    async def _retrying(
        self,
        job: Job,
        profile_id: str,
        delivery_id: str,
        delay_s: float,
        *,
        result: AttemptResult,
        bound: dict[str, Any],
    ) -> Awaitable[Any]:
        """The next attempt onto the retry topic of ``delay_s``."""
        self._metrics.retries.inc()
        ack = await self._records.retry(job, profile_id, delivery_id, delay_s, job.attempt + 1)
        log.info(
            "retry_scheduled",
            **bound,
            http_status=result.status,
            error=result.error,
            delay_s=delay_s,
        )
        return ack

    async def _failed(
        self, job: Job, reason: str, result: AttemptResult, bound: dict[str, Any]
    ) -> Awaitable[Any]:
        """No attempt follows: the dead letter, with why."""
        ack = await self._records.dead(job, reason, result.error or "")
        log.warning(
            "callback_failed",
            **bound,
            http_status=result.status,
            error=result.error,
            reason=reason,
        )
        return ack

    async def _deferred(  # noqa: PLR0917 - the callback and why it waits
        self,
        job: Job,
        profile_id: str,
        delivery_id: str,
        kind: FailureKind,
        result: AttemptResult,
        bound: dict[str, Any],
    ) -> Concluded:
        """Not an attempt: the endpoint was never called. Park the callback on a retry
        topic with its own due time, about when its host has room or its breaker's probe
        window opens (``endpoints.parking.park``): same attempt number, no outcome."""
        self._metrics.deferred.labels(reason=kind).inc()
        wait_s = result.come_back_in_s
        log.debug("callback_deferred", **bound, reason=str(kind), wait_s=wait_s)
        parked = await self._records.park(job, profile_id, delivery_id, wait_s)
        return Concluded(None, None, [parked])
