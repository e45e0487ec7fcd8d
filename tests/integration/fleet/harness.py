"""The fault tests' harness: a fleet of dispatcher processes, a counting sink, figures.

A test publishes one profile whose callbacks go to :class:`CountingSink` (an aiohttp
server in the test process that answers 200 after ~100 ms and counts deliveries per
``webhook-id``), starts dispatchers as real processes (``python -m dispatcher``, each its
own metrics port and log file) in one consumer group, produces events with distinct
message ids, breaks something, and reads :class:`Figures` off the sink:

- **events**: events produced; **lost**: events the sink never got a 2xx-answered
  request for; **duplicates**: requests beyond the first per ``webhook-id`` (the id is
  derived from event and profile, so a replay carries the same one);
- **recover_s**: from the fault instant to the first event delivered for the first time
  after it (the fleet makes progress again);
- **caught_up_s**: from the fault instant until every event produced before it has been
  delivered;
- what the members' logs say about where duplicates come from (:data:`TELLING_LOGS`):
  commits that failed, records left unfinished at a revoke (their next owner delivers
  them again), attempts cancelled at a stop.

The *fault instant* is where the fault ends: the kill for SIGKILL, the resume for
SIGSTOP, the last member's exit for graceful churn, the restart for a schedule change.

Every wait is bounded (``tests.helpers.eventually``). The sink keeps one counter and one
timestamp per event id of this test, never request bodies, so its memory is bounded by
the events produced.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import random
import signal
import sys
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

import aiohttp
import orjson
from aiohttp import web
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from aiokafka.structs import TopicPartition
from callbacks.kafka import make_consumer, make_producer, topic_partitions
from callbacks.models.profiles import ProfileRecord, SigningSecret, seal_secrets
from callbacks.secretbox import SecretBox
from callbacks.settings import Settings
from callbacks.signing import generate_secret
from callbacks_dev.devstack.processes import ChildProcess, free_port
from callbacks_dev.simulator.events import Gateway
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import eventually

PARTITIONS = 12
SINK_DELAY_S = 0.1
# A member on losing partitions waits up to half of it (CALLBACKS_REVOKE_GRACE's cap) for
# their callbacks; on a busy machine 3 s left some unfinished, and each was repeated.
SESSION_TIMEOUT_S = 10.0
# The production default: a leaving member finishes what it started even when the sink,
# which shares this process with the test, answers slowly on a busy machine.
SHUTDOWN_GRACE = "10s"
ACCOUNT = "acc-fleet"
BODY = '{"event_id": "{{event_id}}", "message_id": "{{message_id}}"}'
# The sink tracks at most this many distinct ids; a test produces a few thousand.
MAX_TRACKED_IDS = 100_000

IN_FLIGHT = "callbacks_dispatcher_in_flight"
UNCOMMITTED = "callbacks_dispatcher_uncommitted"
COMMITS = "callbacks_offset_commits_total"
INTERNAL_ERRORS = "callbacks_dispatcher_internal_errors_total"  # stage="record": a record dropped


# Log events of the members that explain duplicates, and the field that counts records
# (None: each line counts one).
TELLING_LOGS: dict[str, str | None] = {
    "offset_commit_failed": None,
    "revoke_left_unfinished": "records",
    "dispatcher_cancelled_in_flight": "count",
    "handoff_resend": None,
}


async def wait_for(probe: Callable[[], Awaitable[bool]], *, timeout_s: float, what: str) -> bool:
    """``eventually`` that answers whether the condition held instead of raising: for
    waits whose outcome is a figure the test reports before it asserts."""
    try:
        await eventually(probe, timeout_s=timeout_s, interval_s=0.2, what=what)
    except AssertionError:
        return False
    return True


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


@dataclass
class Member:
    """One dispatcher process of the fleet."""

    name: str
    process: ChildProcess
    metrics_port: int
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.alive()

    def returncode(self) -> int | None:
        return None if self.process.process is None else self.process.process.poll()

    def rss_mb(self) -> float:
        """Resident memory now (``VmRSS``), in MiB."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return math.nan

    def telling_logs(self) -> Counter[str]:
        """How often each of :data:`TELLING_LOGS` appears in this member's log (weighted
        by its count field where it has one)."""
        seen: Counter[str] = Counter()
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return seen
        for line in lines:
            if not line.startswith("{"):
                continue
            try:
                entry = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            event = entry.get("event") if isinstance(entry, dict) else None
            if event in TELLING_LOGS:
                weight = TELLING_LOGS[event]
                seen[event] += int(entry.get(weight, 1)) if weight else 1
        return seen

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


class Prepared(NamedTuple):
    """One event ready to produce."""

    key: bytes
    value: bytes
    event_id: str


@dataclass
class Figures:
    events: int
    lost: int
    duplicates: int
    recover_s: float | None
    caught_up_s: float | None
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def duplicate_share(self) -> float:
        return self.duplicates / self.events if self.events else 0.0

    def line(self, name: str, broker: str) -> str:
        def seconds(value: float | None) -> str:
            return "n/a" if value is None else f"{value:.1f}"

        extra = "".join(f" {k}={v}" for k, v in self.extra.items())
        return (
            f"fleet {name} [{broker}]: events={self.events} lost={self.lost} "
            f"duplicates={self.duplicates} ({self.duplicate_share:.1%}) "
            f"recover_s={seconds(self.recover_s)} caught_up_s={seconds(self.caught_up_s)}{extra}"
        )


def make_profile(url: str) -> ProfileRecord:
    now = datetime.now(UTC)
    return ProfileRecord.model_validate(
        {
            "id": str(uuid.uuid4()),
            "account_id": ACCOUNT,
            "title": "fleet sink",
            "channel": "sms",
            "events": ["sms.send"],
            "method": "POST",
            "url": url,
            "body_type": "json",
            "body": BODY,
            "created_at": now,
            "updated_at": now,
            "signing_secrets": [SigningSecret(secret=generate_secret(), created_at=now)],
        }
    )


class Fleet:
    """Dispatcher processes over one topic namespace, the events produced, the figures.

    ``settings`` name the broker, the topics (``PARTITIONS`` each) and the retry
    schedule the members start with; ``start(retry_schedule=...)`` overrides it.
    """

    def __init__(self, settings: Settings, sink: CountingSink, workdir: Path) -> None:
        self.settings = settings
        self.sink = sink
        self.workdir = workdir
        self.group = f"{settings.topic_prefix}callbacks-dispatcher"
        self.members: list[Member] = []
        self.produced: list[str] = []  # event ids, in produce order
        self.fault_at: float | None = None
        self.produced_before_fault = 0
        self._profile: ProfileRecord | None = None
        self._producer: AIOKafkaProducer | None = None
        self._http: aiohttp.ClientSession | None = None
        # Seeded by the namespace: reproducible, and no two tests share an event id.
        self._gateway = Gateway(
            random.Random(settings.topic_prefix), account_id=ACCOUNT, profiles={}
        )
        self._started = 0
        self._built = 0

    # -- set-up and tear-down ------------------------------------------------------

    async def publish_profile(self) -> ProfileRecord:
        """The one profile every event names, sealed onto the profiles topic."""
        profile = make_profile(self.sink.url)
        box = SecretBox(self.settings.master_key_bytes())
        producer = make_producer(self.settings)
        await producer.start()
        try:
            sealed = seal_secrets(profile, box.seal)
            await producer.send_and_wait(
                self.settings.topics.profiles,
                sealed.model_dump_json().encode(),
                key=profile.id.encode(),
            )
        finally:
            await producer.stop()
        self._profile = profile
        self._gateway.profiles["*"] = profile.id
        return profile

    async def aclose(self) -> None:
        """Kill every member still running (the test is over and its namespace goes
        with it, so nothing needs a graceful stop), then close the producer and the
        HTTP client."""
        for member in self.members:
            member.process.kill()
        if self._producer is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._producer.stop(), 30)
        if self._http is not None:
            await self._http.close()

    def http(self) -> aiohttp.ClientSession:
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=3))
        return self._http

    # -- members -------------------------------------------------------------------

    def start(
        self, count: int, *, retry_schedule: str | None = None, env: dict[str, str] | None = None
    ) -> list[Member]:
        """Start ``count`` dispatcher processes (not waiting for them); ``env`` adds or
        overrides ``CALLBACKS_*`` variables."""
        assert self.settings.master_key is not None
        started = []
        for _ in range(count):
            self._started += 1
            name = f"d{self._started}"
            port = free_port()
            environment = {
                **os.environ,
                **self.settings.kafka_environment(),
                "CALLBACKS_KAFKA_PARTITIONS": str(self.settings.kafka_partitions),
                "CALLBACKS_TOPIC_PREFIX": self.settings.topic_prefix,
                "CALLBACKS_MASTER_KEY": self.settings.master_key.get_secret_value(),
                "CALLBACKS_ALLOW_PRIVATE_TARGETS": "true",
                "CALLBACKS_RETRY_SCHEDULE": retry_schedule or self.settings.retry_schedule,
                # Long enough that a busy sink in this process never times out: the
                # duplicates counted are then the fleet's, not retries of slow answers.
                "CALLBACKS_DELIVERY_TIMEOUT": "10s",
                "CALLBACKS_CONSUMER_SESSION_TIMEOUT": f"{SESSION_TIMEOUT_S:g}s",
                "CALLBACKS_SHUTDOWN_GRACE": SHUTDOWN_GRACE,
                # Enough for the test's rate, few enough to finish within a revoke's wait.
                "CALLBACKS_MAX_IN_FLIGHT": "250",
                "CALLBACKS_DISPATCHER_METRICS_PORT": str(port),
                "CALLBACKS_API_HOST": "127.0.0.1",
                "CALLBACKS_LOG_FORMAT": "json",
                "CALLBACKS_LOG_LEVEL": "info",
                **(env or {}),
            }
            log_path = self.workdir / f"dispatcher-{name}.log"
            process = ChildProcess(
                f"dispatcher-{name}",
                [sys.executable, "-m", "dispatcher"],
                env=environment,
                log_path=log_path,
            )
            process.start()
            member = Member(name, process, port, log_path)
            self.members.append(member)
            started.append(member)
        return started

    @property
    def running(self) -> list[Member]:
        return [m for m in self.members if m.alive()]

    async def ready(self, members: list[Member], timeout_s: float = 60.0) -> None:
        """Every one of ``members`` answers ``/readyz`` with 200 (profiles loaded, broker
        reachable)."""

        async def probe() -> bool:
            for member in members:
                if not member.alive():
                    raise AssertionError(f"{member.name} exited:\n{member.log_tail()}")
                if not await self.is_ready(member):
                    return False
            return True

        await eventually(probe, timeout_s=timeout_s, interval_s=0.2, what="members ready")

    async def is_ready(self, member: Member) -> bool:
        try:
            url = f"http://127.0.0.1:{member.metrics_port}/readyz"
            async with self.http().get(url) as response:
                return response.status == 200
        except (aiohttp.ClientError, TimeoutError):
            return False

    async def stable(self, members: int, timeout_s: float = 60.0) -> None:
        """The consumer group is ``Stable`` with exactly ``members`` members."""

        async def probe() -> bool:
            state, count = await group_state(self.settings, self.group)
            return state == "Stable" and count == members

        await eventually(
            probe, timeout_s=timeout_s, interval_s=0.2, what=f"group stable with {members}"
        )

    async def terminate(self, members: list[Member], timeout_s: float = 30.0) -> None:
        """SIGTERM (a graceful stop), then wait for the processes to exit, without
        blocking the event loop that serves the sink."""
        for member in members:
            if member.alive():
                os.killpg(member.pid, signal.SIGTERM)

        async def exited() -> bool:
            return not any(m.alive() for m in members)

        await eventually(exited, timeout_s=timeout_s, interval_s=0.1, what="members exited")

    async def metrics(self, member: Member) -> dict[str, list[tuple[dict[str, str], float]]]:
        """Every sample of ``member``'s ``/metrics``, by sample name."""
        url = f"http://127.0.0.1:{member.metrics_port}/metrics"
        async with self.http().get(url) as response:
            text = await response.text()
        out: dict[str, list[tuple[dict[str, str], float]]] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                out.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
        return out

    async def metric(self, member: Member, name: str, **labels: str) -> float:
        """The sum of ``name``'s samples on ``member`` whose labels include ``labels``."""
        samples = (await self.metrics(member)).get(name, [])
        return sum(v for have, v in samples if labels.items() <= have.items())

    # -- events --------------------------------------------------------------------

    def events(self, count: int) -> list[Prepared]:
        """``count`` new events (distinct message and event ids), not produced yet."""
        out = []
        for _ in range(count):
            self._built += 1
            message_id = f"fleet-{self._built:07d}"
            built = self._gateway.event("sms.send", {"message_id": message_id})
            out.append(Prepared(message_id.encode(), orjson.dumps(built.value), built.event_id))
        return out

    async def producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            producer = make_producer(self.settings)
            await producer.start()
            self._producer = producer
        return self._producer

    async def send(self, events: list[Prepared]) -> None:
        """Produce ``events`` at once (a backlog) and wait for the broker's acks."""
        producer = await self.producer()
        topic = self.settings.topics.source_for("sms.send")
        futures = []
        for event in events:
            futures.append(await producer.send(topic, event.value, key=event.key))
            self.produced.append(event.event_id)
        await asyncio.wait_for(asyncio.gather(*futures), 60)

    async def produce(self, count: int) -> None:
        """Produce ``count`` new events at once."""
        await self.send(self.events(count))

    async def stream(self, rate: int, *, seconds: float, until: asyncio.Event | None = None) -> int:
        """Produce ``rate`` events/s for ``seconds`` (sooner if ``until`` is set, later
        never); the count produced."""
        producer = await self.producer()
        topic = self.settings.topics.source_for("sms.send")
        tick = 0.05
        per_tick = max(round(rate * tick), 1)
        futures = []
        started = time.monotonic()
        ticks = 0
        while time.monotonic() - started < seconds and not (until and until.is_set()):
            for event in self.events(per_tick):
                futures.append(await producer.send(topic, event.value, key=event.key))
                self.produced.append(event.event_id)
            ticks += 1
            # Pacing the offered load, not waiting for an effect.
            await asyncio.sleep(max(started + ticks * tick - time.monotonic(), 0))
        await asyncio.wait_for(asyncio.gather(*futures), 60)
        return len(futures)

    # -- faults and figures ----------------------------------------------------------

    def mark_fault(self) -> None:
        """The fault instant (see the module docstring)."""
        self.fault_at = time.monotonic()
        self.produced_before_fault = len(self.produced)

    def undelivered(self) -> list[str]:
        return [e for e in self.produced if e not in self.sink.first_at]

    async def all_delivered(self, timeout_s: float) -> bool:
        """Whether every event produced so far reached the sink within ``timeout_s``."""

        async def probe() -> bool:
            return not self.undelivered()

        return await wait_for(probe, timeout_s=timeout_s, what="every event delivered")

    async def committed_to_end(self, timeout_s: float) -> bool:
        """Whether the group's committed offsets reached the end of the source topic and
        of every retry topic of this namespace within ``timeout_s``."""

        async def probe() -> bool:
            behind = await uncommitted(self.settings, self.group)
            return behind == 0

        return await wait_for(probe, timeout_s=timeout_s, what="commits at the end")

    def figures(self, **extra: object) -> Figures:
        first = self.sink.first_at
        recover_s = caught_up_s = None
        if self.fault_at is not None:
            after = [t for t in first.values() if t > self.fault_at]
            if after:
                recover_s = min(after) - self.fault_at
            before = self.produced[: self.produced_before_fault]
            if all(e in first for e in before):
                last = max((first[e] for e in before), default=self.fault_at)
                caught_up_s = max(last - self.fault_at, 0.0)
        told: Counter[str] = Counter()
        for member in self.members:
            told.update(member.telling_logs())
        extra = {**extra, **{name: told[name] for name in TELLING_LOGS if told[name]}}
        return Figures(
            events=len(self.produced),
            lost=len(self.undelivered()),
            duplicates=self.sink.duplicates,
            recover_s=recover_s,
            caught_up_s=caught_up_s,
            extra=extra,
        )


# -- the broker's side --------------------------------------------------------------


async def group_state(settings: Settings, group: str) -> tuple[str, int]:
    """The consumer group's state and member count, as its coordinator says (``Unknown``
    while no coordinator answers, as on a fresh cluster before the offsets topic)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, request_timeout_ms=3000)
    await admin.start()
    try:
        responses = await admin.describe_consumer_groups([group])
    except KafkaError:
        return "Unknown", 0
    finally:
        await admin.close()
    for response in responses:
        for described in response.groups:
            _error, group_id, state, _ptype, _protocol, members, *_ = described
            if group_id == group:
                return str(state), len(members)
    return "Unknown", 0


async def retry_topics(settings: Settings) -> list[str]:
    """Every retry topic of this namespace on the broker, named in the schedule or not."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        names = await admin.list_topics()
    finally:
        await admin.close()
    prefix = settings.topics.name("callbacks.retry.")
    return sorted(n for n in names if n.startswith(prefix))


async def end_offsets(settings: Settings, topics: list[str]) -> dict[TopicPartition, int]:
    consumer = make_consumer(settings, group_id=None)
    await consumer.start()
    try:
        tps = [tp for topic in topics for tp in await topic_partitions(settings, topic)]
        ends: dict[TopicPartition, int] = await consumer.end_offsets(tps)
        return ends
    finally:
        await consumer.stop()


async def records_in(settings: Settings, topic: str) -> int:
    """Records ever written to ``topic`` (the sum of its end offsets)."""
    return sum((await end_offsets(settings, [topic])).values())


async def uncommitted(settings: Settings, group: str) -> int:
    """Records of the source and retry topics past the group's committed offsets."""
    topics = [settings.topics.source_for("sms.send"), *await retry_topics(settings)]
    ends = await end_offsets(settings, topics)
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, request_timeout_ms=3000)
    await admin.start()
    try:
        committed = await admin.list_consumer_group_offsets(group, partitions=list(ends))
    finally:
        await admin.close()
    behind = 0
    for tp, end in ends.items():
        at = committed.get(tp)
        offset = at.offset if at is not None and at.offset >= 0 else 0
        behind += max(end - offset, 0)
    return behind
