"""callbacks.health: readiness checks are round trips, bounded, and any failure is "not ready"."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from callbacks.health import database_and_broker, probe
from structlog.testing import capture_logs


class Pool:
    def __init__(self, error: Exception | None = None) -> None:
        self.error = error
        self.queries: list[str] = []

    async def fetchval(self, query: str) -> Any:
        self.queries.append(query)
        if self.error is not None:
            raise self.error
        return 1


class Client:
    def __init__(self, error: Exception | None = None) -> None:
        self.error = error
        self.requests = 0

    async def fetch_all_metadata(self) -> object:
        self.requests += 1
        if self.error is not None:
            raise self.error
        return object()


class Producer:
    def __init__(self, error: Exception | None = None) -> None:
        self.client = Client(error)


async def _ok() -> None:
    return None


async def test_a_probe_that_finishes_is_ready() -> None:
    with capture_logs() as logs:
        assert await probe(_ok) is True
    assert logs == []


@pytest.mark.parametrize(
    "error", [OSError("refused"), ConnectionResetError("reset"), RuntimeError("odd"), KeyError("x")]
)
async def test_a_probe_that_fails_is_not_ready_and_says_why(error: Exception) -> None:
    async def failing() -> None:
        raise error

    with capture_logs() as logs:
        assert await probe(failing) is False
    assert [(e["event"], e["log_level"], e["error"]) for e in logs] == [
        ("readiness_check_failed", "warning", repr(error))
    ]


async def test_a_probe_that_hangs_is_not_ready_after_its_timeout() -> None:
    never = asyncio.Event()

    async def hanging() -> None:
        await never.wait()

    with capture_logs() as logs:
        assert await probe(hanging, timeout_s=0.01) is False
    assert [e["event"] for e in logs] == ["readiness_check_failed"]
    assert "TimeoutError" in logs[0]["error"]


async def test_a_cancelled_probe_is_cancelled_not_unready() -> None:
    started, never = asyncio.Event(), asyncio.Event()

    async def hanging() -> None:
        started.set()
        await never.wait()

    task = asyncio.create_task(probe(hanging))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


@pytest.mark.parametrize(
    ("pool", "producer", "expected"),
    [
        (Pool(), Producer(), {"database": True, "broker": True}),
        (Pool(OSError("db down")), Producer(), {"database": False, "broker": True}),
        (Pool(), Producer(OSError("broker down")), {"database": True, "broker": False}),
        (Pool(OSError()), Producer(OSError()), {"database": False, "broker": False}),
    ],
)
async def test_database_and_broker_names_each_check(
    pool: Pool, producer: Producer, expected: dict[str, bool]
) -> None:
    ready = database_and_broker(lambda: pool, lambda: producer)
    with capture_logs():
        assert await ready() == expected
    # Each check is a real round trip, every time it is asked.
    with capture_logs():
        await ready()
    assert pool.queries == ["SELECT 1", "SELECT 1"]
    assert producer.client.requests == 2


async def test_resources_not_opened_yet_are_not_ready() -> None:
    resources: dict[str, Any] = {}
    ready = database_and_broker(lambda: resources["pool"], lambda: resources["producer"])
    with capture_logs() as logs:
        assert await ready() == {"database": False, "broker": False}
    assert [e["event"] for e in logs] == ["readiness_check_failed"] * 2
    resources.update(pool=Pool(), producer=Producer())
    assert await ready() == {"database": True, "broker": True}
