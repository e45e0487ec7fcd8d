"""The in-memory profile cache, fed by the compacted ``callbacks.profiles`` topic.

Why no database: the dispatcher must keep delivering while PostgreSQL is down, and a
topic replay is all the state it needs. The topic is read from the beginning with a
group-less consumer over every partition (each replica needs every profile); the last
record of a key wins and a tombstone deletes, because the local broker keeps every
record (no compaction). Ready once the end offsets seen at start are reached; after
that it keeps following, so a saved change governs deliveries within about a second.
Secrets (credential-like header values among them) are opened once, on load, each
under the context it was sealed for (``callbacks.models.profiles.open_secrets``).

An event may arrive before its brand-new profile has (the API promises a change governs
deliveries within a second): ``wait_for`` holds such an event until the profile is
applied, bounded in time and in how many are held at once. Deleted profiles are
remembered (bounded) so their pending retries end as ``cancelled`` without waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections import OrderedDict
from collections.abc import Callable

import pydantic
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import ConsumerRecord, TopicPartition
from callbacks.kafka import make_consumer, start_client, topic_partitions
from callbacks.logging import get_logger
from callbacks.models.profiles import ProfileRecord, open_secrets
from callbacks.settings import Settings

from dispatcher.metrics import DispatcherMetrics

log = get_logger(__name__)

Opener = Callable[[str, str], str]  # SecretBox.open(token, context)

# Deleted profile ids remembered, oldest forgotten first (a few MB at most).
DELETED_REMEMBERED = 100_000


class ProfileCache:
    """Every profile of the topic by id, loaded at start and followed after."""

    def __init__(self, settings: Settings, opener: Opener, metrics: DispatcherMetrics) -> None:
        self._settings = settings
        self._topic = settings.topics.profiles
        self._open = opener
        self._metrics = metrics
        self._profiles: dict[str, ProfileRecord] = {}
        self.ready = asyncio.Event()
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._deleted: OrderedDict[str, None] = OrderedDict()
        # Events held for a profile not seen yet: woken when it is applied.
        self._awaited: dict[str, tuple[asyncio.Event, int]] = {}  # and how many wait
        self._holding = 0
        self._hold_s = settings.unknown_profile_hold
        self._hold_max = settings.unknown_profile_hold_max

    def get(self, profile_id: str) -> ProfileRecord | None:
        return self._profiles.get(profile_id)

    def deleted(self, profile_id: str) -> bool:
        """A tombstone for this id was read (and the profile not created again)."""
        return profile_id in self._deleted

    async def wait_for(self, profile_id: str) -> ProfileRecord | None:
        """The profile, waiting up to ``CALLBACKS_UNKNOWN_PROFILE_HOLD`` for one not
        seen yet; None at once for a deleted one, or when too many events are held."""
        profile = self._profiles.get(profile_id)
        if profile is not None or profile_id in self._deleted or self._hold_s <= 0:
            return profile
        if self._holding >= self._hold_max:
            self._metrics.profile_holds.labels(result="full").inc()
            return None
        applied, held = self._awaited.get(profile_id, (asyncio.Event(), 0))
        self._awaited[profile_id] = (applied, held + 1)
        self._holding += 1
        try:
            async with asyncio.timeout(self._hold_s):
                await applied.wait()
        except TimeoutError:
            self._metrics.profile_holds.labels(result="timed_out").inc()
            return None
        finally:
            self._holding -= 1
            entry = self._awaited.get(profile_id)
            if entry is not None and entry[0] is applied:
                if entry[1] > 1:
                    self._awaited[profile_id] = (applied, entry[1] - 1)
                else:
                    del self._awaited[profile_id]
        self._metrics.profile_holds.labels(result="found").inc()
        return self._profiles.get(profile_id)

    @property
    def healthy(self) -> bool:
        """Loaded and still following (a dead follower would serve stale profiles)."""
        return self.ready.is_set() and self._task is not None and not self._task.done()

    def __len__(self) -> int:
        return len(self._profiles)

    async def start(self) -> None:
        consumer = make_consumer(self._settings, group_id=None, max_poll_records=2000)
        await start_client(consumer)
        self._consumer = consumer
        tps = await topic_partitions(self._settings, self._topic)
        if not tps:
            raise RuntimeError(f"topic {self._topic} does not exist")
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends: dict[TopicPartition, int] = await consumer.end_offsets(tps)
        self._task = asyncio.create_task(self._guarded(consumer, ends), name="profile-cache")

    async def wait_ready(self) -> None:
        """Wait for the initial replay; re-raises if the follower died on the way."""
        assert self._task is not None
        ready = asyncio.create_task(self.ready.wait())
        done, _ = await asyncio.wait({ready, self._task}, return_when=asyncio.FIRST_COMPLETED)
        if self._task in done:
            ready.cancel()
            self._task.result()
            raise RuntimeError("profile cache stopped before it was ready")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None

    async def _guarded(self, consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> None:
        try:
            await self._follow(consumer, ends)
        except asyncio.CancelledError:
            raise
        except Exception:
            # /readyz turns false (``healthy``); the error is logged and counted here.
            self._metrics.profile_errors.labels(reason="follower_stopped").inc()
            log.exception("profile_cache_stopped")
            raise

    async def _follow(self, consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> None:
        """Apply records for ever; ready once every partition reached its end as of the
        start *and* a poll came back empty. The second condition is for brokers whose
        "latest offset" lags the last batch (the local Tansu broker answers the last
        batch's base offset + 1), so reaching it alone would leave that batch unread."""
        waiting = {tp: end for tp, end in ends.items() if end > 0}
        while True:
            batch = await consumer.getmany(timeout_ms=200)
            for records in batch.values():
                for record in records:
                    self._apply(record)
            if not self.ready.is_set():
                for tp in list(waiting):
                    if await consumer.position(tp) >= waiting[tp]:
                        del waiting[tp]
                if not waiting and not batch:
                    self._mark_ready()
            self._metrics.profiles_cached.set(len(self._profiles))

    def _mark_ready(self) -> None:
        self.ready.set()
        self._metrics.profiles_cached.set(len(self._profiles))
        log.info("profile_cache_ready", profiles=len(self._profiles))

    def _apply(self, record: ConsumerRecord[bytes, bytes]) -> None:
        if record.key is None:
            self._metrics.profile_errors.labels(reason="no_key").inc()
            log.warning("profile_record_without_key", offset=record.offset)
            return
        profile_id = record.key.decode()
        if record.value is None:
            self._profiles.pop(profile_id, None)
            self._deleted[profile_id] = None
            self._deleted.move_to_end(profile_id)
            if len(self._deleted) > DELETED_REMEMBERED:
                self._deleted.popitem(last=False)
            self._wake(profile_id)
            return
        try:
            sealed = ProfileRecord.model_validate_json(record.value)
            profile = open_secrets(sealed, self._open)
        except (pydantic.ValidationError, ValueError) as exc:
            # A record we cannot read must not stop the cache; the profile is dropped
            # (not delivered with stale settings) and the error is visible.
            self._profiles.pop(profile_id, None)
            reason = "invalid" if isinstance(exc, pydantic.ValidationError) else "unsealable"
            self._metrics.profile_errors.labels(reason=reason).inc()
            log.warning("profile_record_unreadable", profile_id=profile_id, reason=reason)
            return
        self._profiles[profile_id] = profile
        self._deleted.pop(profile_id, None)
        self._wake(profile_id)

    def _wake(self, profile_id: str) -> None:
        entry = self._awaited.pop(profile_id, None)
        if entry is not None:
            entry[0].set()


def freeze_heap() -> None:
    """Take what start-up loaded (the profile cache above all) out of the collector's view.

    A full collection walks every cached profile and pauses the event loop for it (the
    p99 of event → callback latency, docs/performance.md). Objects alive now live for
    the process anyway; ``gc.freeze`` moves them to the permanent generation, so later
    full collections only walk what was allocated since. Collect first so no garbage is
    frozen with them.
    """
    gc.collect()
    gc.freeze()
