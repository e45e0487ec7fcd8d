"""OrderState's rules and bounds, with a batcher that records what would be written."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from callbacks.settings import Settings
from dispatcher.metrics import ORDERING_WAITING
from dispatcher.ordering import MAX_CHAIN, Entry, OrderState, message_of, state_key
from prometheus_client import CollectorRegistry, Gauge

NOW_MS = 1_800_000_000_000


class Recorder:
    def __init__(self) -> None:
        self.sent: list[tuple[int, bytes | None, bytes | None]] = []
        self.registry = CollectorRegistry()

    def send(self, partition: int, key: bytes | None, value: bytes | None) -> Any:
        self.sent.append((partition, key, value))
        return object()  # stands for the ack


def state(**settings: Any) -> tuple[OrderState, Recorder]:
    recorder = Recorder()
    gauge = Gauge(ORDERING_WAITING, "waiting", registry=recorder.registry)
    return OrderState(Settings(**settings), recorder, gauge), recorder  # type: ignore[arg-type]


def waiting(written: Recorder) -> float | None:
    """``callbacks_ordering_waiting`` as the order state last set it."""
    return written.registry.get_sample_value(ORDERING_WAITING)


M = ("profile-1", b"msg-1")


def test_latest_stales_only_older_statuses_than_a_delivered_one() -> None:
    order, written = state()
    assert order.check_latest(0, M, 2000).action == "go"
    assert order.delivered_latest(0, M, 2000) is not None
    assert order.check_latest(0, M, 1999).action == "stale"
    assert order.check_latest(0, M, 2000).action == "go"  # the same moment is sent
    assert order.check_latest(1, M, 1000).action == "go"  # another partition's state
    assert order.delivered_latest(0, M, 1500) is None  # older: nothing changes
    [(partition, key, value)] = written.sent
    assert partition == 0
    assert key is not None
    assert message_of(key) == M
    assert value is not None
    assert orjson.loads(value)["latest_ms"] == 2000


def test_fifo_lets_only_the_head_go_and_the_next_after_it_ends() -> None:
    order, written = state()
    assert order.check_fifo(0, M, "a", expires_ms=None, now_ms=NOW_MS).action == "go"
    assert written.sent == []  # a head that lands at once costs no write
    wait = order.check_fifo(0, M, "b", expires_ms=None, now_ms=NOW_MS)
    assert wait.action == "wait"
    assert wait.ack is not None
    assert waiting(written) == 1
    assert order.fifo_pending(0, M, NOW_MS + 5000) is not None
    again = order.check_fifo(0, M, "b", expires_ms=None, now_ms=NOW_MS)
    assert again.action == "wait"
    assert again.wait_s == pytest.approx(5.2)  # about when the head is due again
    assert order.fifo_ended(0, M, "a") is not None
    assert order.check_fifo(0, M, "b", expires_ms=None, now_ms=NOW_MS).action == "go"
    assert waiting(written) == 0
    assert order.fifo_ended(0, M, "b") is not None
    assert written.sent[-1][2] is None  # nothing left: a tombstone


def test_a_head_past_its_max_age_lets_the_next_go() -> None:
    order, _ = state()
    order.check_fifo(0, M, "a", expires_ms=NOW_MS + 1000, now_ms=NOW_MS)
    assert order.check_fifo(0, M, "b", expires_ms=None, now_ms=NOW_MS).action == "wait"
    assert order.check_fifo(0, M, "b", expires_ms=None, now_ms=NOW_MS + 1001).action == "go"


def test_a_chain_is_bounded() -> None:
    order, written = state()
    for i in range(MAX_CHAIN):
        order.check_fifo(0, M, f"d{i}", expires_ms=None, now_ms=NOW_MS)
    assert order.check_fifo(0, M, "one-more", expires_ms=None, now_ms=NOW_MS).action == "go"
    assert waiting(written) == MAX_CHAIN - 1


def test_a_partition_keeps_at_most_max_keys_messages() -> None:
    order, _ = state(ordering_state_max_keys=2)
    for n in range(3):
        order.delivered_latest(0, ("p", f"m{n}".encode()), 5000)
    assert order.check_latest(0, ("p", b"m0"), 1).action == "go"  # the oldest was dropped
    assert order.check_latest(0, ("p", b"m2"), 1).action == "stale"


def test_state_older_than_the_horizon_is_gone() -> None:
    order, _ = state(ordering_state_horizon="1ms")
    order.delivered_latest(0, M, 5000)
    entry = order._parts[0][M]  # aged by hand: no clock
    entry.changed_ms -= 10
    assert order.check_latest(0, M, 1).action == "go"


@pytest.mark.parametrize(
    "entry",
    [
        Entry(latest_ms=5, changed_ms=9),
        Entry(chain=[], latest_ms=1),
    ],
)
def test_entries_round_trip(entry: Entry) -> None:
    value = entry.encode()
    assert value is not None
    back = Entry.decode(value)
    assert (back.latest_ms, back.chain) == (entry.latest_ms, entry.chain)


def test_keys_round_trip_and_bad_keys_are_ignored() -> None:
    assert message_of(state_key(("p", b"a\x00b"))) == ("p", b"a\x00b")
    assert message_of(b"no-separator") is None
    assert message_of(b"\xff\x00x") is None
