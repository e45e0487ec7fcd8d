"""profile-api throughput: profile creates and gets per second (contract §9).

The API runs as its own process (``python -m profile_api``, as in production) against
the shared PostgreSQL and broker, on a topic prefix of its own; a client keeps
``CONCURRENCY`` requests in flight over keep-alive connections.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid
from typing import Any

import aiohttp
from callbacks.db import migrate
from callbacks.kafka import ensure_topics
from callbacks_dev.devstack.processes import ChildProcess, free_port, wait_for_port

from bench.context import Context

CONCURRENCY = 32
CREATES = int(os.environ.get("BENCH_API_CREATES", "2000"))
GETS = int(os.environ.get("BENCH_API_GETS", "5000"))

PROFILE: dict[str, Any] = {
    "title": "Order SMS status",
    "channel": "sms",
    "events": ["sms.send"],
    "method": "POST",
    "url": "https://example.com/hooks/sms?src=bench",
    "headers": {"X-Api-Key": "abc"},
    "query_params": {"msg": "{{message_id}}"},
    "body_type": "json",
    "body": '{"id": "{{message_id}}", "status": "{{status}}", "to": "{{to}}"}',
    "authentication": {"type": "basic", "username": "u", "password": "p"},
}


async def _blast(
    session: aiohttp.ClientSession, count: int, request: Any, expect: int
) -> tuple[float, list[Any]]:
    """Send ``count`` requests, CONCURRENCY at a time; return (requests/s, bodies)."""
    queue = iter(range(count))
    bodies: list[Any] = []

    async def worker() -> None:
        for i in queue:
            async with request(session, i) as response:
                body = await response.json()
                if response.status != expect:
                    raise RuntimeError(f"HTTP {response.status}: {body}")
                bodies.append(body)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return count / (time.perf_counter() - started), bodies


async def run(ctx: Context) -> dict[str, float]:
    port = free_port()
    settings = ctx.settings(topic_prefix=f"benchapi{uuid.uuid4().hex[:6]}.", api_port=port)
    assert ctx.database_url is not None
    await migrate(ctx.database_url)
    await ensure_topics(settings)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLBACKS_")}
    env.update(
        {
            "CALLBACKS_DATABASE_URL": ctx.database_url,
            **settings.kafka_environment(),
            "CALLBACKS_TOPIC_PREFIX": settings.topic_prefix,
            "CALLBACKS_API_HOST": "127.0.0.1",
            "CALLBACKS_API_PORT": str(port),
            "CALLBACKS_ADMIN_TOKEN": "bench-admin-token",
            "CALLBACKS_MASTER_KEY": ctx.master_key,
            "CALLBACKS_LOG_LEVEL": "warning",
            # One account creates them all; the quota must not cut the run short.
            "CALLBACKS_MAX_PROFILES_PER_ACCOUNT": str(CREATES + 1),
        }
    )
    api = ChildProcess(
        "profile_api",
        [sys.executable, "-m", "profile_api"],
        env=env,
        log_path=ctx.workdir / "profile_api.log",
    )
    api.start()
    peak_rss = 0.0
    try:
        await asyncio.to_thread(wait_for_port, "127.0.0.1", port, 60, api.alive)
        base = f"http://127.0.0.1:{port}"
        connector = aiohttp.TCPConnector(limit=CONCURRENCY)
        async with aiohttp.ClientSession(base, connector=connector) as session:
            async with session.post(
                "/v1/accounts",
                json={"name": "bench"},
                headers={"Authorization": "Bearer bench-admin-token"},
            ) as response:
                response.raise_for_status()
                key = (await response.json())["api_key"]
            headers = {"api-key": key}
            create_rate, created = await _blast(
                session,
                CREATES,
                lambda s, _i: s.post("/v1/callback-profiles", json=PROFILE, headers=headers),
                201,
            )
            ids = [body["id"] for body in created]
            get_rate, _ = await _blast(
                session,
                GETS,
                lambda s, i: s.get(f"/v1/callback-profiles/{ids[i % len(ids)]}", headers=headers),
                200,
            )
        peak_rss = _vm_hwm_mb(api.pid)
    finally:
        api.stop()
    print(f"api: {CREATES} creates at {create_rate:,.0f}/s, {GETS} gets at {get_rate:,.0f}/s")
    print(f"api: peak RSS {peak_rss:.0f} MB")
    return {
        "api_create_per_s": round(create_rate, 1),
        "api_get_per_s": round(get_rate, 1),
        "api_rss_mb": round(peak_rss, 1),
    }


def _vm_hwm_mb(pid: int) -> float:
    """Peak resident set size (VmHWM) from /proc, in MB; 0 where unavailable."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return 0.0
    return 0.0
