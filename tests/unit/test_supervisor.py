"""The restart policy of ``make run`` on a clock the test moves: backoff, its reset, the
crash loop, and what the console shows."""

from __future__ import annotations

from pathlib import Path

import pytest
from callbacks_dev.devstack.supervisor import (
    CrashLoop,
    Restart,
    ServiceExit,
    Supervisor,
    crash_report,
    describe,
    log_tail,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _supervisor(clock: Clock) -> Supervisor:
    return Supervisor(
        clock,
        first_delay_s=0.5,
        max_delay_s=10.0,
        stable_after_s=30.0,
        loop_exits=5,
        loop_window_s=60.0,
    )


def _crash_after(supervisor: Supervisor, clock: Clock, service: str, up_s: float) -> object:
    """The service runs ``up_s`` after its restart, then exits."""
    clock.now += up_s
    return supervisor.exited(service)


def _restart_when_due(supervisor: Supervisor, clock: Clock, decision: object) -> None:
    assert isinstance(decision, Restart)
    clock.now += decision.delay_s
    assert supervisor.due() == ["dispatcher"]
    supervisor.started("dispatcher")


def test_delay_doubles_from_half_a_second_up_to_ten() -> None:
    clock = Clock()
    supervisor = _supervisor(clock)
    supervisor.started("dispatcher")
    delays = []
    for _ in range(8):
        # 20 s up each time: never stable, and never five exits within a minute.
        decision = _crash_after(supervisor, clock, "dispatcher", 20.0)
        assert isinstance(decision, Restart), decision
        delays.append(decision.delay_s)
        _restart_when_due(supervisor, clock, decision)
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0]
    assert supervisor.restarts("dispatcher") == 8


def test_restart_waits_for_its_delay() -> None:
    clock = Clock()
    supervisor = _supervisor(clock)
    supervisor.started("dispatcher")
    decision = _crash_after(supervisor, clock, "dispatcher", 1.0)
    assert decision == Restart(delay_s=0.5, restarts=1)
    assert supervisor.waiting("dispatcher")
    clock.now += 0.49
    assert supervisor.due() == []
    clock.now += 0.01
    assert supervisor.due() == ["dispatcher"]
    supervisor.started("dispatcher")
    assert not supervisor.waiting("dispatcher")
    assert supervisor.due() == []


def test_delay_starts_again_after_a_stable_run() -> None:
    clock = Clock()
    supervisor = _supervisor(clock)
    supervisor.started("dispatcher")
    for expected in (0.5, 1.0, 2.0):
        decision = _crash_after(supervisor, clock, "dispatcher", 2.0)
        assert decision == Restart(delay_s=expected, restarts=supervisor.restarts("dispatcher"))
        _restart_when_due(supervisor, clock, decision)
    decision = _crash_after(supervisor, clock, "dispatcher", 30.0)  # stayed up long enough
    assert isinstance(decision, Restart)
    assert decision.delay_s == 0.5
    assert decision.restarts == 4  # the count is not reset, only the delay


@pytest.mark.parametrize(
    ("up_s", "crash_loop_at"),
    [
        (1.0, 5),  # fails at start: the fifth exit within a minute stops the stack
        (11.0, 5),  # 4 restarts + 11 s runs: exits 1..5 span 4*11 + 7.5 = 51.5 s
        (14.0, None),  # exits 14 s apart plus backoff: never five within 60 s
    ],
)
def test_five_exits_within_a_minute_are_a_crash_loop(
    up_s: float, crash_loop_at: int | None
) -> None:
    clock = Clock()
    supervisor = _supervisor(clock)
    supervisor.started("dispatcher")
    for exit_number in range(1, 9):
        decision = _crash_after(supervisor, clock, "dispatcher", up_s)
        if exit_number == crash_loop_at:
            assert decision == CrashLoop(exits=5, window_s=60.0)
            return
        _restart_when_due(supervisor, clock, decision)
    assert crash_loop_at is None


def test_services_are_counted_apart() -> None:
    clock = Clock()
    supervisor = _supervisor(clock)
    for name in ("dispatcher", "reporter"):
        supervisor.started(name)
    for _ in range(4):
        clock.now += 1.0
        decision = supervisor.exited("dispatcher")
        assert isinstance(decision, Restart)
        clock.now += decision.delay_s
        supervisor.started("dispatcher")
    clock.now += 1.0
    assert supervisor.exited("reporter") == Restart(delay_s=0.5, restarts=1)
    assert supervisor.due() == []
    clock.now += 0.5
    assert supervisor.due() == ["reporter"]
    assert isinstance(supervisor.exited("dispatcher"), CrashLoop)


@pytest.mark.parametrize(
    ("code", "decision", "line"),
    [
        (
            -9,
            Restart(0.5, 1),
            "dispatcher exited with code -9 (SIGKILL); restart 1 in 0.5s; log: /x/dispatcher.log",
        ),
        (
            1,
            Restart(10.0, 7),
            "dispatcher exited with code 1; restart 7 in 10s; log: /x/dispatcher.log",
        ),
        (
            -15,
            CrashLoop(5, 60.0),
            "dispatcher exited with code -15 (SIGTERM), 5 exits within 60s: a crash loop, "
            "stopping the stack; log: /x/dispatcher.log",
        ),
        (None, Restart(0.5, 1), "dispatcher exited with an unknown code; restart 1 in 0.5s; "),
    ],
)
def test_console_line_names_service_code_count_and_log(
    code: int | None, decision: Restart | CrashLoop, line: str
) -> None:
    event = ServiceExit("dispatcher", code, Path("/x/dispatcher.log"), decision)
    assert describe(event).startswith(line)


def test_crash_report_shows_the_last_lines_of_the_log(tmp_path: Path) -> None:
    log = tmp_path / "reporter.log"
    log.write_text("".join(f"line {i}\n" for i in range(100)) + "OSError: address in use\n")
    event = ServiceExit("reporter", 1, log, CrashLoop(5, 60.0))
    report = crash_report(event).splitlines()
    assert report[0] == describe(event)
    assert report[1] == f"--- last 30 lines of {log} ---"
    assert report[2:-1] == [f"line {i}" for i in range(71, 100)] + ["OSError: address in use"]
    assert report[-1] == "---"


def test_log_tail_reads_a_bounded_end_of_a_huge_log(tmp_path: Path) -> None:
    log = tmp_path / "big.log"
    with log.open("wb") as out:
        out.write(b"x" * 5_000_000)  # one endless line, then the ones that matter
        out.write(b"\n" + b"".join(b"tail %d\n" % i for i in range(40)))
    assert log_tail(log) == [f"tail {i}" for i in range(10, 40)]
    assert log_tail(tmp_path / "missing.log") == []
    assert log_tail(None) == []
