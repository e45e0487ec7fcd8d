"""A host that answers 2xx, slowly (issue 15): does it leave the other hosts their rate?

A slow 2xx neither lowers the host's concurrency limit (nothing failed) nor counts as a
stall, so without the per-host share of the in-flight budget its queue would grow until
fetching paused for everyone. Here events arrive at fixed rates, ``OTHER_RATE`` events/s
to each of two ordinary hosts, first alone and then beside a host answering 200 after
``SLOW_S`` that is offered ``SLOW_RATE`` events/s (20 % of the 500 events/s in all).
The dispatcher runs in this process; the three endpoints are one sink process on three
ports (three hosts: a host is a host:port).

Figures (the last ``name: value`` lines): the other hosts' delivered rate alone and
beside the slow host over the same window of each phase (from ``WARM_S`` after the first
event until the last one was produced), the share they kept (the issue asks >= 0.9), and
the slow host's delivered rate and peak concurrency (bounded by its share of
``CALLBACKS_MAX_IN_FLIGHT``; the rest of its callbacks are parked, not queued).

``BENCH_ONLY=slow_host python -m bench`` runs it alone (~40 s).
"""

from __future__ import annotations

import asyncio
import sys
import time

import aiohttp
import orjson
from aiohttp import web
from callbacks.logging import configure_logging
from callbacks.settings import Settings
from callbacks_dev.devstack.processes import ChildProcess, free_port, wait_for_port
from dispatcher import Dispatcher

from bench.aimd import bench_settings, publish_profiles
from bench.aimd_steady import WARM_S, _produce_paced, _wait_ready
from bench.context import Context

SLOW_S = 2.0
FAST_S = 0.002
SLOW_RATE = 100
OTHER_RATE = 200  # each of two hosts: with the slow host, 500 events/s in all
KEPT_TARGET = 0.9


def _sink_app(delay_s: float) -> web.Application:
    times: list[float] = []
    active = peak = 0

    async def hook(request: web.Request) -> web.Response:
        nonlocal active, peak
        await request.read()
        active += 1
        peak = max(peak, active)
        try:
            await asyncio.sleep(delay_s)
        finally:
            active -= 1
        times.append(time.time())
        return web.Response(text="ok")

    async def stats(request: web.Request) -> web.Response:
        body = {"count": len(times), "peak": peak}
        if "times" in request.query:
            body["times"] = times
        return web.Response(body=orjson.dumps(body), content_type="application/json")

    app = web.Application()
    app.router.add_post("/hook", hook)
    app.router.add_get("/stats", stats)
    return app


async def _serve(slow_port: int, *other_ports: int) -> None:
    for delay, port in ((SLOW_S, slow_port), *((FAST_S, p) for p in other_ports)):
        runner = web.AppRunner(_sink_app(delay), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
    await asyncio.Event().wait()


async def _stats(session: aiohttp.ClientSession, port: int, *, times: bool = False) -> dict:  # type: ignore[type-arg]
    query = "?times" if times else ""
    async with session.get(f"http://127.0.0.1:{port}/stats{query}") as response:
        return await response.json()  # type: ignore[no-any-return]


async def _phase(settings: Settings, ports: list[int], with_slow: bool) -> dict[str, float]:
    """One phase at fixed rates; what the sinks saw over the window."""
    slow_id, *other_ids = [p.id for p in await publish_profiles(settings, ports)]
    targets = [(other_ids[0], OTHER_RATE), (other_ids[1], OTHER_RATE)]
    if with_slow:
        targets.append((slow_id, SLOW_RATE))
    dispatcher = Dispatcher(settings)
    task = asyncio.create_task(dispatcher.run())
    try:
        await _wait_ready(dispatcher)
        async with aiohttp.ClientSession() as session:
            before = [(await _stats(session, p))["count"] for p in ports[1:]]
            started, offered_each = await _produce_paced(settings, targets)
            ended = time.time()
            deadline = time.monotonic() + 90
            while True:
                now = [(await _stats(session, p))["count"] for p in ports[1:]]
                if all(n - b >= offered_each for n, b in zip(now, before, strict=True)):
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError("the other hosts did not get all their callbacks")
                await asyncio.sleep(0.05)
            seen = [await _stats(session, p, times=True) for p in ports]
    finally:
        dispatcher.request_stop()
        await asyncio.wait_for(task, 30)
    window = (started + WARM_S, ended)
    span = window[1] - window[0]

    def rate(times: list[float]) -> float:
        return sum(1 for t in times if window[0] <= t <= window[1]) / span

    return {
        "others_per_s": sum(rate(s["times"]) for s in seen[1:]),
        "slow_per_s": rate(seen[0]["times"]),
        "slow_peak": float(seen[0]["peak"]),
    }


def _start_sink(ctx: Context, ports: list[int]) -> ChildProcess:
    sink = ChildProcess(
        "slow-host-sink",
        [sys.executable, "-m", "bench.slow_host", "sink", *map(str, ports)],
        log_path=ctx.workdir / "slow-host-sink.log",
    )
    sink.start()
    try:
        for port in ports:
            wait_for_port("127.0.0.1", port, 15, sink.alive)
    except BaseException:
        sink.stop()
        raise
    return sink


async def run(ctx: Context) -> dict[str, float]:
    configure_logging("console", "warning")
    figures: dict[str, float] = {}
    for with_slow in (False, True):
        # Fresh endpoints per phase: the slow one's answers of one phase never reach
        # into the next.
        ports = [free_port() for _ in range(3)]
        sink = _start_sink(ctx, ports)
        try:
            name = "slow-beside" if with_slow else "slow-alone"
            phase = await _phase(bench_settings(ctx, name), ports, with_slow)
        finally:
            sink.stop()
        figures.update({f"{k}_{'beside' if with_slow else 'alone'}": v for k, v in phase.items()})
    kept = figures["others_per_s_beside"] / figures["others_per_s_alone"]
    print(
        f"slow host: two hosts offered {OTHER_RATE}/s each delivered "
        f"{figures['others_per_s_alone']:,.0f}/s alone and {figures['others_per_s_beside']:,.0f}/s "
        f"beside a host answering 200 after {SLOW_S:g} s offered {SLOW_RATE}/s (kept {kept:.1%}, "
        f"target {KEPT_TARGET:.0%}); the slow host delivered {figures['slow_per_s_beside']:,.0f}/s "
        f"at most {figures['slow_peak_beside']:.0f} at once"
    )
    return {
        "slow_host_others_offered_per_s": float(2 * OTHER_RATE),
        "slow_host_others_alone_per_s": round(figures["others_per_s_alone"], 1),
        "slow_host_others_beside_per_s": round(figures["others_per_s_beside"], 1),
        "slow_host_others_kept_share": round(kept, 3),
        "slow_host_offered_per_s": float(SLOW_RATE),
        "slow_host_delivered_per_s": round(figures["slow_per_s_beside"], 1),
        "slow_host_peak_in_flight": figures["slow_peak_beside"],
    }


def _main() -> None:
    if sys.argv[1:2] == ["sink"]:
        asyncio.run(_serve(*(int(p) for p in sys.argv[2:])))


if __name__ == "__main__":
    _main()
