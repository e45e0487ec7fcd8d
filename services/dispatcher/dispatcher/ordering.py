"""Per-message ordering (profile option ``ordering``, contract §3b): its state and its rules.

One *message* is a (profile, record key) pair: every status of one message id has the
same key, so under co-partitioning every record of it (source, retry, parked) passes
through the member that owns its partition number. That member keeps, per partition:

- ``latest``: the ``occurred_at`` of the newest status delivered; an older one ends
  ``stale`` without a request;
- ``fifo``: the *chain* of the message's callbacks not yet ended, in event order; only
  its head is attempted, a later one is parked (no attempt, no outcome) until the head
  ends (delivered, failed, expired, stale, cancelled) or leaves by ``max_age``.

Within the process a message's attempts take turns (``turn``), so two statuses of one
message are never on the wire at once. The state a next owner needs is written to the
compacted ``callbacks.ordering`` topic (key = profile and message, partition = the
source partition) before the source offset commits: the write's ack joins the
callback's acks. A new owner reads its partitions of that topic back (``assigned``)
beside the consumer; an ordered callback of such a partition waits for it (``ready``).
Bounds: ``ordering_state_max_keys`` messages per partition (least recently changed
dropped first), entries unchanged for ``ordering_state_horizon`` dropped, a chain holds
at most ``MAX_CHAIN`` callbacks (one beyond is not held back).
docs/ordering.md says more.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiokafka.errors import KafkaError
from callbacks.durations import parse_duration
from callbacks.kafka import make_consumer, start_client, topic_partitions
from callbacks.logging import get_logger
from callbacks.models.outcomes import OutcomeStatus
from callbacks.settings import Settings
from prometheus_client import Gauge

from dispatcher.batching import TopicBatcher

log = get_logger("dispatcher.ordering")

MAX_CHAIN = 1000  # callbacks of one message held in order; more are not held back
LOAD_ATTEMPTS = 5  # reading a partition's state back, before giving up on it (logged)

# (profile id, record key)
MessageKey = tuple[str, bytes]


@dataclass
class Link:
    """One callback of a fifo chain: its delivery id and when it may be given up."""

    delivery_id: str
    expires_ms: int | None = None  # occurred_at + max_age; None without max_age


@dataclass
class Entry:
    """What a partition keeps for one message."""

    latest_ms: int | None = None  # occurred_at of the newest status delivered (latest)
    chain: list[Link] = field(default_factory=list)  # fifo: not yet ended, in event order
    head_due_ms: int | None = None  # when the retrying head is due again (not persisted)
    changed_ms: int = 0
    persisted: bool = False  # a record of it is on the state topic

    def encode(self) -> bytes | None:
        if self.latest_ms is None and not self.chain:
            return None  # a tombstone
        return orjson.dumps(
            {
                "latest_ms": self.latest_ms,
                "chain": [[link.delivery_id, link.expires_ms] for link in self.chain],
                "changed_ms": self.changed_ms,
            }
        )

    @classmethod
    def decode(cls, value: bytes) -> Entry:
        data = orjson.loads(value)
        chain = [Link(str(d), None if e is None else int(e)) for d, e in data.get("chain") or []]
        latest = data.get("latest_ms")
        return cls(
            latest_ms=None if latest is None else int(latest),
            chain=chain[:MAX_CHAIN],
            changed_ms=int(data.get("changed_ms") or 0),
            persisted=True,
        )


def state_key(message: MessageKey) -> bytes:
    return message[0].encode() + b"\x00" + message[1]


def message_of(key: bytes) -> MessageKey | None:
    profile, sep, rest = key.partition(b"\x00")
    if not sep:
        return None
    try:
        return profile.decode(), rest
    except UnicodeDecodeError:
        return None


@dataclass(frozen=True)
class Gate:
    """What the ordering rule says of a callback about to be attempted."""

    action: str  # "go", "stale" (latest: superseded) or "wait" (fifo: not the head)
    wait_s: float = 0.0  # "wait": about when the head may have ended
    ack: Awaitable[Any] | None = None  # a state write the callback's offset waits for


GO = Gate("go")


class OrderState:
    """The ordering state of the partitions this member owns, and its writer."""

    def __init__(
        self, settings: Settings, batcher: TopicBatcher, waiting: Gauge | None = None
    ) -> None:
        self._settings = settings
        self._batcher = batcher
        self._horizon_ms = settings.ordering_state_horizon.ms
        self._max_keys = settings.ordering_state_max_keys
        self._parts: dict[int, OrderedDict[MessageKey, Entry]] = {}
        self._owned: set[int] = set()  # partitions whose state was read back
        self._loading: dict[int, asyncio.Task[None]] = {}  # partitions being read back
        self._turns: dict[MessageKey, asyncio.Lock] = {}
        self._waiting = waiting
        self._waiting_count = 0

    # -- turns ------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def turn(self, message: MessageKey) -> AsyncIterator[None]:
        """One attempt of ``message`` at a time in this process, in arrival order."""
        lock = self._turns.get(message)
        if lock is None:
            lock = self._turns[message] = asyncio.Lock()
        try:
            async with lock:
                yield
        finally:
            if not lock.locked() and self._turns.get(message) is lock:
                del self._turns[message]

    # -- rules ------------------------------------------------------------------------

    def check_latest(self, partition: int, message: MessageKey, occurred_ms: int) -> Gate:
        entry = self._get(partition, message)
        if entry is not None and entry.latest_ms is not None and occurred_ms < entry.latest_ms:
            return Gate("stale")
        return GO

    def delivered_latest(
        self, partition: int, message: MessageKey, occurred_ms: int
    ) -> Awaitable[Any] | None:
        """Note a delivered status; the state write's ack, or None if nothing changed."""
        entry = self._entry(partition, message)
        if entry.latest_ms is not None and entry.latest_ms >= occurred_ms:
            return None
        entry.latest_ms = occurred_ms
        return self._write(partition, message, entry)

    def check_fifo(
        self,
        partition: int,
        message: MessageKey,
        delivery_id: str,
        *,
        expires_ms: int | None,
        now_ms: int,
    ) -> Gate:
        """``go`` if ``delivery_id`` heads its chain (joining it if new), else ``wait``."""
        entry = self._entry(partition, message)
        before = len(entry.chain)
        # A head past its max_age would end expired when it came back: the next goes now.
        while entry.chain and entry.chain[0].delivery_id != delivery_id:
            expires = entry.chain[0].expires_ms
            if expires is None or expires > now_ms:
                break
            entry.chain.pop(0)
            entry.head_due_ms = None
        if not any(link.delivery_id == delivery_id for link in entry.chain):
            if len(entry.chain) >= MAX_CHAIN:
                self._recount(before, len(entry.chain))
                return GO  # bounded: beyond the cap a callback is not held back
            entry.chain.append(Link(delivery_id, expires_ms))
        self._recount(before, len(entry.chain))
        if entry.chain[0].delivery_id == delivery_id:
            return GO
        # Not the head: the chain (with this callback in it) must outlive the source
        # offset, so it is written before the callback is parked.
        ack = self._write(partition, message, entry)
        due = entry.head_due_ms
        wait_s = 0.5 if due is None else max(0.1, (due - now_ms) / 1000.0 + 0.2)
        return Gate("wait", wait_s, ack)

    def fifo_gate(
        self,
        partition: int,
        message: MessageKey,
        delivery_id: str,
        *,
        occurred_ms: int,
        max_age: str | None,
    ) -> Gate:
        """``check_fifo`` for a callback of an event that occurred at ``occurred_ms``,
        given up ``max_age`` (a profile duration) after that, if set."""
        expires_ms = None
        if max_age:
            expires_ms = occurred_ms + int(parse_duration(max_age) * 1000)
        return self.check_fifo(
            partition, message, delivery_id, expires_ms=expires_ms, now_ms=_now_ms()
        )

    def attempted(
        self,
        ordering: str,
        partition: int,
        message: MessageKey,
        delivery_id: str,
        *,
        status: OutcomeStatus | None,
        due_ms: int | None,
        occurred_ms: int,
    ) -> Awaitable[Any] | None:
        """Note what an attempt under ``ordering`` (``latest`` or ``fifo``) came to:
        ``status`` None when it was parked without one, ``due_ms`` when it is due again
        from a retry topic. Returns the state write's ack, or None if nothing changed."""
        if ordering == "latest":
            if status != "delivered":
                return None
            return self.delivered_latest(partition, message, occurred_ms)
        if status in (None, "retrying"):
            return self.fifo_pending(partition, message, due_ms)
        return self.fifo_ended(partition, message, delivery_id)

    def fifo_pending(
        self, partition: int, message: MessageKey, due_ms: int | None
    ) -> Awaitable[Any] | None:
        """The head goes on a retry topic (retrying or parked): keep the chain durable."""
        entry = self._get(partition, message)
        if entry is None:
            return None
        entry.head_due_ms = due_ms
        if entry.persisted and len(entry.chain) == 1:
            return None  # already on the topic as it stands
        return self._write(partition, message, entry)

    def fifo_ended(
        self, partition: int, message: MessageKey, delivery_id: str
    ) -> Awaitable[Any] | None:
        """``delivery_id`` ended (any final outcome): the next of its chain may go."""
        entry = self._get(partition, message)
        if entry is None:
            return None
        kept = [link for link in entry.chain if link.delivery_id != delivery_id]
        if len(kept) == len(entry.chain):
            return None
        self._recount(len(entry.chain), len(kept))
        entry.chain = kept
        entry.head_due_ms = None
        if not entry.persisted:
            if not kept and entry.latest_ms is None:
                self._parts[partition].pop(message, None)
            return None  # nothing of it on the topic: nobody else needs to know
        return self._write(partition, message, entry)

    # -- the partitions' state --------------------------------------------------------

    def _get(self, partition: int, message: MessageKey) -> Entry | None:
        part = self._parts.get(partition)
        if part is None:
            return None
        entry = part.get(message)
        if entry is not None and self._expired(entry):
            self._drop(part, message)
            return None
        return entry

    def _entry(self, partition: int, message: MessageKey) -> Entry:
        entry = self._get(partition, message)
        if entry is None:
            part = self._parts.setdefault(partition, OrderedDict())
            entry = part[message] = Entry(changed_ms=_now_ms())
            while len(part) > self._max_keys:
                self._drop(part, next(iter(part)))
        return entry

    def _expired(self, entry: Entry) -> bool:
        return entry.changed_ms + self._horizon_ms < _now_ms()

    def _drop(self, part: OrderedDict[MessageKey, Entry], message: MessageKey) -> None:
        entry = part.pop(message)
        self._recount(len(entry.chain), 0)

    def _recount(self, before: int, after: int) -> None:
        """``callbacks_ordering_waiting``: callbacks held behind an earlier one (every
        link of a chain but its head)."""
        self._waiting_count += max(0, after - 1) - max(0, before - 1)
        if self._waiting is not None:
            self._waiting.set(self._waiting_count)

    def _reset_count(self) -> None:
        self._waiting_count = sum(
            max(0, len(e.chain) - 1) for part in self._parts.values() for e in part.values()
        )
        self._recount(0, 0)

    def _write(self, partition: int, message: MessageKey, entry: Entry) -> Awaitable[Any]:
        entry.changed_ms = _now_ms()
        part = self._parts.setdefault(partition, OrderedDict())
        part[message] = entry
        part.move_to_end(message)
        value = entry.encode()
        entry.persisted = value is not None
        if value is None:
            part.pop(message, None)
        return self._batcher.send(partition, state_key(message), value)

    # -- rebalances -------------------------------------------------------------------

    def assigned(self, partitions: Iterable[int]) -> None:
        """Start reading back the state of ``partitions`` (those not held already).

        The read runs beside the consumer, so a rebalance never waits for it; a callback
        of an ordered profile in one of them waits for it (``ready``), others never do.
        """
        wanted = sorted(set(partitions) - self._owned - self._loading.keys())
        if not wanted:
            return
        task = asyncio.ensure_future(self._read_back(wanted))
        for partition in wanted:
            self._loading[partition] = task

    async def ready(self, partition: int) -> None:
        """Return once ``partition``'s state is read back (at once if it is)."""
        task = self._loading.get(partition)
        if task is not None:
            await asyncio.shield(task)

    async def _read_back(self, wanted: list[int]) -> None:
        started = time.monotonic()
        loaded: dict[int, OrderedDict[MessageKey, Entry]] = {}
        for attempt in range(1, LOAD_ATTEMPTS + 1):
            try:
                loaded = await self._load(wanted)
                break
            except (KafkaError, TimeoutError, OSError) as exc:
                log.warning("ordering_state_load_failed", attempt=attempt, error=repr(exc))
                await asyncio.sleep(min(2.0, 0.2 * attempt))
        else:
            log.error("ordering_state_not_loaded", partitions=wanted)
        me = asyncio.current_task()
        # Only partitions still assigned in this load's assignment take what it read.
        kept = [p for p in wanted if self._loading.get(p) is me]
        for partition in kept:  # replaces what a late write of a revoked one left
            self._parts[partition] = loaded.get(partition, OrderedDict())
            del self._loading[partition]
        self._owned.update(kept)
        self._reset_count()
        log.info(
            "ordering_state_loaded",
            partitions=kept,
            messages=sum(len(loaded.get(p, ())) for p in kept),
            seconds=round(time.monotonic() - started, 3),
        )

    def revoked(self, partitions: Iterable[int]) -> None:
        """Forget what another member will own: it reads the topic back itself."""
        for partition in partitions:
            self._parts.pop(partition, None)
            self._owned.discard(partition)
            self._loading.pop(partition, None)
        self._reset_count()

    async def close(self) -> None:
        """Stop reads still running (shutdown)."""
        tasks = set(self._loading.values())
        self._loading.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _load(self, partitions: list[int]) -> dict[int, OrderedDict[MessageKey, Entry]]:
        topic = self._settings.topics.ordering
        known = {tp.partition: tp for tp in await topic_partitions(self._settings, topic)}
        tps = [known[p] for p in partitions if p in known]
        out: dict[int, OrderedDict[MessageKey, Entry]] = {}
        if not tps:
            return out
        consumer = make_consumer(self._settings, group_id=None)
        await start_client(consumer)
        try:
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            ends = await consumer.end_offsets(tps)
            left = {tp for tp in tps if ends[tp] > 0}
            for tp in tps:
                out[tp.partition] = OrderedDict()
            while left:
                batch = await consumer.getmany(*left, timeout_ms=200)
                for tp, records in batch.items():
                    part = out[tp.partition]
                    for record in records:
                        self._apply(part, record.key, record.value)
                for tp in list(left):
                    if await consumer.position(tp) >= ends[tp]:
                        left.discard(tp)
        finally:
            await consumer.stop()
        for part in out.values():
            for message in [m for m, e in part.items() if self._expired(e)]:
                del part[message]
            while len(part) > self._max_keys:
                part.popitem(last=False)
        return out

    @staticmethod
    def _apply(
        part: OrderedDict[MessageKey, Entry], key: bytes | None, value: bytes | None
    ) -> None:
        """The last record of a key wins (the broker may not have compacted yet)."""
        message = message_of(key) if key else None
        if message is None:
            return
        part.pop(message, None)
        if value is None:
            return
        try:
            part[message] = Entry.decode(value)
        except (orjson.JSONDecodeError, TypeError, ValueError):
            log.warning("ordering_state_unreadable", key=key[:200] if key else None)


def _now_ms() -> int:
    return int(time.time() * 1000)
