"""callbacks.backoff: the delays of a retry loop, seen through an injected sleep."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from callbacks.backoff import STORE_RETRY_S, Backoff, retry_until_done


class Sleeps:
    """A sleep that returns at once and remembers what it was asked to wait."""

    def __init__(self) -> None:
        self.asked: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.asked.append(seconds)


async def _waits(backoff: Backoff, times: int) -> None:
    for _ in range(times):
        await backoff.wait()


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda s: Backoff(STORE_RETRY_S, sleep=s), [0.1, 0.5, 1.0, 2.0, 5.0, 5.0, 5.0]),
        (
            lambda s: Backoff.doubling(0.2, 5.0, sleep=s),
            [0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0],
        ),
        (lambda s: Backoff.doubling(1.0, 1.0, sleep=s), [1.0] * 7),
        (lambda s: Backoff([0.0], sleep=s), [0.0] * 7),
    ],
)
async def test_the_delays_run_in_turn_then_stay_at_the_last(
    make: Callable[[Sleeps], Backoff], expected: list[float]
) -> None:
    sleeps = Sleeps()
    backoff = make(sleeps)
    await _waits(backoff, 7)
    assert sleeps.asked == expected


async def test_next_s_names_the_delay_wait_sleeps_and_reset_starts_over() -> None:
    sleeps = Sleeps()
    backoff = Backoff.doubling(0.2, 5.0, sleep=sleeps)
    seen = []
    for _ in range(3):
        seen.append(backoff.next_s)
        await backoff.wait()
    assert seen == sleeps.asked == [0.2, 0.4, 0.8]
    backoff.reset()
    assert backoff.next_s == 0.2
    await backoff.wait()
    assert sleeps.asked[-1] == 0.2


@pytest.mark.parametrize(
    "make",
    [
        lambda: Backoff([]),
        lambda: Backoff([0.1, -1.0]),
        lambda: Backoff.doubling(0.0, 5.0),
        lambda: Backoff.doubling(6.0, 5.0),
    ],
)
def test_a_backoff_without_sensible_delays_is_refused(make: Callable[[], Backoff]) -> None:
    with pytest.raises(ValueError, match="backoff"):
        make()


def _failing(errors: list[BaseException], result: str = "done") -> Callable[[], Awaitable[str]]:
    """A call that raises each of ``errors`` in turn, then returns ``result``."""
    pending = list(errors)

    async def call() -> str:
        if pending:
            raise pending.pop(0)
        return result

    return call


async def test_retry_until_done_reports_each_failure_with_its_delay_then_returns() -> None:
    sleeps = Sleeps()
    reported: list[tuple[str, float]] = []
    result = await retry_until_done(
        _failing([OSError("down"), ConnectionResetError("reset"), OSError("still")]),
        retry_on=(OSError,),
        backoff=Backoff(STORE_RETRY_S, sleep=sleeps),
        on_error=lambda exc, delay: reported.append((str(exc), delay)),
    )
    assert result == "done"
    assert reported == [("down", 0.1), ("reset", 0.5), ("still", 1.0)]
    assert sleeps.asked == [0.1, 0.5, 1.0]


class Refused(OSError):
    """A kind a retry cannot help, below a kind that is retried."""


@pytest.mark.parametrize(
    "error",
    [Refused("the data"), ValueError("not retried"), asyncio.CancelledError()],
)
async def test_what_retry_until_done_does_not_retry_propagates_at_once(
    error: BaseException,
) -> None:
    sleeps = Sleeps()
    reported: list[BaseException] = []
    with pytest.raises(type(error)):
        await retry_until_done(
            _failing([OSError("first"), error]),
            retry_on=(OSError,),
            give_up_on=(Refused,),
            backoff=Backoff(STORE_RETRY_S, sleep=sleeps),
            on_error=lambda exc, _delay: reported.append(exc),
        )
    assert [str(e) for e in reported] == ["first"]  # the later error was not retried
    assert sleeps.asked == [0.1]
