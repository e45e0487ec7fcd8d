"""Callback batches (profile option ``batch``, contract §3b): many callbacks, one request.

A profile's callbacks of one attempt number gather in an open batch; it is sent when it
holds ``max_events`` or ``max_wait`` after its first member joined. The request carries
the JSON array of the members' rendered bodies (in joining order), the URL and headers
rendered for its first member, and is signed as one body under its own ``webhook-id``,
derived from its members' delivery ids, so the same members give the same id.

Each member's task waits for the batch's result and concludes it as its own attempt: its
own outcome, and on failure its own retry record. Members of a failed batch come back
from the retry topic at the same time and, joining with the same attempt number, form
the batch again (same members: same ``webhook-id``). A member's offset is finished only
once its records are handed off, as for any callback (``Deliverer.process``).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from callbacks.durations import parse_duration
from callbacks.failures import FailureKind
from callbacks.models.profiles import ProfileRecord
from callbacks.request import (
    DeliveryRequest,
    RequestBuildError,
    build_request,
    static_auth_header,
)
from callbacks.sender import AttemptResult, Sender
from callbacks.signing import signature_header

from dispatcher.endpoints.attempt import HostAttempt
from dispatcher.endpoints.guard import EndpointGuard
from dispatcher.metrics import DispatcherMetrics
from dispatcher.oauth import TokenCache, TokenError
from dispatcher.rendering import host_key

_SIGNED = frozenset({"webhook-id", "webhook-timestamp", "webhook-signature"})


def batch_id_for(delivery_ids: Sequence[str]) -> str:
    """The ``webhook-id`` of a batch: the same for the same members, in any order."""
    name = "batch/" + "\n".join(sorted(delivery_ids))
    return "msg_" + hashlib.sha256(name.encode()).hexdigest()[:32]


def batch_request(
    first: DeliveryRequest,
    bodies: Sequence[bytes],
    *,
    batch_id: str,
    timestamp: int,
    signing_secrets: Sequence[str],
) -> DeliveryRequest:
    """The batch's request: ``first``'s method, URL and headers, the JSON array of
    ``bodies`` as its body, signed as one body (pure)."""
    body = b"[" + b",".join(bodies) + b"]"
    headers = [(n, v) for n, v in first.headers if n.lower() not in _SIGNED]
    headers.append(("webhook-id", batch_id))
    headers.append(("webhook-timestamp", str(timestamp)))
    if signing_secrets:
        headers.append(
            ("webhook-signature", signature_header(signing_secrets, batch_id, timestamp, body))
        )
    return DeliveryRequest(first.method, first.url, tuple(headers), body)


@dataclass
class Member:
    delivery_id: str
    variables: Callable[[], dict[str, Any]]
    result: asyncio.Future[AttemptResult] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


# Sends one batch: the profile, its account and the members still waiting.
SendBatch = Callable[[ProfileRecord, str, list[Member]], Awaitable[None]]


@dataclass
class _Open:
    profile: ProfileRecord
    account_id: str
    members: list[Member] = field(default_factory=list)
    timer: asyncio.TimerHandle | None = None


class Batches:
    """The open batches of this process, one per (profile, attempt number)."""

    def __init__(self, send: SendBatch) -> None:
        self._send = send
        self._open: dict[tuple[str, int], _Open] = {}
        self._sending: set[asyncio.Task[None]] = set()

    async def submit(
        self,
        profile: ProfileRecord,
        account_id: str,
        attempt: int,
        delivery_id: str,
        variables: Callable[[], dict[str, Any]],
    ) -> AttemptResult:
        """Join ``profile``'s open batch; returns the result of the batch's request."""
        assert profile.batch is not None
        key = (profile.id, attempt)
        current = self._open.get(key)
        if current is None:
            current = self._open[key] = _Open(profile, account_id)
            wait_s = parse_duration(profile.batch.max_wait)
            current.timer = asyncio.get_running_loop().call_later(wait_s, self._flush, key)
        member = Member(delivery_id, variables)
        current.members.append(member)
        if len(current.members) >= profile.batch.max_events:
            self._flush(key)
        return await member.result

    def _flush(self, key: tuple[str, int]) -> None:
        current = self._open.pop(key, None)
        if current is None:
            return
        if current.timer is not None:
            current.timer.cancel()
        members = [m for m in current.members if not m.result.done()]  # not cancelled
        if not members:
            return
        task = asyncio.ensure_future(self._run(current.profile, current.account_id, members))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _run(self, profile: ProfileRecord, account_id: str, members: list[Member]) -> None:
        try:
            await self._send(profile, account_id, members)
        except BaseException as exc:
            for member in members:
                if not member.result.done():
                    member.result.set_exception(exc)
            if isinstance(exc, asyncio.CancelledError):
                raise
            # Each member's task meets the exception and ends as an internal failure.


class BatchSender:
    """Sends one batch (``SendBatch``): one request for its members through the host's
    slot; each member's future gets the result. A member that cannot be rendered gets a
    ``render_error`` result of its own and is left out of the request."""

    def __init__(
        self,
        guard: EndpointGuard,
        sender: Sender,
        tokens: TokenCache,
        metrics: DispatcherMetrics,
    ) -> None:
        self._guard = guard
        self._sender = sender
        self._tokens = tokens
        self._metrics = metrics

    async def __call__(
        self, profile: ProfileRecord, account_id: str, members: list[Member]
    ) -> None:
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
