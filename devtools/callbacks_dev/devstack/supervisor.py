"""The restart policy of ``make run``: a service that exits comes back, a crash loop stops all.

A service process that exits is started again after a delay that begins at
``first_delay_s`` and doubles up to ``max_delay_s``; once a process has stayed up for
``stable_after_s`` its next exit starts the doubling afresh. ``loop_exits`` exits of one
service within ``loop_window_s`` are a crash loop: restarting it again would only hide
the cause, so the stack stops and shows the end of that service's log.

The policy reads the clock it is given and starts nothing itself (``LocalStack.supervise``
polls the processes and acts on its answers), so its tests never sleep.
"""

from __future__ import annotations

import signal
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

# How much of a log's end is read for the crash report: enough for 30 long JSON lines.
_TAIL_BYTES = 64 * 1024


@dataclass(frozen=True)
class Restart:
    """Start the service again after ``delay_s``; ``restarts`` counts this one too."""

    delay_s: float
    restarts: int


@dataclass(frozen=True)
class CrashLoop:
    """The service exited ``exits`` times within ``window_s``: stop the stack."""

    exits: int
    window_s: float


@dataclass(frozen=True)
class ServiceExit:
    """One exit of a supervised service and what the supervisor does about it."""

    service: str
    exit_code: int | None
    log_path: Path | None
    decision: Restart | CrashLoop


class Supervisor:
    """Restart timing and crash-loop detection for the named services of one stack."""

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        *,
        first_delay_s: float = 0.5,
        max_delay_s: float = 10.0,
        stable_after_s: float = 30.0,
        loop_exits: int = 5,
        loop_window_s: float = 60.0,
    ) -> None:
        self._clock = clock
        self._first_delay_s = first_delay_s
        self._max_delay_s = max_delay_s
        self._stable_after_s = stable_after_s
        self._loop_exits = loop_exits
        self._loop_window_s = loop_window_s
        self._started_at: dict[str, float] = {}
        self._next_delay: dict[str, float] = {}
        self._exits: dict[str, deque[float]] = {}
        self._restarts: dict[str, int] = {}
        self._due_at: dict[str, float] = {}

    def started(self, service: str) -> None:
        """The service's process was (re)started just now."""
        self._started_at[service] = self._clock()
        self._due_at.pop(service, None)

    def waiting(self, service: str) -> bool:
        """Whether the service is down, waiting for its restart."""
        return service in self._due_at

    def restarts(self, service: str) -> int:
        return self._restarts.get(service, 0)

    def exited(self, service: str) -> Restart | CrashLoop:
        """Record an exit seen now; say when to restart, or that it is a crash loop."""
        now = self._clock()
        exits = self._exits.setdefault(service, deque())
        exits.append(now)
        while exits and now - exits[0] > self._loop_window_s:
            exits.popleft()
        if len(exits) >= self._loop_exits:
            return CrashLoop(exits=len(exits), window_s=self._loop_window_s)
        if now - self._started_at.get(service, now) >= self._stable_after_s:
            self._next_delay.pop(service, None)
        delay = self._next_delay.get(service, self._first_delay_s)
        self._next_delay[service] = min(delay * 2, self._max_delay_s)
        self._restarts[service] = self.restarts(service) + 1
        self._due_at[service] = now + delay
        return Restart(delay_s=delay, restarts=self._restarts[service])

    def due(self) -> list[str]:
        """The services whose restart delay has passed (each until ``started`` is called)."""
        now = self._clock()
        return [service for service, at in self._due_at.items() if at <= now]


def describe_exit_code(code: int | None) -> str:
    if code is None:
        return "an unknown code"
    if code < 0:
        try:
            return f"code {code} ({signal.Signals(-code).name})"
        except ValueError:
            return f"code {code}"
    return f"code {code}"


def describe(event: ServiceExit) -> str:
    """The console line ``make run`` prints for an exit."""
    where = f"log: {event.log_path}" if event.log_path else "no log"
    how = describe_exit_code(event.exit_code)
    decision = event.decision
    if isinstance(decision, Restart):
        return (
            f"{event.service} exited with {how}; restart {decision.restarts} "
            f"in {decision.delay_s:g}s; {where}"
        )
    return (
        f"{event.service} exited with {how}, {decision.exits} exits within "
        f"{decision.window_s:g}s: a crash loop, stopping the stack; {where}"
    )


def log_tail(path: Path | None, lines: int = 30) -> list[str]:
    """The last ``lines`` lines of a log, reading at most its last 64 KiB."""
    if path is None:
        return []
    try:
        with path.open("rb") as log:
            start = max(0, log.seek(0, 2) - _TAIL_BYTES)
            log.seek(start)
            text = log.read().decode("utf-8", errors="replace")
    except OSError:
        return []
    kept = text.splitlines()
    if start > 0:
        kept = kept[1:]  # the first line read may be cut anywhere
    return kept[-lines:]


def crash_report(event: ServiceExit, lines: int = 30) -> str:
    """What ``make run`` prints when it gives up on a service: the line and the log's end."""
    tail = log_tail(event.log_path, lines)
    header = f"--- last {len(tail)} lines of {event.log_path} ---"
    return "\n".join([describe(event), header, *tail, "---"])
