"""Stand-ins for the dispatcher's unit tests: a consumer that records its pause, resume
and seek calls, retry records, and timers fired by hand instead of by the event loop."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from aiokafka.structs import ConsumerRecord, TopicPartition
from callbacks.wire import H_DUE_MS

TP = TopicPartition("callbacks.retry.5s", 0)
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
    """A parked record of ``TP`` written at ``NOW_MS``, due at ``due_ms``."""
    return ConsumerRecord(
        TP.topic, TP.partition, offset, NOW_MS, 0, b"k", b"v", None, 1, 1,
        [(H_DUE_MS, str(due_ms).encode())],
    )  # fmt: skip


@dataclass
class _Timer:
    due_s: float
    callback: Callable[[], None]
    cancelled: bool = False

    def cancel(self) -> None:
        self.cancelled = True


class Timers:
    """A ``call_later`` on a clock that moves only when told (``advance``)."""

    def __init__(self) -> None:
        self.now_s = 0.0
        self._timers: list[_Timer] = []

    def call_later(self, delay_s: float, callback: Callable[[], None]) -> _Timer:
        timer = _Timer(self.now_s + delay_s, callback)
        self._timers.append(timer)
        return timer

    def advance(self, seconds: float) -> None:
        """Move the clock on, firing what fell due, in due order."""
        self.now_s += seconds
        due = sorted(
            (t for t in self._timers if t.due_s <= self.now_s and not t.cancelled),
            key=lambda t: t.due_s,
        )
        self._timers = [t for t in self._timers if t not in due and not t.cancelled]
        for timer in due:
            timer.callback()
