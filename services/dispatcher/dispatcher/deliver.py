"""One callback, start to finish: validate, look up, skip or render, send, record, retry.

Every path ends in a record the broker acknowledged (outcome, retry record or dead
letter) or a counted skip; only then is the source record done and its offset
committable. Failures of the endpoint are values here (``AttemptResult``), never
exceptions: the retry decision is the pure ``callbacks.retry.decide``.

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

from dispatcher.batch import Batches, Member, batch_id_for, batch_request
from dispatcher.batching import Handoff, TopicBatcher
from dispatcher.endpoints.attempt import HostAttempt
from dispatcher.endpoints.guard import EndpointGuard
from dispatcher.endpoints.parking import RetryLanes, park
from dispatcher.jobs import Job
from dispatcher.metrics import DispatcherMetrics
from dispatcher.oauth import TokenCache, TokenError
from dispatcher.ordering import MessageKey, OrderState
from dispatcher.outcome_record import outcome_record
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


class Recorded(NamedTuple):
    """An attempt's records, and what the ordering rules need to know of it."""

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
        self._settings = settings
        self._topics = settings.topics
        self._schedule = settings.retry_delays_s
        self._profiles = profiles
        self._sender = sender
        self._guard = guard
        self._tokens = tokens
        self._producer = producer
        self._metrics = metrics
        metrics.endpoint_limits.follow(guard)
        guard.share_budget(
            settings.max_in_flight,
            host_share=settings.host_in_flight_share,
            account_share=settings.account_in_flight_share,
        )
        self._partition_counts: dict[str, int] = {}
        self._lanes = RetryLanes()  # where parked callbacks avoid waiting behind retries
        # Every attempt writes an outcome: batched per partition (``dispatcher.batching``).
        self.handoff = handoff or Handoff()
        self._max_record_bytes = settings.kafka_max_record_bytes
        self._outcomes = TopicBatcher(
            producer,
            settings.topics.outcomes,
            self.handoff,
            max_record_bytes=self._max_record_bytes,
        )
        # Retry and parked records too, one batcher per retry topic: beside a throttled
        # host, callbacks are parked at the rate they arrive (measured: 1,100-1,700/s),
        # and appending to a batch costs about a fifth of a ``producer.send``.
        self._retries: dict[str, TopicBatcher] = {}
        # Per-message ordering state and its topic (``dispatcher.ordering``).
        self._state = TopicBatcher(producer, settings.topics.ordering, self.handoff)
        self.ordering = OrderState(settings, self._state, metrics.ordering_waiting)
        self._batches = Batches(self._send_batch)

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
        acks = [await self._dead(job, reason, error)]
        try:
            event = parse_event(job.value)
        except InvalidEvent:
            return acks
        profile_id = job.profile_id or event.callback_profile_id
        delivery_id = job.delivery_id or delivery_id_for(event.event_id, profile_id)
        self._metrics.by_outcome["failed"].inc()
        if job.key is not None:
            ended = self.ordering.fifo_ended(
                job.source.partition, (profile_id, job.key), delivery_id
            )
            if ended is not None:
                acks.append(ended)
        try:
            acks.append(
                await self._ending(
                    job, event, profile_id, delivery_id, status="failed", error=error
                )
            )
        except Exception:  # the dead letter above still holds the record
            log.exception("internal_failure_outcome_lost", event_id=event.event_id)
        return acks

    async def _handle(self, job: Job) -> list[Awaitable[Any]]:
        try:
            event = parse_event(job.value)
        except InvalidEvent as exc:
            return [await self._dead(job, "invalid_event", exc.reason)]
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
        ack = await self._ending(
            job, event, profile_id, job.delivery_id, status="cancelled", error=error
        )
        acks = [ack]
        if job.key is not None:  # a fifo chain it headed or waited in goes on
            message = (profile_id, job.key)
            ended = self.ordering.fifo_ended(job.source.partition, message, job.delivery_id)
            if ended is not None:
                acks.append(ended)
        return acks

    async def _attempt(
        self,
        job: Job,
        event: Event,
        profile: ProfileRecord,
        variables: dict[str, Any] | None,
        delivery_id: str,
    ) -> list[Awaitable[Any]]:
        if profile.ordering == "none" or job.key is None:
            recorded = await self._attempt_now(job, event, profile, variables, delivery_id)
            if job.delivery_id is not None and job.key is not None:
                # Left in a chain when the profile's ordering was turned off: let go.
                message = (profile.id, job.key)
                ended = self.ordering.fifo_ended(job.source.partition, message, delivery_id)
                if ended is not None:
                    recorded.acks.append(ended)
            return recorded.acks
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
            recorded = await self._attempt_now(job, event, profile, variables, delivery_id)
            if recorded.status == "delivered":
                written = order.delivered_latest(partition, message, occurred_ms)
                if written is not None:
                    recorded.acks.append(written)
            return recorded.acks
        now_ms = int(time.time() * 1000)
        expires_ms = None
        if profile.max_age:
            expires_ms = occurred_ms + int(parse_duration(profile.max_age) * 1000)
        gate = order.check_fifo(
            partition, message, delivery_id, expires_ms=expires_ms, now_ms=now_ms
        )
        if gate.action == "wait":
            acks: list[Awaitable[Any]] = [] if gate.ack is None else [gate.ack]
            self._metrics.deferred.labels(reason="ordering").inc()
            log.debug(
                "callback_waits_in_line",
                event_id=event.event_id,
                profile_id=profile.id,
                delivery_id=delivery_id,
                wait_s=gate.wait_s,
            )
            acks.append(await self._park(job, profile.id, delivery_id, gate.wait_s))
            return acks
        recorded = await self._attempt_now(job, event, profile, variables, delivery_id)
        if recorded.status in (None, "retrying"):
            written = order.fifo_pending(partition, message, recorded.due_ms)
        else:
            written = order.fifo_ended(partition, message, delivery_id)
        if written is not None:
            recorded.acks.append(written)
        return recorded.acks

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
        ack = await self._ending(job, event, profile_id, delivery_id, status="stale", error=error)
        return [ack]

    async def _attempt_now(
        self,
        job: Job,
        event: Event,
        profile: ProfileRecord,
        variables: dict[str, Any] | None,
        delivery_id: str,
    ) -> Recorded:
        attempted_at = datetime.now(UTC)
        if profile.max_age and attempted_at > event.occurred_at + timedelta(
            seconds=parse_duration(profile.max_age)
        ):
            result = AttemptResult(None, (), b"", 0.0, "max_age exceeded", FailureKind.EXPIRED)
            return await self._record(
                job,
                event=event,
                profile=profile,
                delivery_id=delivery_id,
                attempted_at=attempted_at,
                result=result,
            )
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
        return await self._record(
            job,
            event=event,
            profile=profile,
            delivery_id=delivery_id,
            attempted_at=attempted_at,
            result=result,
        )

    async def _send_batch(
        self, profile: ProfileRecord, account_id: str, members: list[Member]
    ) -> None:
        """One request for ``members`` (``dispatcher.batch``); each member's future gets
        the result (a member that cannot be rendered gets its own, and is left out)."""
        rendered: list[tuple[Member, DeliveryRequest]] = []

        async def build() -> DeliveryRequest | AttemptResult:
            try:
                if profile.authentication.type == "oauth2_client_credentials":
                    auth: str | None = await self._tokens.header(profile)
                else:
                    auth = static_auth_header(profile)
            except TokenError as exc:
                return AttemptResult(exc.status, (), b"", 0.0, exc.reason, FailureKind.OAUTH_TOKEN)
            timestamp = int(time.time())
            for member in members:
                try:
                    request = build_request(
                        profile,
                        member.variables(),
                        delivery_id=member.delivery_id,
                        timestamp=0,  # only the member's body is used
                        auth_header=auth,
                    )
                except RequestBuildError as exc:
                    failed = AttemptResult(
                        None, (), b"", 0.0, f"render: {exc.reason}", FailureKind.RENDER_ERROR
                    )
                    if not member.result.done():
                        member.result.set_result(failed)
                    continue
                rendered.append((member, request))
            if not rendered:
                return AttemptResult(None, (), b"", 0.0, "render", FailureKind.RENDER_ERROR)
            return batch_request(
                rendered[0][1],
                [request.body or b"" for _, request in rendered],
                batch_id=batch_id_for([m.delivery_id for m, _ in rendered]),
                timestamp=timestamp,
                signing_secrets=profile.active_signing_secrets(
                    datetime.fromtimestamp(timestamp, UTC)
                ),
            )

        attempt = HostAttempt(
            self._guard,
            self._sender,
            host_key(profile.url),
            lambda: None,
            endpoint=profile.id,
            account=account_id,
        )
        result = await attempt.run(build)
        if attempt.sent:
            self._metrics.duration.observe(result.latency_ms / 1000.0)
        for member in members:
            if not member.result.done():
                member.result.set_result(result)

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
                return None  # ``build`` meets it again and records it

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

    async def _record(
        self,
        job: Job,
        *,
        event: Event,
        profile: ProfileRecord,
        delivery_id: str,
        attempted_at: datetime,
        result: AttemptResult,
    ) -> Recorded:
        """Outcome, and on failure the retry record or the dead letter."""
        # Bound fields of the one canonical log line of this attempt.
        bound = {
            "event_id": event.event_id,
            "profile_id": profile.id,
            "account_id": event.account_id,
            "attempt": job.attempt,
            "delivery_id": delivery_id,
        }
        acks: list[Awaitable[Any]] = []
        status: OutcomeStatus
        due_ms: int | None = None
        kind = result.error_kind
        if result.ok:
            status, final = "delivered", True
            # debug: the outcome record (and the delivery log built from it) is the
            # durable trace of a success; failures and retries stay at info and warning.
            log.debug(
                "callback_delivered",
                **bound,
                http_status=result.status,
                latency_ms=round(result.latency_ms, 3),
            )
        elif kind is not None and kind.held:
            held = await self._hold(job, profile.id, delivery_id, kind, result, bound)
            return Recorded(None, None, [held])
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
                status, final = "retrying", False
                due_ms = int(time.time() * 1000 + decision.delay_s * 1000)
                self._metrics.retries.inc()
                acks.append(
                    await self._retry(
                        job, profile.id, delivery_id, decision.delay_s, job.attempt + 1
                    )
                )
                log.info(
                    "retry_scheduled",
                    **bound,
                    http_status=result.status,
                    error=result.error,
                    delay_s=decision.delay_s,
                )
            else:
                status, final = "failed", True
                reason = str(decision.final_reason or "exhausted")
                acks.append(await self._dead(job, reason, result.error or ""))
                log.warning(
                    "callback_failed",
                    **bound,
                    http_status=result.status,
                    error=result.error,
                    reason=reason,
                )
        self._metrics.by_outcome[status].inc()
        acks.append(
            await self._outcome(
                job,
                event,
                profile.id,
                delivery_id,
                status=status,
                result=result,
                attempted_at=attempted_at,
                final=final,
            )
        )
        return Recorded(status, due_ms, acks)

    async def _hold(  # noqa: PLR0917 - the callback and why it waits
        self,
        job: Job,
        profile_id: str,
        delivery_id: str,
        kind: FailureKind,
        result: AttemptResult,
        bound: dict[str, Any],
    ) -> Awaitable[Any]:
        """Not an attempt: the endpoint was never called. Park the callback on a retry
        topic with its own due time, about when its host has room or its breaker's probe
        window opens (``endpoints.parking.park``): same attempt number, no outcome record."""
        self._metrics.deferred.labels(reason=kind).inc()
        log.debug("callback_deferred", **bound, reason=str(kind), wait_s=result.come_back_in_s)
        return await self._park(job, profile_id, delivery_id, result.come_back_in_s)

    async def _park(
        self, job: Job, profile_id: str, delivery_id: str, wait_s: float | None
    ) -> Awaitable[Any]:
        """Onto a retry topic, due in about ``wait_s``, same attempt number."""
        lanes, partition = self._lanes, job.source.partition
        delay, due_ms = park(
            self._schedule,
            wait_s,
            int(time.time() * 1000),
            lambda delay: lanes.latest(delay, partition),
        )
        return await self._retry(job, profile_id, delivery_id, delay, job.attempt, due_ms=due_ms)

    async def _outcome(
        self,
        job: Job,
        event: Event,
        profile_id: str,
        delivery_id: str,
        *,
        status: OutcomeStatus,
        result: AttemptResult,
        attempted_at: datetime,
        final: bool = True,
        latency: bool = True,
    ) -> Awaitable[Any]:
        """Hand the outcome record to its batcher; ``latency`` False: no request was
        made, so the record's ``latency_ms`` is null."""
        record = outcome_record(
            job,
            event,
            profile_id=profile_id,
            delivery_id=delivery_id,
            status=status,
            final=final,
            result=result,
            attempted_at=attempted_at,
            latency=latency,
        )
        partition = await self._partition(self._outcomes.topic, job.source.partition)
        return self._outcomes.send(partition, delivery_id.encode(), record)

    async def _ending(
        self,
        job: Job,
        event: Event,
        profile_id: str,
        delivery_id: str,
        *,
        status: OutcomeStatus,
        error: str,
    ) -> Awaitable[Any]:
        """The final outcome of a callback that ends without a request (``failed`` for
        an internal reason, ``cancelled``, ``stale``): no HTTP status, ``latency_ms``
        null, ``error`` saying why."""
        return await self._outcome(
            job,
            event,
            profile_id,
            delivery_id,
            status=status,
            result=AttemptResult(None, (), b"", 0.0, error),
            attempted_at=datetime.now(UTC),
            latency=False,
        )

    async def _retry(
        self,
        job: Job,
        profile_id: str,
        delivery_id: str,
        delay_s: float,
        attempt: int,
        *,
        due_ms: int | None = None,
    ) -> Awaitable[Any]:
        topic = self._topics.retry_for(delay_s)
        partition = await self._partition(topic, job.source.partition)
        now_ms = int(time.time() * 1000)
        batcher = self._retries.get(topic)
        if batcher is None:
            batcher = self._retries[topic] = TopicBatcher(
                self._producer, topic, self.handoff, max_record_bytes=self._max_record_bytes
            )
        acked = batcher.send(
            partition,
            job.key,
            job.value,
            headers=job.retry_headers(attempt, delivery_id, profile_id, due_ms),
            timestamp_ms=now_ms,
        )
        self._lanes.wrote(delay_s, job.source.partition, due_ms or now_ms + int(delay_s * 1000))
        return acked

    async def _partition(self, topic: str, source_partition: int) -> int:
        """Partition *i* of the source goes to partition *i* of retry and outcome topics.

        Co-partitioning makes that the partition the key would hash to anyway (same key,
        same count); choosing it directly skips hashing the key once per record.
        """
        count = self._partition_counts.get(topic)
        if count is None:
            count = len(await self._producer.partitions_for(topic))
            self._partition_counts[topic] = count
        return source_partition % count

    async def drain(self) -> None:
        """Wait until every record handed to a batcher is acknowledged (shutdown)."""
        for batcher in (*self._retries.values(), self._outcomes, self._state):
            await batcher.drain()

    async def dead_letter(self, job: Job, reason: str, error: str) -> None:
        """Dead-letter a record outside the delivery path (e.g. a bad redelivery request)."""
        await (await self._dead(job, reason, error))

    async def _dead(self, job: Job, reason: str, error: str) -> Awaitable[Any]:
        self._metrics.dead_letters.labels(reason=reason).inc()
        if reason in ("invalid_event", "internal_error", "too_large", "kafka_timeout"):
            log.warning(
                "dead_lettered",
                reason=reason,
                error=error,
                topic=job.source.topic,
                partition=job.source.partition,
                offset=job.source.offset,
            )
        headers = job.dead_headers(reason, error)
        try:
            return await self._producer.send(  # type: ignore[no-any-return]
                self._topics.dead, job.value, key=job.key, headers=headers
            )
        except MessageSizeTooLargeError:
            # The value itself is what the broker refuses: the headers keep where the
            # original sits, so it can still be found (and replayed) from there.
            return await self._producer.send(  # type: ignore[no-any-return]
                self._topics.dead, None, key=job.key, headers=headers
            )
