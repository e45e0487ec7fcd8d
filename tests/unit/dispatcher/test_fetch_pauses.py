"""Retry partitions: records not yet due are held in memory, not read again
(dispatcher.fetch_pauses). The consumer is a recording stand-in (only its pause, resume
and seek calls matter here) and the timers fire when the test moves their clock."""

from __future__ import annotations

import pytest
from aiokafka.structs import ConsumerRecord
from dispatcher.fetch_pauses import HOLD_MAX, FetchPauses

from tests.unit.dispatcher.fakes import NOW_MS, TP, Consumer, Timers, record

DELAY_S = 5.0


def offsets(records: list[ConsumerRecord[bytes, bytes]]) -> list[int]:
    return [r.offset for r in records]


def test_records_behind_a_head_not_due_are_held_then_started_without_a_seek() -> None:
    consumer, timers = Consumer(), Timers()
    pauses = FetchPauses(lambda: False, call_later=timers.call_later)
    fetched = [record(0, NOW_MS), record(1, NOW_MS + 50), record(2, NOW_MS + 50)]
    assert offsets(pauses.due_prefix(consumer, TP, fetched, DELAY_S, NOW_MS)) == [0]
    assert TP in consumer.paused
    assert consumer.seeks == []
    assert pauses.waiting
    assert list(pauses.take_due(consumer, NOW_MS, room=100)) == []

    timers.advance(0.08)  # the head's timer fires
    taken = list(pauses.take_due(consumer, NOW_MS + 60, room=100))
    assert [(tp, offsets(records)) for tp, records in taken] == [(TP, [1, 2])]
    assert TP not in consumer.paused
    assert not pauses.waiting
    assert consumer.seeks == []


def test_taking_due_records_respects_the_room_left_in_flight() -> None:
    consumer, timers = Consumer(), Timers()
    pauses = FetchPauses(lambda: False, call_later=timers.call_later)
    fetched = [record(0, NOW_MS + 20), record(1, NOW_MS + 20), record(2, NOW_MS + 20)]
    assert pauses.due_prefix(consumer, TP, fetched, DELAY_S, NOW_MS) == []
    timers.advance(0.05)
    first = list(pauses.take_due(consumer, NOW_MS + 30, room=2))
    assert [offsets(records) for _, records in first] == [[0, 1]]
    assert TP in consumer.paused  # one left: still held, in order
    second = list(pauses.take_due(consumer, NOW_MS + 30, room=5))
    assert [offsets(records) for _, records in second] == [[2]]
    assert TP not in consumer.paused


def test_a_later_head_is_held_again_with_its_own_timer() -> None:
    consumer, timers = Consumer(), Timers()
    pauses = FetchPauses(lambda: False, call_later=timers.call_later)
    fetched = [record(0, NOW_MS + 20), record(1, NOW_MS + 5_000)]
    pauses.due_prefix(consumer, TP, fetched, DELAY_S, NOW_MS)
    timers.advance(0.05)
    taken = list(pauses.take_due(consumer, NOW_MS + 30, room=10))
    assert [offsets(records) for _, records in taken] == [[0]]
    assert TP in consumer.paused  # record 1 waits for its own time
    assert pauses.waiting


@pytest.mark.parametrize("extra", [1, 10])
def test_beyond_the_hold_bound_the_partition_seeks_back(extra: int) -> None:
    consumer, timers = Consumer(), Timers()
    pauses = FetchPauses(lambda: False, call_later=timers.call_later)
    fetched = [record(i, NOW_MS + 1_000) for i in range(HOLD_MAX + extra)]
    assert pauses.due_prefix(consumer, TP, fetched, DELAY_S, NOW_MS) == []
    assert consumer.seeks == [(TP, HOLD_MAX)]


def test_revoked_partitions_drop_what_they_held() -> None:
    consumer, timers = Consumer(), Timers()
    pauses = FetchPauses(lambda: False, call_later=timers.call_later)
    pauses.due_prefix(consumer, TP, [record(0, NOW_MS + 20)], DELAY_S, NOW_MS)
    pauses.forget({TP})
    timers.advance(0.05)
    assert list(pauses.take_due(consumer, NOW_MS + 30, room=10)) == []
    assert not pauses.waiting
