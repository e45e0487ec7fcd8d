"""Retry partitions: records not yet due are held in memory, not read again
(dispatcher.fetch_pauses). The consumer is a recording stand-in: only its pause, resume and
seek calls matter here."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka.structs import ConsumerRecord, TopicPartition
from dispatcher.fetch_pauses import HOLD_MAX, FetchPauses
from dispatcher.jobs import H_DUE_MS

TP = TopicPartition("callbacks.retry.5s", 0)
DELAY_S = 5.0
NOW_MS = 1_000_000


class Consumer:
    def __init__(self) -> None:
        self.paused: set[TopicPartition] = set()
        self.seeks: list[tuple[TopicPartition, int]] = []

    def assignment(self) -> set[TopicPartition]:
        return {TP}

    def pause(self, *tps: TopicPartition) -> None:
        self.paused.update(tps)

    def resume(self, *tps: TopicPartition) -> None:
        self.paused.difference_update(tps)

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.seeks.append((tp, offset))


def record(offset: int, due_ms: int) -> ConsumerRecord[bytes, bytes]:
    """A parked record of ``TP`` written now, due at ``due_ms``."""
    return ConsumerRecord(
        TP.topic, TP.partition, offset, NOW_MS, 0, b"k", b"v", None, 1, 1,
        [(H_DUE_MS, str(due_ms).encode())],
    )  # fmt: skip


def offsets(records: list[ConsumerRecord[bytes, bytes]]) -> list[int]:
    return [r.offset for r in records]


async def test_records_behind_a_head_not_due_are_held_then_started_without_a_seek() -> None:
    consumer, pauses = Consumer(), FetchPauses(lambda: False)
    fetched = [record(0, NOW_MS), record(1, NOW_MS + 50), record(2, NOW_MS + 50)]
    assert offsets(pauses.due_prefix(consumer, TP, fetched, DELAY_S, NOW_MS)) == [0]
    assert TP in consumer.paused
    assert consumer.seeks == []
    assert pauses.waiting
    assert list(pauses.take_due(consumer, NOW_MS, room=100)) == []

    await asyncio.sleep(0.08)  # the head's timer fires
    taken = list(pauses.take_due(consumer, NOW_MS + 60, room=100))
    assert [(tp, offsets(records)) for tp, records in taken] == [(TP, [1, 2])]
    assert TP not in consumer.paused
    assert not pauses.waiting
    assert consumer.seeks == []


async def test_taking_due_records_respects_the_room_left_in_flight() -> None:
    consumer, pauses = Consumer(), FetchPauses(lambda: False)
    fetched = [record(0, NOW_MS + 20), record(1, NOW_MS + 20), record(2, NOW_MS + 20)]
    assert pauses.due_prefix(consumer, TP, fetched, DELAY_S, NOW_MS) == []
    await asyncio.sleep(0.05)
    first = list(pauses.take_due(consumer, NOW_MS + 30, room=2))
    assert [offsets(records) for _, records in first] == [[0, 1]]
    assert TP in consumer.paused  # one left: still held, in order
    second = list(pauses.take_due(consumer, NOW_MS + 30, room=5))
    assert [offsets(records) for _, records in second] == [[2]]
    assert TP not in consumer.paused


async def test_a_later_head_is_held_again_with_its_own_timer() -> None:
    consumer, pauses = Consumer(), FetchPauses(lambda: False)
    fetched = [record(0, NOW_MS + 20), record(1, NOW_MS + 5_000)]
    pauses.due_prefix(consumer, TP, fetched, DELAY_S, NOW_MS)
    await asyncio.sleep(0.05)
    taken = list(pauses.take_due(consumer, NOW_MS + 30, room=10))
    assert [offsets(records) for _, records in taken] == [[0]]
    assert TP in consumer.paused  # record 1 waits for its own time
    assert pauses.waiting


@pytest.mark.parametrize("extra", [1, 10])
async def test_beyond_the_hold_bound_the_partition_seeks_back(extra: int) -> None:
    consumer, pauses = Consumer(), FetchPauses(lambda: False)
    fetched = [record(i, NOW_MS + 1_000) for i in range(HOLD_MAX + extra)]
    assert pauses.due_prefix(consumer, TP, fetched, DELAY_S, NOW_MS) == []
    assert consumer.seeks == [(TP, HOLD_MAX)]


async def test_revoked_partitions_drop_what_they_held() -> None:
    consumer, pauses = Consumer(), FetchPauses(lambda: False)
    pauses.due_prefix(consumer, TP, [record(0, NOW_MS + 20)], DELAY_S, NOW_MS)
    pauses.forget({TP})
    await asyncio.sleep(0.05)
    assert list(pauses.take_due(consumer, NOW_MS + 30, room=10)) == []
    assert not pauses.waiting


async def test_fetched_records_start_a_chunk_per_loop_turn() -> None:
    """The consume loop starts at most START_CHUNK records per loop turn, so answers are
    read in between."""
    from callbacks.settings import Settings
    from dispatcher.worker import START_CHUNK, Dispatcher

    dispatcher = Dispatcher(Settings.model_validate({}))
    turns = 0
    started: list[tuple[TopicPartition, int]] = []

    def start(tp: TopicPartition, record: ConsumerRecord[bytes, bytes]) -> None:
        started.append((tp, record.offset))

    async def count_turns() -> None:
        nonlocal turns
        while True:
            await asyncio.sleep(0)
            turns += 1

    dispatcher._start = start  # type: ignore[method-assign]
    dispatcher.on_assigned({TP})
    ticker = asyncio.create_task(count_turns())
    await asyncio.sleep(0)
    first = [record(i, NOW_MS) for i in range(START_CHUNK * 2 + 3)]
    await dispatcher._start_in_chunks(Consumer(), [(TP, dispatcher._epochs[TP], first)])  # type: ignore[arg-type]
    ticker.cancel()
    assert [offset for _, offset in started] == list(range(len(first)))
    assert turns >= 2  # three chunks, a loop turn between each


@pytest.mark.parametrize("comes_back", [False, True], ids=["moved", "came-back"])
async def test_a_batch_starts_only_in_the_assignment_it_was_fetched_in(comes_back: bool) -> None:
    """A rebalance during the start loop's yield ends the batch for that partition, even
    when the partition comes straight back: the rest of the batch belongs to the old
    assignment, and the new one reads it again from the committed offset."""
    from callbacks.settings import Settings
    from dispatcher.worker import START_CHUNK, Dispatcher

    dispatcher = Dispatcher(Settings.model_validate({}))
    started: list[tuple[TopicPartition, int]] = []
    dispatcher._start = lambda tp, r: started.append((tp, r.offset))  # type: ignore[method-assign]
    other = TopicPartition("callbacks.sms.send", 1)
    dispatcher.on_assigned({TP, other})
    fetched_in = dict(dispatcher._epochs)

    async def rebalance() -> None:  # runs at the start loop's first yield
        dispatcher._epochs.pop(other)  # what ``on_revoked`` does first
        if comes_back:
            dispatcher.on_assigned({other})

    moved = asyncio.create_task(rebalance())
    batch = [record(i, NOW_MS) for i in range(START_CHUNK * 3)]
    work = [(other, fetched_in[other], batch), (TP, fetched_in[TP], batch)]
    await dispatcher._start_in_chunks(Consumer(), work)  # type: ignore[arg-type]
    await moved
    assert [offset for tp, offset in started if tp == other] == list(range(START_CHUNK))
    assert [offset for tp, offset in started if tp == TP] == list(range(len(batch)))
