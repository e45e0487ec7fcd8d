"""Adaptive per-host concurrency (issue 9): does the dispatcher find a receiver's capacity?

A sink process serves two endpoints: *capped* answers ``429`` whenever more than
``CAP`` requests are in flight and otherwise takes ``SERVICE_S`` per request (capacity
``CAP / SERVICE_S`` per second); *healthy* answers 200 after ``HEALTHY_S``. The
dispatcher starts every host at the ceiling (64), so it must cut the capped host's
limit down, hover near ``CAP``, and keep the host fed from the callbacks it parked.

Three phases on one broker: the *oracle* (a fixed cap of exactly ``CAP``: what a perfect
static setting achieves here), the healthy host *alone*, and both hosts *mixed*. Figures
(the last ``name: value`` lines):

- the capped host's delivered rate once converged, as a share of its capacity and of
  the oracle. *Converged*: from one second after the limit came within 2x of ``CAP``
  and the healthy host finished (until then the two share the dispatcher's CPU) until
  90 % of its callbacks were delivered (the rest is the tail of callbacks refused with
  ``429``, which wait their retry delays with nothing left to deliver beside them).
  Also its rate over the whole run up to that point, and beside the healthy host;
- how fast: seconds until the limit came within 2x of ``CAP`` (its delivered rate is
  no measure of that: at the ceiling, the host takes ``CAP`` and refuses the rest);
- the share of its requests refused with ``429`` (over the run, most of them while the
  limit comes down from the ceiling, and once converged) and how often a callback was
  parked;
- the healthy host's rate alone and beside the capped one, and, while both run, the
  dispatcher's total delivered rate and its parking rate (every parked callback is a
  record produced and read back): the dispatcher is CPU-bound on a 2-core machine, so
  a healthy host that loses throughput while the total holds lost it to shared CPU,
  not to a starved in-flight budget.

``async def run(ctx)`` like every module of ``bench``; ``python -m bench.aimd`` runs it
alone on its own broker.
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import aiohttp
import orjson
from aiohttp import web
from callbacks.kafka import ensure_topics, make_producer
from callbacks.logging import configure_logging
from callbacks.models.profiles import ProfileRecord, SigningSecret, seal_secrets
from callbacks.secretbox import SecretBox
from callbacks.settings import Settings
from callbacks.signing import generate_secret
from callbacks_dev.devstack.processes import ChildProcess, free_port, wait_for_port
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
DEFERRED = "callbacks_deliveries_deferred_total"
CONVERGED_SHARE = 0.9  # of the capped callbacks: the rest is the 429 retry tail
SETTLE_S = 1.0
ACCOUNT = "acc-bench-aimd"


# --- the sink process ------------------------------------------------------------------


def _sink_app(capped: bool, stats: dict[str, list[float] | int]) -> web.Application:
    in_flight = 0

    async def hook(request: web.Request) -> web.Response:
        nonlocal in_flight
        await request.read()
        if capped and in_flight >= CAP:
            stats["refused"].append(time.time())  # type: ignore[union-attr]
            return web.Response(status=429, text="slow down")
        in_flight += 1
        try:
            await asyncio.sleep(SERVICE_S if capped else HEALTHY_S)
        finally:
            in_flight -= 1
        stats["ok"].append(time.time())  # type: ignore[union-attr]
        return web.Response(text="ok")

    async def get_stats(request: web.Request) -> web.Response:
        # Counts while a phase runs (the dispatcher shares this benchmark's process: a
        # poll that parsed every timestamp so far cost it a few percent of its CPU).
        if "counts" in request.query:
            counts = {name: len(times) for name, times in stats.items()}  # type: ignore[arg-type]
            return web.Response(body=orjson.dumps(counts), content_type="application/json")
        return web.Response(body=orjson.dumps(stats), content_type="application/json")

    app = web.Application()
    app.router.add_post("/hook", hook)
    app.router.add_get("/stats", get_stats)
    return app


async def _serve(capped_port: int, healthy_port: int) -> None:
    runners = []
    for capped, port in ((True, capped_port), (False, healthy_port)):
        runner = web.AppRunner(_sink_app(capped, {"ok": [], "refused": []}), access_log=None)
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


async def publish_profiles(settings: Settings, ports: Sequence[int]) -> list[ProfileRecord]:
    """Create the topics and publish one profile per sink port (here: capped, healthy),
    in port order."""
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
    finally:
        await producer.stop()
    return profiles


def bench_settings(ctx: Context, name: str, **overrides: object) -> Settings:
    """Settings of one phase: its own topics, a fast retry schedule, loopback allowed."""
    return ctx.settings(
        topic_prefix=f"bench-{name}-{uuid.uuid4().hex[:6]}.",
        allow_private_targets=True,
        retry_schedule="1s,2s,4s,8s,16s," + ",".join(["30s"] * 20),
        delivery_timeout="5s",
        consumer_session_timeout="2s",
        **overrides,
    )


async def _stats(
    session: aiohttp.ClientSession, port: int, *, counts: bool = False
) -> dict[str, Any]:
    query = "?counts" if counts else ""
    async with session.get(f"http://127.0.0.1:{port}/stats{query}") as response:
        result: dict[str, Any] = await response.json()
        return result


class Samples:
    """What the benchmark saw of the dispatcher over time (unix time, value)."""

    def __init__(self) -> None:
        self.limits: list[tuple[float, float]] = []  # the capped host's limit
        self.deferred: list[tuple[float, float]] = []  # callbacks parked so far


async def _phase(
    settings: Settings, ports: tuple[int, int], counts: tuple[int, int]
) -> tuple[dict[str, Any], dict[str, Any], Samples]:
    """Deliver ``counts`` events to (capped, healthy); return both sinks' stats and the
    dispatcher's samples."""
    profiles = await publish_profiles(settings, ports)
    producer = make_producer(settings)
    await producer.start()
    try:
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
    # The sink counts across phases: this phase is done when both counts grew by its
    # events (comparing totals ended the mixed phase once the capped host had delivered
    # as many as the oracle phase had sent it: half its backlog).
    async with aiohttp.ClientSession() as session:
        start = [await _stats(session, port, counts=True) for port in ports]
    before = (start[0]["ok"], start[1]["ok"])
    dispatcher = Dispatcher(settings)
    task = asyncio.create_task(dispatcher.run())
    samples = Samples()
    capped_host = f"127.0.0.1:{ports[0]}"
    metric = dispatcher.registry.get_sample_value
    try:
        async with aiohttp.ClientSession() as session:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                now = time.time()
                limit = metric(LIMIT_GAUGE, {"host": capped_host})
                if limit is not None:
                    samples.limits.append((now, limit))
                samples.deferred.append((now, metric(DEFERRED, {"reason": "host_busy"}) or 0.0))
                capped, healthy = [await _stats(session, port, counts=True) for port in ports]
                if capped["ok"] - before[0] >= counts[0] and healthy["ok"] - before[1] >= counts[1]:
                    break
                await asyncio.sleep(0.1)
    finally:
        dispatcher.request_stop()
        await asyncio.wait_for(task, 30)
    samples.deferred.append((time.time(), metric(DEFERRED, {"reason": "host_busy"}) or 0.0))
    async with aiohttp.ClientSession() as session:
        capped, healthy = [await _stats(session, port) for port in ports]
    return capped, healthy, samples


def _rate(times: list[float]) -> float:
    return (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else 0.0


def _between(times: list[float], start: float, end: float) -> float:
    """Events per second in [start, end]."""
    return sum(1 for t in times if start <= t <= end) / (end - start) if end > start else 0.0


def _share(refused: list[float], ok: list[float], start: float, end: float) -> float:
    """The share of requests in [start, end] that were refused."""
    no = sum(1 for t in refused if start <= t <= end)
    yes = sum(1 for t in ok if start <= t <= end)
    return no / (no + yes) if no + yes else 0.0


def _at(series: list[tuple[float, float]], when: float) -> float:
    """The last sampled value at or before ``when`` (0 before the first sample)."""
    return next((v for t, v in reversed(series) if t <= when), 0.0)


def start_sinks(ctx: Context, name: str) -> tuple[ChildProcess, tuple[int, int]]:
    """The sink process (capped and healthy endpoints) on two free ports, listening;
    the caller stops it."""
    ports = (free_port(), free_port())
    sink = ChildProcess(
        name,
        [sys.executable, "-m", "bench.aimd", "sink", str(ports[0]), str(ports[1])],
        log_path=ctx.workdir / f"{name}.log",
    )
    sink.start()
    try:
        for port in ports:
            wait_for_port("127.0.0.1", port, 15, sink.alive)
    except BaseException:
        sink.stop()
        raise
    return sink, ports


async def run(ctx: Context) -> dict[str, float]:
    configure_logging("console", "warning")  # one line per callback would drown the figures
    sink, ports = start_sinks(ctx, "aimd-sink")
    try:

        def settings(name: str, ceiling: int = 64) -> Settings:
            return bench_settings(ctx, f"aimd-{name}", max_concurrency_per_host=ceiling)

        # The oracle: a fixed cap of exactly CAP, what a perfect static setting achieves.
        oracle, _, _ = await _phase(settings("oracle", CAP), ports, (ORACLE_EVENTS, 0))
        _, alone, _ = await _phase(settings("alone"), ports, (0, HEALTHY_EVENTS))
        capped, mixed, samples = await _phase(
            settings("mixed"), ports, (CAPPED_EVENTS, HEALTHY_EVENTS)
        )
    finally:
        sink.stop()
    # The sink keeps counting across phases: each phase's deliveries follow the last's.
    return _figures(
        capped["ok"][len(oracle["ok"]) :],
        capped["refused"][len(oracle["refused"]) :],
        mixed["ok"][len(alone["ok"]) :],
        oracle["ok"],
        alone["ok"],
        samples,
    )


def _figures(
    capped: list[float],
    refused: list[float],
    healthy: list[float],
    oracle: list[float],
    alone: list[float],
    samples: Samples,
) -> dict[str, float]:
    capacity = CAP / SERVICE_S
    ok = sorted(capped)
    fixed_cap = _rate([t for t in oracle if t < oracle[-1] - WINDOW_S])
    start = min(ok[0], healthy[0])
    settled = next((t for t, limit in samples.limits if limit <= 2 * CAP), None)
    backlog_end = ok[int(len(ok) * CONVERGED_SHARE) - 1]
    converged_from = max(settled or start, healthy[-1]) + SETTLE_S
    converged = _between(ok, converged_from, backlog_end)
    steady_limits = [v for t, v in samples.limits if converged_from <= t <= backlog_end]
    both = (healthy[0], healthy[-1])
    both_s = both[1] - both[0]
    parked = samples.deferred[-1][1]
    mixed_parked = _at(samples.deferred, both[1]) - _at(samples.deferred, both[0])
    healthy_mixed = _rate(healthy)
    healthy_alone = _rate(alone)
    return {
        "aimd_capped_capacity_per_s": capacity,
        "aimd_capped_fixed_cap_per_s": round(fixed_cap, 1),
        "aimd_capped_delivered_per_s": round(converged, 1),
        "aimd_capped_share_of_fixed_cap": round(converged / fixed_cap, 3),
        "aimd_capped_share_of_capacity": round(converged / capacity, 3),
        "aimd_capped_overall_per_s": round(_between(ok, start, backlog_end), 1),
        "aimd_capped_beside_healthy_per_s": round(_between(ok, *both), 1),
        "aimd_limit_within_2x_cap_s": round(settled - samples.limits[0][0], 2) if settled else -1.0,
        "aimd_limit_mean_steady": round(sum(steady_limits) / len(steady_limits), 1)
        if steady_limits
        else -1.0,
        "aimd_capped_refused_share": round(len(refused) / (len(refused) + len(ok)), 3),
        "aimd_capped_refused_share_steady": round(
            _share(refused, ok, converged_from, backlog_end), 3
        ),
        "aimd_capped_parked_per_callback": round(parked / CAPPED_EVENTS, 2),
        "aimd_healthy_alone_per_s": round(healthy_alone, 1),
        "aimd_healthy_mixed_per_s": round(healthy_mixed, 1),
        "aimd_healthy_mixed_share": round(healthy_mixed / healthy_alone, 3),
        "aimd_mixed_total_per_s": round(_between(ok, *both) + len(healthy) / both_s, 1),
        "aimd_mixed_parked_per_s": round(mixed_parked / both_s, 1),
    }


def _main() -> None:
    if sys.argv[1:2] == ["sink"]:
        asyncio.run(_serve(int(sys.argv[2]), int(sys.argv[3])))
        return
    import tempfile
    from pathlib import Path

    from callbacks_dev.devstack.broker import Broker

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
