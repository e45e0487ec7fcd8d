"""The waiters of one host, queued per endpoint (profile) and served round-robin.

A profile with a thousand callbacks queued delays one with a few by at most one slot
per other waiting profile: freed slots go in turn to the endpoints with waiters, in
arrival order within one.
"""

from __future__ import annotations

import asyncio
from collections import deque
from enum import Enum


class Granted(Enum):
    """How a queued waiter was given its slot (the result its future is set to)."""

    WOKEN = "woken"  # it sends its own request when its task wakes
    STARTED = "started"  # its ``start`` sent the request in the turn the slot came free


Waiter = asyncio.Future[Granted]


class FairQueue:
    """Waiters of one host, queued per endpoint (profile) and served round-robin."""

    __slots__ = ("_by_endpoint", "_owner", "_turn")

    def __init__(self) -> None:
        self._by_endpoint: dict[str, deque[Waiter]] = {}
        self._owner: dict[Waiter, str] = {}
        self._turn: deque[str] = deque()  # endpoints with waiters, next one first

    def __len__(self) -> int:
        return len(self._owner)

    def __bool__(self) -> bool:
        return bool(self._owner)

    def __contains__(self, waiter: object) -> bool:
        return waiter in self._owner

    def append(self, endpoint: str, waiter: Waiter) -> None:
        queue = self._by_endpoint.get(endpoint)
        if queue is None:
            queue = self._by_endpoint[endpoint] = deque()
            self._turn.append(endpoint)
        queue.append(waiter)
        self._owner[waiter] = endpoint

    def popleft(self) -> tuple[str, Waiter]:
        """The oldest waiter of the endpoint whose turn it is, and that endpoint."""
        endpoint = self._turn.popleft()
        queue = self._by_endpoint[endpoint]
        waiter = queue.popleft()
        if queue:
            self._turn.append(endpoint)
        else:
            del self._by_endpoint[endpoint]
        del self._owner[waiter]
        return endpoint, waiter

    def pop(self) -> Waiter:
        """The newest waiter of the endpoint with the most waiters (shedding)."""
        endpoint = max(self._by_endpoint, key=lambda e: len(self._by_endpoint[e]))
        waiter = self._by_endpoint[endpoint][-1]
        self.remove(waiter)
        return waiter

    def remove(self, waiter: Waiter) -> None:
        endpoint = self._owner.pop(waiter)
        queue = self._by_endpoint[endpoint]
        queue.remove(waiter)
        if not queue:
            del self._by_endpoint[endpoint]
            self._turn.remove(endpoint)
