"""The fault tests' customer endpoint: an HTTP server in the test process that counts.

It answers 200 after ``SINK_DELAY_S`` and counts deliveries per ``webhook-id`` (the id is
derived from event and profile, so a replay carries the same one) and the first delivery
of each event id. It keeps one counter and one timestamp per event id, never request
bodies, and stops tracking at ``MAX_TRACKED_IDS``: its memory is bounded by the events a
test produces.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import orjson
from aiohttp import web
from callbacks_dev.devstack.processes import free_port

SINK_DELAY_S = 0.1
MAX_TRACKED_IDS = 100_000


class CountingSink:
    """A customer endpoint on 127.0.0.1 that counts what reaches it.

    A request counts as a delivery when it arrives and is not refused: the receiver has
    it, even if the sender dies before it reads the answer. ``refuse(ids, n)`` answers
    503 to the first ``n`` requests of those event ids (they count as refused, not
    delivered).
    """

    def __init__(self, delay_s: float = SINK_DELAY_S) -> None:
        self.delay_s = delay_s
        self.per_webhook_id: Counter[str] = Counter()
        self.first_at: dict[str, float] = {}  # event id -> first delivery (monotonic)
        self.refused = 0
        self.untracked = 0  # requests past MAX_TRACKED_IDS or without an event id
        self._refusals: dict[str, int] = {}
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    @property
    def deliveries(self) -> int:
        return sum(self.per_webhook_id.values())

    @property
    def duplicates(self) -> int:
        return self.deliveries - len(self.per_webhook_id)

    def refuse(self, event_ids: list[str], attempts: int) -> None:
        for event_id in event_ids:
            self._refusals[event_id] = attempts

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self._hook)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        self.port = free_port()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _hook(self, request: web.Request) -> web.Response:
        body = await request.read()
        at = time.monotonic()
        try:
            event_id = str(orjson.loads(body)["event_id"])
        except (orjson.JSONDecodeError, KeyError, TypeError):
            event_id = ""
        webhook_id = request.headers.get("webhook-id", "")
        status = 200
        if not event_id or not webhook_id or len(self.first_at) >= MAX_TRACKED_IDS:
            self.untracked += 1
        elif self._refusals.get(event_id, 0) > 0:
            self._refusals[event_id] -= 1
            self.refused += 1
            status = 503
        else:
            self.per_webhook_id[webhook_id] += 1
            self.first_at.setdefault(event_id, at)
        await asyncio.sleep(self.delay_s)  # the endpoint's answer time
        return web.Response(status=status, text="ok" if status == 200 else "busy")
