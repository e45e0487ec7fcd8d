"""The recovery's pace: at most ``rate`` redeliver requests a second, no catch-up burst."""

from __future__ import annotations

from profile_api.recovery import Pacer


class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 6))
        self.now += seconds


async def test_passes_are_spaced_by_the_rate() -> None:
    time = FakeTime()
    pacer = Pacer(4.0, clock=time.clock, sleep=time.sleep)
    for _ in range(5):
        await pacer.wait()
    assert time.slept == [0.25, 0.25, 0.25, 0.25]  # the first goes at once
    assert time.now == 101.0


async def test_a_slow_pass_is_not_made_up_with_a_burst() -> None:
    time = FakeTime()
    pacer = Pacer(10.0, clock=time.clock, sleep=time.sleep)
    await pacer.wait()
    time.now += 5.0  # one publish took 5 s (the broker was away)
    await pacer.wait()
    await pacer.wait()
    assert time.slept == [0.1]  # the one after the slow pass goes at once, then the pace
