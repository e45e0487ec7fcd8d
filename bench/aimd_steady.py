"""Adaptive concurrency under steady load (issue 9): does a healthy host keep its
throughput while another host is overloaded?

``bench.aimd`` starts from a backlog, where the dispatcher runs flat out and every
callback it parks for the throttled host is CPU the healthy host does not get. Here
events arrive the way they do in production, at fixed rates: the healthy host gets
``HEALTHY_RATE`` events/s, first alone and then beside the capped host of
``bench.aimd`` (capacity ``CAP / SERVICE_S`` = 400/s), which is offered
``CAPPED_RATE`` events/s, half again what it can take. The dispatcher runs in this
process, as in ``bench.aimd``; both sinks are that module's sink process.

Figures (the last ``name: value`` lines): the healthy host's delivered rate alone and
beside the overloaded host, measured over the same window of each phase (from
``WARM_S`` after the first event until the last one was produced), the share it kept,
how long after the last event it had everything (its lag), and the capped host's
delivered rate over the window as a share of its capacity.

``BENCH_ONLY=aimd_steady python -m bench`` runs it alone (~30 s).
"""

from __future__ import annotations

import asyncio
import sys
import time

import aiohttp
from callbacks.kafka import make_producer
from callbacks.logging import configure_logging
from callbacks.settings import Settings
from dispatcher import Dispatcher

from bench.aimd import (
    CAP,
    LIMIT_GAUGE,
    SERVICE_S,
    _event,
    _stats,
    bench_settings,
    publish_profiles,
    start_sinks,
)
from bench.context import Context

HEALTHY_RATE = 1000
CAPPED_RATE = 600
SECONDS = 12.0
WARM_S = 2.0  # the consumer group joins and the capped host's limit comes down
TICK_S = 0.01


async def _produce_paced(settings: Settings, targets: list[tuple[str, int]]) -> tuple[float, int]:
    """Offer each (profile id, events/s) for ``SECONDS`` from a child process (as a
    gateway would: producing 1,600 events/s here took ~12 % of the dispatcher's CPU and
    lengthened its loop turns); returns the start time (unix) and how many events the
    first target got."""
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.aimd_steady",
        "produce",
        settings.kafka_bootstrap,
        settings.topics.source_for("sms.send"),
        *(f"{profile_id}:{rate}" for profile_id, rate in targets),
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await child.communicate()
    if child.returncode != 0:
        raise RuntimeError(f"the event producer exited with {child.returncode}")
    started_wall = float(out.decode().split()[-1])
    return started_wall, int(SECONDS / TICK_S) * int(targets[0][1] * TICK_S)


async def _produce(bootstrap: str, topic: str, targets: list[tuple[str, int]]) -> float:
    """The child's work: ``SECONDS`` of paced events; returns when it started (unix)."""
    producer = make_producer(
        Settings.model_validate({"kafka_bootstrap": bootstrap, "kafka_idempotent_producer": False})
    )
    await producer.start()
    futures = []
    started_wall, started = time.time(), time.monotonic()
    try:
        for tick in range(int(SECONDS / TICK_S)):
            for profile_id, rate in targets:
                for _ in range(int(rate * TICK_S)):
                    key, value = _event(profile_id)
                    futures.append(await producer.send(topic, value, key=key))
            await asyncio.sleep(max(started + (tick + 1) * TICK_S - time.monotonic(), 0))
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return started_wall


async def _wait_ready(dispatcher: Dispatcher, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while dispatcher.cache is None or not dispatcher.cache.ready.is_set():
        if time.monotonic() > deadline:
            raise TimeoutError("dispatcher not ready")
        await asyncio.sleep(0.05)


async def _phase(settings: Settings, ports: tuple[int, int], with_capped: bool) -> dict[str, float]:
    """One phase: the healthy host at ``HEALTHY_RATE``, and the capped host at
    ``CAPPED_RATE`` too when ``with_capped``; returns what each sink saw and the capped
    host's mean concurrency limit over the window."""
    capped, healthy = await publish_profiles(settings, ports)
    targets = [(healthy.id, HEALTHY_RATE)]
    if with_capped:
        targets.append((capped.id, CAPPED_RATE))
    dispatcher = Dispatcher(settings)
    task = asyncio.create_task(dispatcher.run())
    limits: list[tuple[float, float]] = []

    async def sample_limit() -> None:
        labels = {"host": f"127.0.0.1:{ports[0]}"}
        while True:
            limit = dispatcher.registry.get_sample_value(LIMIT_GAUGE, labels)
            if limit is not None:
                limits.append((time.time(), limit))
            await asyncio.sleep(0.1)

    sampler = asyncio.create_task(sample_limit())
    try:
        await _wait_ready(dispatcher)
        async with aiohttp.ClientSession() as session:
            before = (await _stats(session, ports[1], counts=True))["ok"]
            started, offered = await _produce_paced(settings, targets)
            ended = time.time()
            deadline = time.monotonic() + 90
            while (await _stats(session, ports[1], counts=True))["ok"] - before < offered:
                if time.monotonic() > deadline:
                    raise TimeoutError("the healthy host did not get all its callbacks")
                await asyncio.sleep(0.05)
            capped_ok, healthy_ok = [(await _stats(session, p))["ok"] for p in ports]
    finally:
        sampler.cancel()
        dispatcher.request_stop()
        await asyncio.wait_for(task, 30)
    window = (started + WARM_S, ended)
    span = window[1] - window[0]
    in_window = [limit for at, limit in limits if window[0] <= at <= window[1]]
    return {
        "healthy_per_s": sum(1 for t in healthy_ok if window[0] <= t <= window[1]) / span,
        "healthy_lag_s": max(max(t for t in healthy_ok if t >= started) - ended, 0.0),
        "capped_per_s": sum(1 for t in capped_ok if window[0] <= t <= window[1]) / span,
        "limit_mean": sum(in_window) / len(in_window) if in_window else -1.0,
    }


async def run(ctx: Context) -> dict[str, float]:
    configure_logging("console", "warning")
    sink, ports = start_sinks(ctx, "aimd-steady-sink")
    try:
        alone = await _phase(bench_settings(ctx, "steady-alone"), ports, with_capped=False)
        beside = await _phase(bench_settings(ctx, "steady-beside"), ports, with_capped=True)
        # What a perfect static setting does under the same load: a fixed cap of CAP.
        fixed_settings = bench_settings(ctx, "steady-fixed", max_concurrency_per_host=CAP)
        fixed = await _phase(fixed_settings, ports, with_capped=True)
    finally:
        sink.stop()
    capacity = CAP / SERVICE_S
    print(
        f"aimd steady: healthy host offered {HEALTHY_RATE}/s: {alone['healthy_per_s']:,.0f}/s "
        f"alone, {beside['healthy_per_s']:,.0f}/s beside a host offered {CAPPED_RATE}/s "
        f"(capacity {capacity:.0f}/s), which delivered {beside['capped_per_s']:,.0f}/s "
        f"(mean limit {beside['limit_mean']:.1f}); with a fixed cap of {CAP} instead: "
        f"{fixed['capped_per_s']:,.0f}/s, healthy host {fixed['healthy_per_s']:,.0f}/s"
    )
    return {
        "aimd_steady_healthy_offered_per_s": float(HEALTHY_RATE),
        "aimd_steady_healthy_alone_per_s": round(alone["healthy_per_s"], 1),
        "aimd_steady_healthy_beside_per_s": round(beside["healthy_per_s"], 1),
        "aimd_steady_healthy_kept_share": round(
            beside["healthy_per_s"] / alone["healthy_per_s"], 3
        ),
        "aimd_steady_healthy_lag_alone_s": round(alone["healthy_lag_s"], 2),
        "aimd_steady_healthy_lag_beside_s": round(beside["healthy_lag_s"], 2),
        "aimd_steady_capped_offered_per_s": float(CAPPED_RATE),
        "aimd_steady_capped_per_s": round(beside["capped_per_s"], 1),
        "aimd_steady_capped_share_of_capacity": round(beside["capped_per_s"] / capacity, 3),
        "aimd_steady_capped_limit_mean": round(beside["limit_mean"], 1),
        "aimd_steady_fixed_cap_capped_per_s": round(fixed["capped_per_s"], 1),
        "aimd_steady_capped_share_of_fixed_cap": round(
            beside["capped_per_s"] / fixed["capped_per_s"], 3
        ),
        "aimd_steady_fixed_cap_healthy_per_s": round(fixed["healthy_per_s"], 1),
        "aimd_steady_fixed_cap_healthy_lag_s": round(fixed["healthy_lag_s"], 2),
    }


def _main() -> None:
    if sys.argv[1:2] == ["produce"]:
        bootstrap, topic, *specs = sys.argv[2:]
        targets = [(spec.rsplit(":", 1)[0], int(spec.rsplit(":", 1)[1])) for spec in specs]
        print(asyncio.run(_produce(bootstrap, topic, targets)))


if __name__ == "__main__":
    _main()
