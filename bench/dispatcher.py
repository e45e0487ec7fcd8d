"""Dispatcher figures (contract §9): end-to-end throughput beside the raw HTTP limit,
latency at a fixed offered load, and peak RSS with 10,000 cached profiles.

Everything runs as it would in production: the sink and the dispatcher are separate
processes (``python -m bench.sink``, ``python -m dispatcher``) and the broker is shared.
The raw limit is a plain aiohttp client with the dispatcher's per-host concurrency
(64 in flight) against the same sink, measured in the same run.
"""

from __future__ import annotations

import asyncio
import base64
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from callbacks.kafka import ensure_topics, make_producer
from callbacks.models.profiles import ProfileRecord, SigningSecret, seal_secrets
from callbacks.secretbox import SecretBox
from callbacks.settings import Settings
from callbacks.signing import generate_secret
from callbacks_dev.devstack.processes import ChildProcess, free_port, wait_for_port
from callbacks_dev.simulator.events import Gateway

from bench.context import Context

CONCURRENCY = 64
RAW_REQUESTS = int(os.environ.get("BENCH_RAW_REQUESTS", "20000"))
THROUGHPUT_EVENTS = int(os.environ.get("BENCH_EVENTS", "30000"))
CACHED_PROFILES = 10_000
LATENCY_RATE = 500
LATENCY_SECONDS = float(os.environ.get("BENCH_LATENCY_SECONDS", "10"))
ACCOUNT = "acc-bench"
BODY = '{"id": "{{message_id}}", "status": "{{status}}", "to": "{{to}}", "sent": "{{ref}}"}'


def _profile(profile_id: str, url: str) -> ProfileRecord:
    now = datetime.now(UTC)
    return ProfileRecord(
        id=profile_id,
        account_id=ACCOUNT,
        title="bench",
        channel="sms",
        events=["sms.send"],
        method="POST",
        url=url,
        headers={"X-Api-Key": "abc"},
        body_type="json",
        body=BODY,
        created_at=now,
        updated_at=now,
        signing_secrets=[SigningSecret(secret=generate_secret(), created_at=now)],
    )


_GATEWAY_RNG = random.Random(7)


def _event(profile_id: str, sent: str) -> tuple[bytes, bytes]:
    """A realistic SMS delivery receipt from the simulator's builders; ``ref`` carries the
    produce time the sink turns into latency."""
    gateway = Gateway(_GATEWAY_RNG, account_id=ACCOUNT, profiles={"*": profile_id})
    built = gateway.event("sms.send")
    key, value = built._replace(value={**built.value, "ref": sent}).encode()
    return value, key


async def _publish_profiles(settings: Settings, profiles: list[ProfileRecord]) -> None:
    box = SecretBox(settings.master_key_bytes())
    producer = make_producer(settings)
    await producer.start()
    try:
        futures = [
            await producer.send(
                settings.topics.profiles,
                seal_secrets(p, box.seal).model_dump_json().encode(),
                key=p.id.encode(),
            )
            for p in profiles
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def _produce_backlog(settings: Settings, profile_id: str, count: int) -> None:
    producer = make_producer(settings)
    await producer.start()
    topic = settings.topics.source_for("sms.send")
    try:
        futures = []
        for _ in range(count):
            value, key = _event(profile_id, "0")
            futures.append(await producer.send(topic, value, key=key))
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def _produce_paced(settings: Settings, profile_id: str, rate: int, seconds: float) -> int:
    """Offer ``rate`` events/s, each stamped with its produce time (unix ns)."""
    producer = make_producer(settings)
    await producer.start()
    topic = settings.topics.source_for("sms.send")
    tick = 0.01
    per_tick = max(int(rate * tick), 1)
    sent = 0
    futures = []
    try:
        started = time.monotonic()
        while time.monotonic() - started < seconds:
            for _ in range(per_tick):
                value, key = _event(profile_id, str(time.time_ns()))
                futures.append(await producer.send(topic, value, key=key))
                sent += 1
            next_at = started + (sent / per_tick) * tick
            await asyncio.sleep(max(next_at - time.monotonic(), 0))
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return sent


async def _stats(session: aiohttp.ClientSession, base: str) -> dict[str, Any]:
    async with session.get(f"{base}/stats") as response:
        result: dict[str, Any] = orjson.loads(await response.read())
        return result


async def _wait_count(
    session: aiohttp.ClientSession, base: str, count: int, timeout_s: float
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        stats = await _stats(session, base)
        if stats["count"] >= count:
            return stats
        if time.monotonic() > deadline:
            raise TimeoutError(f"sink got {stats['count']} of {count} callbacks")
        await asyncio.sleep(0.1)


def _cpu_s(pid: int | None = None) -> float:
    """User + system CPU seconds of a process (this one by default)."""
    fields = Path(f"/proc/{pid or os.getpid()}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def raw_limit(url: str, requests: int, concurrency: int = CONCURRENCY) -> tuple[float, float]:
    """Requests/s of a plain aiohttp client keeping ``concurrency`` requests in flight,
    and the client's CPU microseconds per request (robust on a shared machine)."""
    value, _ = _event("p", "0")
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "callback-profiles/0.1.0",
        "webhook-id": "msg_" + uuid.uuid4().hex,
        "webhook-timestamp": str(int(time.time())),
        "webhook-signature": "v1," + base64.b64encode(os.urandom(32)).decode(),
        "X-Api-Key": "abc",
    }
    body = value[:160]
    remaining = requests

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            async with session.post(url, data=body, headers=headers) as response:
                await response.read()

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        started, cpu = time.perf_counter(), _cpu_s()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        elapsed, cpu = time.perf_counter() - started, _cpu_s() - cpu
        return requests / elapsed, cpu * 1e6 / requests


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _start_dispatcher(settings: Settings, metrics_port: int, log: Path) -> subprocess.Popen[bytes]:
    assert settings.master_key is not None
    env = {
        **os.environ,
        **settings.kafka_environment(),
        "CALLBACKS_KAFKA_PARTITIONS": str(settings.kafka_partitions),
        "CALLBACKS_TOPIC_PREFIX": settings.topic_prefix,
        "CALLBACKS_MASTER_KEY": settings.master_key.get_secret_value(),
        "CALLBACKS_ALLOW_PRIVATE_TARGETS": "true",
        "CALLBACKS_CONSUMER_SESSION_TIMEOUT": "2s",
        "CALLBACKS_DISPATCHER_METRICS_PORT": str(metrics_port),
        "CALLBACKS_API_HOST": "127.0.0.1",
        "CALLBACKS_LOG_LEVEL": os.environ.get("BENCH_DISPATCHER_LOG_LEVEL", "info"),
    }
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "dispatcher"], env=env, stdout=out, stderr=subprocess.STDOUT
        )


async def _wait_ready(session: aiohttp.ClientSession, port: int, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            async with session.get(f"http://127.0.0.1:{port}/readyz") as response:
                if response.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)
    raise TimeoutError("dispatcher not ready")


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(len(ordered) * share), len(ordered) - 1)]


async def run(ctx: Context) -> dict[str, float]:
    settings = ctx.settings(topic_prefix=f"bench{uuid.uuid4().hex[:6]}.")
    await ensure_topics(settings)
    sink_port = free_port()
    sink = ChildProcess(
        "sink",
        [sys.executable, "-m", "bench.sink", str(sink_port)],
        log_path=ctx.workdir / "sink.log",
    )
    sink.start()
    wait_for_port("127.0.0.1", sink_port, 30, sink.alive)
    base = f"http://127.0.0.1:{sink_port}"
    figures: dict[str, float] = {}
    process: subprocess.Popen[bytes] | None = None
    try:
        async with aiohttp.ClientSession() as session:
            target = _profile(str(uuid.uuid4()), f"{base}/hook")
            fillers = [_profile(str(uuid.uuid4()), f"{base}/other") for _ in range(CACHED_PROFILES)]
            print(
                f"dispatcher: publishing {CACHED_PROFILES} profiles and {THROUGHPUT_EVENTS} events"
            )
            await _publish_profiles(settings, [*fillers, target])
            await _produce_backlog(settings, target.id, THROUGHPUT_EVENTS)

            raw, raw_cpu = await raw_limit(f"{base}/hook", RAW_REQUESTS)
            print(
                f"dispatcher: raw aiohttp client, {CONCURRENCY} in flight: {raw:,.0f} requests/s "
                f"({raw_cpu:.0f} us CPU per request)"
            )
            async with session.post(f"{base}/reset"):
                pass

            metrics_port = free_port()
            process = _start_dispatcher(settings, metrics_port, ctx.workdir / "dispatcher.log")
            await _wait_ready(session, metrics_port)
            cpu_before = _cpu_s(process.pid)
            stats = await _wait_count(session, base, THROUGHPUT_EVENTS, timeout_s=150)
            cpu_us = (_cpu_s(process.pid) - cpu_before) * 1e6 / THROUGHPUT_EVENTS
            span = max(stats["last"] - stats["first"], 1e-6)
            rate = (THROUGHPUT_EVENTS - 1) / span
            print(
                f"dispatcher: {THROUGHPUT_EVENTS} backlog events delivered at {rate:,.0f}/s "
                f"({cpu_us:.0f} us dispatcher CPU per callback)"
            )
            raw_after, _ = await raw_limit(f"{base}/hook", RAW_REQUESTS // 2)
            print(f"dispatcher: raw limit again after the run: {raw_after:,.0f} requests/s")
            async with session.post(f"{base}/reset"):
                pass

            offered = await _produce_paced(settings, target.id, LATENCY_RATE, LATENCY_SECONDS)
            stats = await _wait_count(session, base, offered, timeout_s=60)
            latencies = stats["latencies_ms"]
            p50, p99 = _percentile(latencies, 0.50), _percentile(latencies, 0.99)
            print(
                f"dispatcher: {offered} events at {LATENCY_RATE}/s: "
                f"p50 {p50:.1f} ms, p99 {p99:.1f} ms"
            )
            rss = _peak_rss_mb(process.pid)
            print(f"dispatcher: peak RSS with {CACHED_PROFILES} cached profiles: {rss:.0f} MB")
            raw_best = max(raw, raw_after)
            figures = {
                "dispatcher_callbacks_per_s": round(rate, 1),
                "raw_http_per_s": round(raw_best, 1),
                "dispatcher_vs_raw_ratio": round(rate / raw_best, 3),
                "latency_p50_ms": round(p50, 2),
                "latency_p99_ms": round(p99, 2),
                "dispatcher_rss_mb": round(rss, 1),
                # CPU per callback vs per raw request: the ratio without the noise of a
                # shared machine (how much more work a callback is than a bare POST).
                "dispatcher_cpu_us_per_callback": round(cpu_us, 1),
                "raw_client_cpu_us_per_request": round(raw_cpu, 1),
            }
    finally:
        if process is not None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        sink.stop()
    return figures
