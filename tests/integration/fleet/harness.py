"""The fault tests' harness: a fleet of dispatcher processes and the events it delivers.

A test publishes one profile whose callbacks go to a ``sink.CountingSink``, starts
dispatchers as real processes (``python -m dispatcher``, each its own metrics port and
log file) in one consumer group, produces events with distinct message ids, breaks
something, and reads ``figures.Figures`` off the sink:

- **events**: events produced; **lost**: events the sink never got a 2xx-answered
  request for; **duplicates**: requests beyond the first per ``webhook-id`` (the id is
  derived from event and profile, so a replay carries the same one);
- **recover_s**: from the fault instant to the first event delivered for the first time
  after it (the fleet makes progress again);
- **caught_up_s**: from the fault instant until every event produced before it has been
  delivered;
- what the members' logs say about where duplicates come from (``figures.TELLING_LOGS``):
  commits that failed, records left unfinished at a revoke (their next owner delivers
  them again), attempts cancelled at a stop.

The *fault instant* is where the fault ends: the kill for SIGKILL, the resume for
SIGSTOP, the last member's exit for graceful churn, the restart for a schedule change.

Every wait is bounded (``tests.helpers.eventually``). ``broker`` reads the group and
the offsets from the broker's side.
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
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

import aiohttp
import orjson
from aiokafka import AIOKafkaProducer
from callbacks.kafka import make_producer
from callbacks.models.profiles import ProfileRecord, SigningSecret, seal_secrets
from callbacks.secretbox import SecretBox
from callbacks.settings import Settings
from callbacks.signing import generate_secret
from callbacks_dev.devstack.processes import ChildProcess, free_port
from callbacks_dev.simulator.events import Gateway
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import eventually
from tests.integration.fleet.broker import group_state, uncommitted
from tests.integration.fleet.figures import TELLING_LOGS, Figures, telling_logs, wait_for
from tests.integration.fleet.sink import CountingSink

PARTITIONS = 12
# A member on losing partitions waits up to half of it (CALLBACKS_REVOKE_GRACE's cap) for
# their callbacks; on a busy machine 3 s left some unfinished, and each was repeated.
SESSION_TIMEOUT_S = 10.0
# The production default: a leaving member finishes what it started even when the sink,
# which shares this process with the test, answers slowly on a busy machine.
SHUTDOWN_GRACE = "10s"
ACCOUNT = "acc-fleet"
BODY = '{"event_id": "{{event_id}}", "message_id": "{{message_id}}"}'

IN_FLIGHT = "callbacks_dispatcher_in_flight"
UNCOMMITTED = "callbacks_dispatcher_uncommitted"
COMMITS = "callbacks_offset_commits_total"
INTERNAL_ERRORS = "callbacks_dispatcher_internal_errors_total"  # stage="record": a record dropped


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
            told.update(telling_logs(member.log_path))
        extra = {**extra, **{name: told[name] for name in TELLING_LOGS if told[name]}}
        return Figures(
            events=len(self.produced),
            lost=len(self.undelivered()),
            duplicates=self.sink.duplicates,
            recover_s=recover_s,
            caught_up_s=caught_up_s,
            extra=extra,
        )
