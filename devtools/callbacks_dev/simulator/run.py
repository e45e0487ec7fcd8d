"""One demo run: receiver up, account and profiles in place, warm-up, traffic, settle.

Traffic is a set of message lifecycles started at random by ``mix``; each step is due
its realistic offset after the lifecycle began, compressed by ``time_scale`` (and capped
at ``max_gap_s``) so a ten-minute read receipt shows within seconds. Steps are produced
in due order at ``rate`` events/s, so every status of one message leaves in order on its
key. Bounded in count (``max_events``) and time (``duration_s`` + ``settle_s``).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import random
import signal
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TextIO

import aiohttp
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from callbacks.kafka import make_consumer, make_producer, start_client
from callbacks.logging import get_logger
from callbacks.settings import Settings

from callbacks_dev.devstack.processes import free_port
from callbacks_dev.simulator.events import Gateway, GatewayEvent
from callbacks_dev.simulator.provision import ApiClient, Provisioned
from callbacks_dev.simulator.receiver import Arrival, DemoReceiver, start_receiver
from callbacks_dev.simulator.stats import DemoStats

log = get_logger(__name__)

DEFAULT_MIX = {"sms": 5.0, "email": 2.0, "whatsapp": 3.0, "chatbot": 1.0}
# One probe per demo profile: the first callback of each proves the dispatcher has the
# profile cached (a saved change governs deliveries within about a second).
WARMUP_EVENTS = {
    "sms.send": "sms",
    "email.send": "email",
    "whatsapp.status": "whatsapp",
    "whatsapp.incoming": "incoming",
    "chatbot.action": "chatbot",
}
TICK_S = 0.01


class DemoError(RuntimeError):
    """The demo cannot go on (no account, no callbacks arriving); says why."""


@dataclass(frozen=True)
class DemoOptions:
    api_url: str = "http://127.0.0.1:8080"
    admin_token: str | None = "dev-admin-token"  # noqa: S105 - make run's documented token
    api_key: str | None = None
    account_id: str | None = None
    rate: float = 50.0
    duration_s: float = 60.0
    max_events: int = 100_000
    mix: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_MIX))
    failure_share: float = 0.05
    seed: int | None = None
    receiver_host: str = "127.0.0.1"
    receiver_port: int = 0
    time_scale: float = 0.01
    max_gap_s: float = 3.0
    settle_s: float = 20.0
    warmup_s: float = 30.0


class _Output:
    """The live line: rewritten in place on a terminal, one line a second otherwise."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.tty = out.isatty()
        self.next_at = 0.0

    def say(self, text: str) -> None:
        if self.tty:
            self.out.write("\r\033[K")
        self.out.write(text + "\n")
        self.out.flush()

    def progress(self, stats: DemoStats, started: float, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now < self.next_at:
            return
        self.next_at = now + 1.0
        line = stats.progress_line(now - started)
        self.out.write(f"\r\033[K{line}" if self.tty else line + "\n")
        self.out.flush()


async def run_demo(options: DemoOptions, settings: Settings, out: TextIO) -> DemoStats:
    """Play the gateways against a running stack; returns what was seen."""
    return await DemoRun(options, settings, out).run()


async def run_demo_until_interrupted(
    options: DemoOptions, settings: Settings, out: TextIO
) -> DemoStats:
    """``run_demo`` with SIGINT/SIGTERM ending the traffic early instead of the process."""
    demo = DemoRun(options, settings, out)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, demo.request_stop)
    try:
        return await demo.run()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


class DemoRun:
    """The state of one run; ``run`` wires it up and tears it down."""

    def __init__(self, options: DemoOptions, settings: Settings, out: TextIO) -> None:
        self.options = options
        self.settings = settings
        self.rng = random.Random(options.seed)  # noqa: S311 - simulated traffic, not crypto
        self.stats = DemoStats()
        self.output = _Output(out)
        self.warm_hooks: set[str] = set()
        self.warm_changed = asyncio.Event()
        self.stops = 0  # Ctrl-C: the first ends the traffic, the second the settling
        self.receiver = DemoReceiver(
            self._on_arrival, failure_share=options.failure_share, seed=options.seed or 0
        )

    def request_stop(self) -> None:
        """Stop producing (first call) or stop waiting for late callbacks (second);
        the summary is printed either way."""
        self.stops += 1

    def _on_arrival(self, arrival: Arrival) -> None:
        if arrival.event_id in self.stats.warmup_ids and arrival.status == 200:
            self.warm_hooks.add(arrival.hook)
            self.warm_changed.set()
        self.stats.arrived(arrival)

    async def run(self) -> DemoStats:
        options, settings, stats = self.options, self.settings, self.stats
        port = options.receiver_port or free_port(options.receiver_host)
        receiver_url = f"http://{options.receiver_host}:{port}"
        async with AsyncExitStack() as stack:
            runner = await start_receiver(self.receiver, options.receiver_host, port)
            stack.push_async_callback(runner.cleanup)
            session = await stack.enter_async_context(
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
            )
            api = ApiClient(session, options.api_url)
            provisioned = await _provision(api, options, receiver_url)
            self.receiver.secrets.update(provisioned.secrets)
            self.output.say(
                f"demo receiver {receiver_url}/hooks/… · account {provisioned.account_id} · "
                f"profiles created {provisioned.created}, reused {provisioned.reused} · "
                f"broker {settings.kafka_bootstrap}"
            )
            producer = make_producer(settings)
            await start_client(producer)
            stack.push_async_callback(producer.stop)
            consumer = make_consumer(
                settings, settings.topics.outcomes, group_id=None, auto_offset_reset="latest"
            )
            await start_client(consumer)
            stack.push_async_callback(consumer.stop)
            await _seek_to_end(consumer)
            follower = asyncio.create_task(
                _follow_outcomes(consumer, provisioned.account_id, stats)
            )
            stack.push_async_callback(_cancel, follower)

            gateway = Gateway(
                self.rng, account_id=provisioned.account_id, profiles=provisioned.profile_ids
            )
            await self._warm_up(gateway, producer)
            self.output.say("profiles are live; producing traffic (Ctrl-C ends it early)")
            started = time.monotonic()
            await self._produce(gateway, producer, started)
            settle_until = time.monotonic() + options.settle_s
            while not stats.settled() and time.monotonic() < settle_until and self.stops < 2:
                self.output.progress(stats, started)
                await asyncio.sleep(0.1)
            self.output.progress(stats, started, force=True)
            self.output.say("\n" + stats.summary_table())
        return stats

    async def _send(self, producer: AIOKafkaProducer, event: GatewayEvent) -> asyncio.Future[Any]:
        key, value = event.encode()
        future: asyncio.Future[Any] = await producer.send(
            self.settings.topics.name(event.topic), value=value, key=key
        )
        return future

    async def _warm_up(self, gateway: Gateway, producer: AIOKafkaProducer) -> None:
        """Send one probe per profile until each arrives: the dispatcher has them all."""
        deadline = time.monotonic() + self.options.warmup_s
        while time.monotonic() < deadline:
            missing = [e for e, hook in WARMUP_EVENTS.items() if hook not in self.warm_hooks]
            if not missing:
                return
            for name in missing:
                probe = gateway.event(name).at(datetime.now(UTC))
                self.stats.warmup_ids.add(probe.event_id)
                self.receiver.always_ok.add(probe.event_id)
                await (await self._send(producer, probe))
            # A probe sent before the dispatcher cached its profile is skipped, not
            # retried: after a second without it, send another.
            retry_at = min(time.monotonic() + 1.0, deadline)
            while any(WARMUP_EVENTS[e] not in self.warm_hooks for e in missing):
                self.warm_changed.clear()
                remaining = retry_at - time.monotonic()
                if remaining <= 0:
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.warm_changed.wait(), remaining)
        raise DemoError(
            f"no callback reached the demo receiver within {self.options.warmup_s:.0f}s: "
            "is the stack running (make run) and is the dispatcher up?"
        )

    async def _produce(self, gateway: Gateway, producer: AIOKafkaProducer, started: float) -> None:
        options, stats = self.options, self.stats
        kinds = list(options.mix)
        weights = [options.mix[k] for k in kinds]
        pending: list[tuple[float, int, GatewayEvent]] = []
        order = itertools.count()
        deadline = started + options.duration_s
        tokens, last = 0.0, started
        produced = 0
        futures: list[asyncio.Future[Any]] = []

        async def send(event: GatewayEvent) -> None:
            nonlocal produced
            event = event.at(datetime.now(UTC))
            futures.append(await self._send(producer, event))
            skip = event.event == "chatbot.action" and event.data.get("intent") is None
            stats.produced(event.event_id, event.event, time.monotonic(), expect_skip=skip)
            produced += 1

        def due(offset_s: float) -> float:
            return min(offset_s * options.time_scale, options.max_gap_s)

        while True:
            now = time.monotonic()
            tokens = min(tokens + (now - last) * options.rate, max(options.rate, 1.0))
            last = now
            accepting = now < deadline and produced + len(pending) < options.max_events
            while tokens >= 1.0:
                if pending and pending[0][0] <= now:
                    await send(heapq.heappop(pending)[2])
                    tokens -= 1.0
                elif accepting:
                    kind = self.rng.choices(kinds, weights=weights, k=1)[0]
                    for step in gateway.lifecycle(kind, datetime.now(UTC)):
                        heapq.heappush(pending, (now + due(step.offset_s), next(order), step.event))
                    accepting = produced + len(pending) < options.max_events
                else:
                    break
            if now >= deadline or self.stops or (not accepting and not pending):
                # Time is up: what is still pending leaves now, in due order (so in
                # order per message), and the run settles.
                while pending:
                    await send(heapq.heappop(pending)[2])
                break
            if futures:
                await asyncio.gather(*futures)
                futures.clear()
            self.output.progress(stats, started)
            await asyncio.sleep(TICK_S)
        await asyncio.gather(*futures)


async def _provision(api: ApiClient, options: DemoOptions, receiver_url: str) -> Provisioned:
    if options.api_key:
        if not options.account_id:
            raise DemoError("--api-key needs --account-id (make run prints both)")
        api_key, account_id = options.api_key, options.account_id
    elif options.admin_token:
        account = await api.create_account(options.admin_token, "demo")
        api_key, account_id = account["api_key"], account["id"]
    else:
        raise DemoError("give --api-key and --account-id, or an admin token")
    return await api.provision(api_key=api_key, account_id=account_id, receiver_url=receiver_url)


async def _seek_to_end(consumer: AIOKafkaConsumer) -> None:
    """Pin the outcome consumer at the current end, so it sees only this run's records."""
    for _ in range(100):
        if consumer.assignment():
            break
        await asyncio.sleep(0.05)
    await consumer.seek_to_end()
    for partition in consumer.assignment():
        await consumer.position(partition)


async def _follow_outcomes(consumer: AIOKafkaConsumer, account_id: str, stats: DemoStats) -> None:
    while True:
        batches = await consumer.getmany(timeout_ms=200)
        for records in batches.values():
            for record in records:
                try:
                    outcome: dict[str, Any] = orjson.loads(record.value)
                except orjson.JSONDecodeError:
                    log.warning("demo_outcome_unreadable", offset=record.offset)
                    stats.unreadable_outcomes += 1
                    continue
                if outcome.get("account_id") == account_id:
                    stats.outcome(outcome["delivery_id"], outcome["event_id"], outcome["status"])


async def _cancel(task: asyncio.Task[None]) -> None:
    # ``wait`` does not raise the task's CancelledError, so a cancellation of the caller
    # itself still propagates.
    task.cancel()
    await asyncio.wait([task])
