"""Which offsets may be committed: completion tracked per partition, out of order.

Records finish in any order (a slow endpoint, a retry hand-off), but a committed offset
promises that everything before it is done. So each partition keeps its started offsets
in fetch order and the set of finished ones; the commit point is the first unfinished
offset (or one past the last finished when none is pending). Pure and synchronous.

Tracking is per assignment: a partition's ``PartitionProgress`` lives from the first
record started after it was assigned until it is revoked (``forget``). Work started
before a revoke holds the old handle, so it can never mark offsets done in a later
assignment of the same partition.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from aiokafka.structs import TopicPartition


@dataclass(eq=False)
class PartitionProgress:
    """One owned partition. A handle, so work started before a rebalance cannot mark
    offsets done in the partition's next ownership."""

    tp: TopicPartition
    pending: deque[int] = field(default_factory=deque)
    finished: set[int] = field(default_factory=set)
    next_commit: int | None = None
    committed: int | None = None
    first_started: int | None = None  # where this assignment began reading

    def advance(self) -> None:
        while self.pending and self.pending[0] in self.finished:
            offset = self.pending.popleft()
            self.finished.discard(offset)
            self.next_commit = offset + 1


class OffsetTracker:
    """The owned partitions' progress, and how many records are in flight over all."""

    def __init__(self) -> None:
        self._parts: dict[TopicPartition, PartitionProgress] = {}
        self.in_flight = 0

    def start(self, tp: TopicPartition, offset: int) -> PartitionProgress:
        part = self._parts.get(tp)
        if part is None:
            part = self._parts[tp] = PartitionProgress(tp, first_started=offset)
        part.pending.append(offset)
        self.in_flight += 1
        return part

    def finish(self, part: PartitionProgress, offset: int) -> None:
        """Mark done; work of a partition revoked meanwhile is ignored."""
        if self._parts.get(part.tp) is not part:
            return
        part.finished.add(offset)
        self.in_flight -= 1
        if part.pending and part.pending[0] == offset:
            part.advance()

    def unfinished(self, tps: Iterable[TopicPartition]) -> int:
        """Records of ``tps`` started and not finished yet."""
        total = 0
        for tp in tps:
            part = self._parts.get(tp)
            if part is not None:
                total += len(part.pending) - len(part.finished)
        return total

    def uncommitted(self) -> int:
        """Records taken from the owned partitions whose offsets are not committed yet:
        at most what this member's crash would have a new owner deliver again (finished
        records behind an unfinished one count, and so do finished ones not committed
        yet)."""
        total = 0
        for part in self._parts.values():
            total += len(part.pending)
            base = part.committed if part.committed is not None else part.first_started
            if part.next_commit is not None and base is not None:
                total += max(part.next_commit - base, 0)
        return total

    def committed_offset(self, tp: TopicPartition) -> int | None:
        """The group's committed offset as this member knows it: its last commit, else
        where its assignment began (a new owner reads from the committed offset)."""
        part = self._parts.get(tp)
        if part is None:
            return None
        return part.committed if part.committed is not None else part.first_started

    def lag_by_topic(
        self,
        tps: Iterable[TopicPartition],
        highwater: Callable[[TopicPartition], int | None],
        base: Callable[[TopicPartition], int | None],
    ) -> dict[str, int]:
        """Per topic, records between the committed offsets and the partitions' ends.

        ``base(tp)`` is the committed offset of a partition this member has started
        nothing of yet (its position, which is where the group committed).
        """
        lag: dict[str, int] = {}
        for tp in tps:
            end = highwater(tp)
            committed = self.committed_offset(tp)
            if committed is None:
                committed = base(tp)
            lag.setdefault(tp.topic, 0)
            if end is not None and committed is not None:
                lag[tp.topic] += max(end - committed, 0)
        return lag

    def commit_points(self, tps: set[TopicPartition] | None = None) -> dict[TopicPartition, int]:
        """Offsets to commit now (only those that moved since the last commit)."""
        out: dict[TopicPartition, int] = {}
        for tp, part in self._parts.items():
            if tps is not None and tp not in tps:
                continue
            if part.next_commit is not None and part.next_commit != part.committed:
                out[tp] = part.next_commit
        return out

    def committed(self, points: dict[TopicPartition, int]) -> None:
        for tp, offset in points.items():
            part = self._parts.get(tp)
            if part is not None:
                part.committed = offset

    def forget(self, tps: set[TopicPartition]) -> None:
        """Drop partitions we no longer own; their unfinished records are redelivered."""
        for tp in tps:
            part = self._parts.pop(tp, None)
            if part is not None:
                self.in_flight -= len(part.pending) - len(part.finished)
