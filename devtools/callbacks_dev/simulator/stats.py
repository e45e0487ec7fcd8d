"""What the demo counts, and how it shows it: a live line and a summary table. Pure.

Three sources meet here: what the simulator produced (event id → event name and
produce time), what the receiver answered, and the dispatcher's outcome records for
the demo account (the latest status of each delivery: delivered, retrying, failed).
Latency is measured from produce time to the first request's arrival at the receiver
(the pipeline's own latency) and to the 2xx arrival (including retry delays).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

from callbacks_dev.simulator.receiver import Arrival


def percentile(values: list[float], share: float) -> float | None:
    """Nearest-rank percentile; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(share * len(ordered)))
    return ordered[rank - 1]


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


@dataclass
class EventStats:
    produced: int = 0
    expected_skips: int = 0
    delivered: int = 0  # distinct events answered 2xx by the receiver
    first_ms: list[float] = field(default_factory=list)
    delivered_ms: list[float] = field(default_factory=list)


@dataclass
class DemoStats:
    """Everything the progress line and the summary table show."""

    produced_at: dict[str, tuple[str, float]] = field(default_factory=dict)
    by_event: dict[str, EventStats] = field(default_factory=dict)
    warmup_ids: set[str] = field(default_factory=set)
    requests: Counter[int] = field(default_factory=Counter)  # receiver answers by status
    bad_signatures: int = 0
    unreadable_outcomes: int = 0
    outcome_status: dict[str, str] = field(default_factory=dict)  # delivery id → latest
    _first_seen: set[str] = field(default_factory=set)
    _delivered: set[str] = field(default_factory=set)

    def produced(self, event_id: str, event: str, at: float, *, expect_skip: bool) -> None:
        self.produced_at[event_id] = (event, at)
        row = self.by_event.setdefault(event, EventStats())
        row.produced += 1
        row.expected_skips += int(expect_skip)

    def arrived(self, arrival: Arrival) -> None:
        if arrival.event_id in self.warmup_ids:
            return
        self.requests[arrival.status] += 1
        self.bad_signatures += int(not arrival.signature_ok)
        if arrival.event_id is None or arrival.event_id not in self.produced_at:
            return
        event, produced = self.produced_at[arrival.event_id]
        row = self.by_event[event]
        elapsed_ms = (arrival.at - produced) * 1000
        if arrival.event_id not in self._first_seen:
            self._first_seen.add(arrival.event_id)
            row.first_ms.append(elapsed_ms)
        if 200 <= arrival.status < 300 and arrival.event_id not in self._delivered:
            self._delivered.add(arrival.event_id)
            row.delivered += 1
            row.delivered_ms.append(elapsed_ms)

    def outcome(self, delivery_id: str, event_id: str, status: str) -> None:
        # Only this run's events count: retries of an earlier run's callbacks for the
        # same account (its profiles now point at this run's receiver) may still land.
        if event_id in self.produced_at:
            self.outcome_status[delivery_id] = status

    @property
    def total_produced(self) -> int:
        return sum(r.produced for r in self.by_event.values())

    @property
    def expected_deliveries(self) -> int:
        return sum(r.produced - r.expected_skips for r in self.by_event.values())

    def outcome_counts(self) -> Counter[str]:
        return Counter(self.outcome_status.values())

    def settled(self) -> bool:
        """Every callback expected arrived with a 2xx or ended failed, and the outcome
        records (published after the receiver answered) have caught up."""
        counts = self.outcome_counts()
        arrived = len(self._delivered) + counts["failed"] >= self.expected_deliveries
        return arrived and counts["delivered"] >= len(self._delivered)

    def progress_line(self, elapsed_s: float) -> str:
        counts = self.outcome_counts()
        first = [v for r in self.by_event.values() for v in r.first_ms]
        return (
            f"[{elapsed_s:5.1f}s] produced {self.total_produced}"
            f" | received {len(self._delivered)}"
            f" | outcomes: delivered {counts['delivered']}, retrying {counts['retrying']},"
            f" failed {counts['failed']}"
            f" | latency p50 {_ms(percentile(first, 0.5))} ms"
            f" p99 {_ms(percentile(first, 0.99))} ms"
        )

    def summary_table(self) -> str:
        header = (
            "event",
            "produced",
            "skipped*",
            "delivered",
            "missing",
            "p50 ms",
            "p99 ms",
            "p99 to 2xx ms",
        )
        rows: list[tuple[str, ...]] = [header]
        for name in sorted(self.by_event):
            r = self.by_event[name]
            missing = r.produced - r.expected_skips - r.delivered
            rows.append(
                (
                    name,
                    str(r.produced),
                    str(r.expected_skips),
                    str(r.delivered),
                    str(missing),
                    _ms(percentile(r.first_ms, 0.5)),
                    _ms(percentile(r.first_ms, 0.99)),
                    _ms(percentile(r.delivered_ms, 0.99)),
                )
            )
        every = list(self.by_event.values())
        first = [v for r in every for v in r.first_ms]
        delivered_ms = [v for r in every for v in r.delivered_ms]
        produced = self.total_produced
        skips = sum(r.expected_skips for r in every)
        delivered = sum(r.delivered for r in every)
        rows.append(
            (
                "total",
                str(produced),
                str(skips),
                str(delivered),
                str(produced - skips - delivered),
                _ms(percentile(first, 0.5)),
                _ms(percentile(first, 0.99)),
                _ms(percentile(delivered_ms, 0.99)),
            )
        )
        widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
        lines = []
        for index, row in enumerate(rows):
            cells = [
                cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i])
                for i, cell in enumerate(row)
            ]
            lines.append("  ".join(cells))
            if index in (0, len(rows) - 2):
                lines.append("  ".join("-" * w for w in widths))
        counts = self.outcome_counts()
        answers = ", ".join(f"{status}: {n}" for status, n in sorted(self.requests.items()))
        lines += [
            "",
            "* skipped: chatbot actions without an intent, which the chatbot profile's "
            "required_options skips (by design)",
            f"receiver answers: {answers or 'none'}; bad signatures: {self.bad_signatures}",
            f"outcome records: delivered {counts['delivered']}, retrying {counts['retrying']}, "
            f"failed {counts['failed']} (failed callbacks are in callbacks.dead)"
            + (f"; unreadable: {self.unreadable_outcomes}" if self.unreadable_outcomes else ""),
        ]
        return "\n".join(lines)
