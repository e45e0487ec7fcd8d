"""The consume loop's start of fetched records (``dispatcher.worker``): a chunk per loop
turn, and only in the assignment the records were fetched in."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka.structs import ConsumerRecord, TopicPartition
from callbacks.settings import Settings
from dispatcher.worker import START_CHUNK, Dispatcher

from tests.unit.dispatcher.fakes import NOW_MS, TP, Consumer, record


async def test_fetched_records_start_a_chunk_per_loop_turn() -> None:
    """The consume loop starts at most START_CHUNK records per loop turn, so answers are
    read in between."""
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
