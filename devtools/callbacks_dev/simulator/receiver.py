"""The demo receiver: a customer endpoint on loopback that checks every callback's
Standard Webhooks signature and, for a chosen share of callbacks, answers 500/503 so
retries (and, with a short retry schedule, dead letters) show.

Signatures are verified here with our own few lines of HMAC rather than the library's
``callbacks.signing``: a receiver is written by a customer, and an independent check
is what catches a signing bug.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web
from callbacks.logging import get_logger

log = get_logger(__name__)

EVENT_ID_HEADER = "X-Event-Id"
# Of the callbacks picked to fail, this share is refused on every attempt (they end in
# callbacks.dead once the schedule is exhausted); the rest only on their first attempt.
ALWAYS_FAIL_SHARE = 0.25


@dataclass(frozen=True)
class Arrival:
    """One request the receiver answered."""

    hook: str  # the profile's path name: sms, email, whatsapp, incoming, chatbot
    method: str
    event_id: str | None
    webhook_id: str
    attempt: int  # how many requests of this webhook-id arrived so far, this one included
    status: int  # what the receiver answered
    signature_ok: bool
    at: float  # time.monotonic()


def verify_signature(
    secrets: list[str], msg_id: str, timestamp: str, body: bytes, header: str
) -> bool:
    """True if any ``v1,`` signature in ``header`` matches any of ``secrets``."""
    offered = [part.split(",", 1)[1] for part in header.split() if part.startswith("v1,")]
    for secret in secrets:
        key = base64.b64decode(secret.removeprefix("whsec_"))
        signed = f"{msg_id}.{timestamp}.".encode() + body
        expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
        if any(hmac.compare_digest(expected, sig) for sig in offered):
            return True
    return False


@dataclass
class DemoReceiver:
    """Answers callbacks on ``/hooks/{hook}`` and tells ``on_arrival`` about each one."""

    on_arrival: Callable[[Arrival], None]
    failure_share: float = 0.0
    seed: int = 0
    secrets: dict[str, list[str]] = field(default_factory=dict)
    always_ok: set[str] = field(default_factory=set)  # event ids never refused (warm-up)
    _seen: dict[str, int] = field(default_factory=dict)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/hooks/{hook}", self._handle)
        app.router.add_route("*", "/hooks/{hook}/{rest:.*}", self._handle)
        return app

    def _refuse(self, webhook_id: str, attempt: int) -> bool:
        # Decided per callback, from the seed, so a run is repeatable and a callback
        # picked to fail on every attempt keeps failing on every replica's retry.
        draw = random.Random(f"{self.seed}:{webhook_id}").random()  # noqa: S311 - not crypto
        if draw >= self.failure_share:
            return False
        return draw < self.failure_share * ALWAYS_FAIL_SHARE or attempt == 1

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        hook = request.match_info["hook"]
        webhook_id = request.headers.get("webhook-id", "")
        event_id = request.headers.get(EVENT_ID_HEADER)
        attempt = self._seen.get(webhook_id, 0) + 1
        self._seen[webhook_id] = attempt
        signature_ok = verify_signature(
            self.secrets.get(hook, []),
            webhook_id,
            request.headers.get("webhook-timestamp", ""),
            body,
            request.headers.get("webhook-signature", ""),
        )
        if not signature_ok:
            status = 401
            log.warning("demo_bad_signature", hook=hook, webhook_id=webhook_id)
        elif event_id not in self.always_ok and self._refuse(webhook_id, attempt):
            status = 503 if attempt % 2 else 500
        else:
            status = 200
        self.on_arrival(
            Arrival(
                hook=hook,
                method=request.method,
                event_id=event_id,
                webhook_id=webhook_id,
                attempt=attempt,
                status=status,
                signature_ok=signature_ok,
                at=time.monotonic(),
            )
        )
        headers = {"Retry-After": "1"} if status == 503 else {}
        return web.Response(status=status, headers=headers, text="ok" if status == 200 else "no")


async def start_receiver(receiver: DemoReceiver, host: str, port: int) -> web.AppRunner:
    """Serve ``receiver`` on ``host:port``; the caller cleans the runner up."""
    runner = web.AppRunner(receiver.app(), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
