"""What a fault test reports: the figures of a run and what the members' logs say.

:class:`Figures` holds events, lost, duplicates and the seconds to recover and to catch
up (defined in ``tests.integration.fleet.harness``); :func:`telling_logs` counts the log
lines that explain duplicates; :func:`wait_for` waits for a condition whose outcome is
itself a figure.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from tests.helpers import eventually

# Log events of the members that explain duplicates, and the field that counts records
# (None: each line counts one).
TELLING_LOGS: dict[str, str | None] = {
    "offset_commit_failed": None,
    "revoke_left_unfinished": "records",
    "dispatcher_cancelled_in_flight": "count",
    "handoff_resend": None,
}


async def wait_for(probe: Callable[[], Awaitable[bool]], *, timeout_s: float, what: str) -> bool:
    """``eventually`` that answers whether the condition held instead of raising: for
    waits whose outcome is a figure the test reports before it asserts."""
    try:
        await eventually(probe, timeout_s=timeout_s, interval_s=0.2, what=what)
    except AssertionError:
        return False
    return True


def telling_logs(log_path: Path) -> Counter[str]:
    """How often each of :data:`TELLING_LOGS` appears in the JSON log at ``log_path``
    (weighted by its count field where it has one); empty if there is no log."""
    seen: Counter[str] = Counter()
    try:
        lines = log_path.read_text(errors="replace").splitlines()
    except OSError:
        return seen
    for line in lines:
        if not line.startswith("{"):
            continue
        try:
            entry = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        event = entry.get("event") if isinstance(entry, dict) else None
        if event in TELLING_LOGS:
            weight = TELLING_LOGS[event]
            seen[event] += int(entry.get(weight, 1)) if weight else 1
    return seen


@dataclass
class Figures:
    events: int
    lost: int
    duplicates: int
    recover_s: float | None
    caught_up_s: float | None
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def duplicate_share(self) -> float:
        return self.duplicates / self.events if self.events else 0.0

    def line(self, name: str, broker: str) -> str:
        def seconds(value: float | None) -> str:
            return "n/a" if value is None else f"{value:.1f}"

        extra = "".join(f" {k}={v}" for k, v in self.extra.items())
        return (
            f"fleet {name} [{broker}]: events={self.events} lost={self.lost} "
            f"duplicates={self.duplicates} ({self.duplicate_share:.1%}) "
            f"recover_s={seconds(self.recover_s)} caught_up_s={seconds(self.caught_up_s)}{extra}"
        )
