"""Adaptive per-host concurrency (issue 9): does the dispatcher find a receiver's capacity?

A sink process serves two endpoints: *capped* answers ``429`` whenever more than
``CAP`` requests are in flight and otherwise takes ``SERVICE_S`` per request (capacity
``CAP / SERVICE_S`` per second); *healthy* answers 200 after ``HEALTHY_S``. The
dispatcher starts every host at the ceiling (64), so it must cut the capped host's
limit down and then hover near ``CAP``. Figures: the capped host's delivered rate as a
share of its capacity (and of a fixed cap of exactly ``CAP``) once converged, how long
the limit took to come down, the share of its requests refused with 429, and the
healthy host's throughput alone and beside the capped one. ``async def run(ctx)`` like
every module of ``bench``; ``python -m bench.aimd`` runs it alone on its own broker.
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import aiohttp
import orjson
from aiohttp import web
from callbacks.devstack.processes import ChildProcess, free_port, wait_for_port
from callbacks.kafka import ensure_topics, make_producer
from callbacks.logging import configure_logging
from callbacks.models.profiles import ProfileRecord, SigningSecret, seal_secrets
from callbacks.secretbox import SecretBox
from callbacks.settings import Settings
from callbacks.signing import generate_secret
from dispatcher import Dispatcher

from bench.context import Context

CAP = 8
SERVICE_S = 0.02  # capacity 8 / 0.02 s = 400 callbacks/s
HEALTHY_S = 0.002
CAPPED_EVENTS = 3000
ORACLE_EVENTS = 1500
HEALTHY_EVENTS = 3000
WINDOW_S = 0.5  # the last one of a run is its tail, left out of rates
LIMIT_GAUGE = "callbacks_endpoint_concurrency_limit"
ACCOUNT = "acc-bench-aimd"


# --- the sink process ------------------------------------------------------------------


def _sink_app(capped: bool, stats: dict[str, list[float] | int]) -> web.Application:
    in_flight = 0

    async def hook(request: web.Request) -> web.Response:
        nonlocal in_flight
        await request.read()
        if capped and in_flight >= CAP:
            stats["refused"] += 1  # type: ignore[operator]
            return web.Response(status=429, text="slow down")
        in_flight += 1
        try:
            await asyncio.sleep(SERVICE_S if capped else HEALTHY_S)
        finally:
            in_flight -= 1
        stats["ok"].append(time.time())  # type: ignore[union-attr]
        return web.Response(text="ok")

    async def get_stats(_request: web.Request) -> web.Response:
        return web.Response(body=orjson.dumps(stats), content_type="application/json")

    app = web.Application()
    app.router.add_post("/hook", hook)
    app.router.add_get("/stats", get_stats)
    return app


async def _serve(capped_port: int, healthy_port: int) -> None:
    runners = []
    for capped, port in ((True, capped_port), (False, healthy_port)):
        runner = web.AppRunner(_sink_app(capped, {"ok": [], "refused": 0}), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        runners.append(runner)
    await asyncio.Event().wait()


# --- the benchmark ---------------------------------------------------------------------


def _profile(url: str) -> ProfileRecord:
    now = datetime.now(UTC)
    return ProfileRecord(
        id=str(uuid.uuid4()),
        account_id=ACCOUNT,
        title="bench aimd",
        channel="sms",
        events=["sms.send"],
        url=url,
        body_type="json",
        body='{"id": "{{message_id}}", "status": "{{status}}"}',
        created_at=now,
        updated_at=now,
        signing_secrets=[SigningSecret(secret=generate_secret(), created_at=now)],
    )


def _event(profile_id: str) -> tuple[bytes, bytes]:
    message_id = uuid.uuid4().hex
    value = {
        "event_id": uuid.uuid4().hex,
        "event": "sms.send",
        "account_id": ACCOUNT,
        "callback_profile_id": profile_id,
        "occurred_at": datetime.now(UTC).isoformat(),
        "data": {"message_id": message_id, "to": "+919876543210", "status": "delivered"},
    }
    return message_id.encode(), orjson.dumps(value)


async def _stats(session: aiohttp.ClientSession, port: int) -> dict[str, Any]:
    async with session.get(f"http://127.0.0.1:{port}/stats") as response:
        result: dict[str, Any] = await response.json()
        return result


async def _phase(
    settings: Settings, ports: tuple[int, int], counts: tuple[int, int]
) -> tuple[dict[str, Any], dict[str, Any], list[tuple[float, float]]]:
    """Deliver ``counts`` events to (capped, healthy); return both sinks' stats and the
    capped host's limit sampled over time (unix time, limit)."""
    await ensure_topics(settings)
    profiles = [_profile(f"http://127.0.0.1:{port}/hook") for port in ports]
    box = SecretBox(settings.master_key_bytes())
    producer = make_producer(settings)
    await producer.start()
    try:
        for profile in profiles:
            await producer.send_and_wait(
                settings.topics.profiles,
                seal_secrets(profile, box.seal).model_dump_json().encode(),
                key=profile.id.encode(),
            )
        topic = settings.topics.source_for("sms.send")
        futures = []
        for i in range(max(counts)):
            for profile, count in zip(profiles, counts, strict=True):
                if i < count:
                    key, value = _event(profile.id)
                    futures.append(await producer.send(topic, value, key=key))
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    dispatcher = Dispatcher(settings)
    task = asyncio.create_task(dispatcher.run())
    limits: list[tuple[float, float]] = []
    capped_host = f"127.0.0.1:{ports[0]}"
    try:
        async with aiohttp.ClientSession() as session:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                limit = dispatcher.registry.get_sample_value(LIMIT_GAUGE, {"host": capped_host})
                if limit is not None:
                    limits.append((time.time(), limit))
                capped, healthy = [await _stats(session, port) for port in ports]
                if len(capped["ok"]) >= counts[0] and len(healthy["ok"]) >= counts[1]:
                    break
                await asyncio.sleep(0.1)
    finally:
        dispatcher.request_stop()
        await asyncio.wait_for(task, 30)
    return capped, healthy, limits


def _rate(times: list[float]) -> float:
    return (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else 0.0


async def run(ctx: Context) -> dict[str, float]:
    configure_logging("console", "warning")  # one line per callback would drown the figures
    capacity = CAP / SERVICE_S
    ports = (free_port(), free_port())
    sink = ChildProcess(
        "aimd-sink",
        [sys.executable, "-m", "bench.aimd", "sink", str(ports[0]), str(ports[1])],
        log_path=ctx.workdir / "aimd-sink.log",
    )
    sink.start()
    try:
        for port in ports:
            wait_for_port("127.0.0.1", port, 15, sink.alive)

        def settings(name: str, ceiling: int = 64) -> Settings:
            return ctx.settings(
                topic_prefix=f"bench-aimd-{name}-{uuid.uuid4().hex[:6]}.",
                allow_private_targets=True,
                retry_schedule="1s,2s,4s,8s,16s," + ",".join(["30s"] * 20),
                delivery_timeout="5s",
                consumer_session_timeout="2s",
                max_concurrency_per_host=ceiling,
            )

        # The oracle: a fixed cap of exactly CAP, what a perfect static setting achieves.
        oracle, _, _ = await _phase(settings("oracle", CAP), ports, (ORACLE_EVENTS, 0))
        _, alone, _ = await _phase(settings("alone"), ports, (0, HEALTHY_EVENTS))
        capped, mixed, limits = await _phase(
            settings("mixed"), ports, (CAPPED_EVENTS, HEALTHY_EVENTS)
        )
    finally:
        sink.stop()
    ok: list[float] = capped["ok"]
    # Steady state: the second half of the capped host's deliveries, tail window left out.
    steady = [t for t in ok[len(ok) // 2 :] if t < ok[-1] - WINDOW_S]
    achievable = _rate([t for t in oracle["ok"] if t < oracle["ok"][-1] - WINDOW_S])
    limit_at = next((t for t, limit in limits if limit <= 2 * CAP), None)
    first_limit = limits[0][0] if limits else 0.0
    steady_limits = [limit for t, limit in limits if steady and t >= steady[0]]
    return {
        "aimd_capped_capacity_per_s": capacity,
        "aimd_capped_fixed_cap_per_s": round(achievable, 1),
        "aimd_capped_delivered_per_s": round(_rate(steady), 1),
        "aimd_capped_share_of_fixed_cap": round(_rate(steady) / achievable, 3),
        "aimd_capped_share_of_capacity": round(_rate(steady) / capacity, 3),
        "aimd_limit_within_2x_cap_s": round(limit_at - first_limit, 2) if limit_at else -1.0,
        "aimd_limit_mean_steady": round(sum(steady_limits) / len(steady_limits), 1)
        if steady_limits
        else -1.0,
        "aimd_capped_refused_share": round(capped["refused"] / (capped["refused"] + len(ok)), 3),
        "aimd_healthy_alone_per_s": round(_rate(alone["ok"]), 1),
        "aimd_healthy_mixed_per_s": round(_rate(mixed["ok"][-HEALTHY_EVENTS:]), 1),
    }


def _main() -> None:
    if sys.argv[1:2] == ["sink"]:
        asyncio.run(_serve(int(sys.argv[2]), int(sys.argv[3])))
        return
    import tempfile
    from pathlib import Path

    from callbacks.devstack.broker import Broker

    with tempfile.TemporaryDirectory(prefix="callbacks-bench-aimd-") as tmp:
        broker = Broker(log_path=Path(tmp) / "broker.log")
        broker.start()
        try:
            started = time.monotonic()
            figures = asyncio.run(run(Context(broker.bootstrap, Path(tmp))))
        finally:
            broker.stop()
    print(f"bench.aimd: finished in {time.monotonic() - started:.0f} s")
    for name, value in figures.items():
        print(f"{name}: {value}")


if __name__ == "__main__":
    _main()
