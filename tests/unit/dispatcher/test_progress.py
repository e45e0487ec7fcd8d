"""Commit tracking per assignment (``dispatcher.progress``): the commit point, what is
unfinished, and the lag counted from committed offsets."""

from __future__ import annotations

from aiokafka.structs import TopicPartition
from dispatcher.progress import OffsetTracker

A = TopicPartition("sms.send", 0)
B = TopicPartition("sms.send", 1)
TP = TopicPartition("t", 0)


def test_the_commit_point_waits_for_the_first_unfinished_record() -> None:
    tracker = OffsetTracker()
    parts = {offset: tracker.start(A, offset) for offset in range(480, 490)}
    for offset in range(482, 490):
        tracker.finish(parts[offset], offset)
    assert tracker.commit_points({A}) == {}
    assert tracker.unfinished({A}) == 2
    tracker.finish(parts[481], 481)
    tracker.finish(parts[480], 480)
    assert tracker.commit_points({A}) == {A: 490}
    assert tracker.unfinished({A}) == 0


def test_work_of_an_earlier_assignment_never_counts_in_the_next() -> None:
    """The replay of issue 20: the partition is revoked with 480-559 in flight and comes
    back; finishing the old records must not move the new assignment's commit point."""
    tracker = OffsetTracker()
    old = [tracker.start(A, offset) for offset in range(480, 560)]
    tracker.forget({A})
    assert tracker.in_flight == 0
    new = tracker.start(A, 480)  # the new owner reads again from the committed offset
    for offset, part in zip(range(480, 560), old, strict=True):
        tracker.finish(part, offset)
    assert tracker.commit_points({A}) == {}
    assert tracker.unfinished({A}) == 1
    tracker.finish(new, 480)
    assert tracker.commit_points({A}) == {A: 481}


def test_lag_is_end_minus_committed_across_assignments() -> None:
    tracker = OffsetTracker()
    ends = {A: 1000, B: 50}
    # Nothing started yet on B: its position is where the group committed.
    positions = {B: 20}
    part = tracker.start(A, 400)  # a new assignment began at 400
    assert tracker.lag_by_topic({A, B}, ends.get, positions.get) == {"sms.send": 600 + 30}
    tracker.finish(part, 400)
    tracker.committed(tracker.commit_points({A}))
    assert tracker.committed_offset(A) == 401
    assert tracker.lag_by_topic({A, B}, ends.get, positions.get) == {"sms.send": 599 + 30}
    tracker.forget({A})
    assert tracker.lag_by_topic({B}, ends.get, positions.get) == {"sms.send": 30}


def test_commit_point_is_the_first_unfinished_offset() -> None:
    tracker = OffsetTracker()
    parts = {o: tracker.start(TP, o) for o in (10, 11, 12, 13)}
    assert tracker.commit_points() == {}
    tracker.finish(parts[12], 12)
    tracker.finish(parts[11], 11)
    assert tracker.commit_points() == {}  # 10 still running
    tracker.finish(parts[10], 10)
    assert tracker.commit_points() == {TP: 13}
    tracker.committed({TP: 13})
    assert tracker.commit_points() == {}
    tracker.finish(parts[13], 13)
    assert tracker.commit_points() == {TP: 14}
    assert tracker.in_flight == 0


def test_work_of_a_revoked_partition_does_not_count_after_reassignment() -> None:
    tracker = OffsetTracker()
    old = tracker.start(TP, 5)
    tracker.start(TP, 6)
    tracker.forget({TP})
    assert tracker.in_flight == 0
    new = tracker.start(TP, 5)
    tracker.finish(old, 5)  # the old ownership's task finishing late
    assert tracker.in_flight == 1
    tracker.finish(new, 5)
    assert tracker.commit_points() == {TP: 6}


def test_uncommitted_counts_what_a_crash_would_repeat() -> None:
    tracker = OffsetTracker()
    parts = {offset: tracker.start(A, offset) for offset in range(100, 110)}
    for offset in range(101, 110):  # all but the first finish: none may be committed
        tracker.finish(parts[offset], offset)
    assert tracker.in_flight == 1
    assert tracker.uncommitted() == 10
    tracker.finish(parts[100], 100)  # the head: all ten may be committed now
    assert tracker.uncommitted() == 10
    tracker.committed(tracker.commit_points())
    assert tracker.uncommitted() == 0
    tracker.start(A, 110)
    assert tracker.uncommitted() == 1
