"""How long a retry loop waits between tries, and a loop that retries one call.

A ``Backoff`` walks a sequence of delays and then stays at the last one, so a loop that
keeps failing waits at most that long between tries and never gives up on its own;
``reset`` starts the sequence over after a success. It sleeps through the function it is
given (``asyncio.sleep`` by default), so a test sees every delay without waiting.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]

# The delays of a database write that must land before offsets are committed: quick at
# first (a dropped connection is replaced at once), then every 5 s while the database
# is away.
STORE_RETRY_S = (0.1, 0.5, 1.0, 2.0, 5.0)


class Backoff:
    """The next delay of a retry loop: ``delays_s`` in turn, then the last one for ever."""

    def __init__(self, delays_s: Sequence[float], *, sleep: Sleep = asyncio.sleep) -> None:
        if not delays_s or min(delays_s) < 0:
            raise ValueError("a backoff needs at least one delay, none negative")
        self._delays = tuple(delays_s)
        self._sleep = sleep
        self._index = 0

    @classmethod
    def doubling(cls, first_s: float, max_s: float, *, sleep: Sleep = asyncio.sleep) -> Backoff:
        """``first_s``, doubling each time up to ``max_s`` (``0 < first_s <= max_s``)."""
        if not 0 < first_s <= max_s:
            raise ValueError("a doubling backoff needs 0 < first_s <= max_s")
        delays = [first_s]
        while delays[-1] < max_s:
            delays.append(min(delays[-1] * 2, max_s))
        return cls(delays, sleep=sleep)

    @property
    def next_s(self) -> float:
        """The delay the next ``wait`` sleeps."""
        return self._delays[self._index]

    async def wait(self) -> None:
        """Sleep the next delay and move on to the one after it."""
        delay = self.next_s
        self._index = min(self._index + 1, len(self._delays) - 1)
        await self._sleep(delay)

    def reset(self) -> None:
        """Start again from the first delay (the loop succeeded)."""
        self._index = 0


async def retry_until_done(
    call: Callable[[], Awaitable[T]],
    *,
    retry_on: tuple[type[BaseException], ...],
    backoff: Backoff,
    on_error: Callable[[BaseException, float], None],
    give_up_on: tuple[type[BaseException], ...] = (),
) -> T:
    """Await ``call()`` until it returns, and return its result.

    An exception of ``retry_on`` is reported to ``on_error(exc, delay_s)`` (count it, log
    it) before waiting ``delay_s`` and calling again. An exception of ``give_up_on`` (a
    kind a retry cannot help, even where ``retry_on`` names its base class) and any other
    exception propagate at once, ``CancelledError`` included.
    """
    while True:
        try:
            return await call()
        except give_up_on:
            raise
        except retry_on as exc:
            on_error(exc, backoff.next_s)
            await backoff.wait()
