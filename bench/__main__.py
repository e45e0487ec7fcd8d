"""``python -m bench``: start the shared servers, run every benchmark module, print figures.

A module is ``bench.<area>`` with ``async def run(ctx: Context) -> dict[str, float]``
(``bench.reporter``'s ``bench_reporter(settings)`` is adapted below). The last lines
are machine-readable, one ``name: value`` per figure (contract §9).

The dispatcher area runs twice: on the embedded Tansu broker, and on a local 3-node
Apache Kafka cluster (replication 3, min ISR 2, idempotent producer), whose figures
carry a ``_kafka`` suffix (``BENCH_KAFKA=false`` skips that run).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import importlib.util
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Coroutine
from pathlib import Path
from types import ModuleType
from typing import Any

from callbacks_dev.devstack.broker import Broker
from callbacks_dev.devstack.kafka_cluster import KafkaCluster
from callbacks_dev.devstack.postgres import PostgresServer

from bench.context import Context

# Run in this order when present.
MODULES = (
    "bench.dispatcher",
    "bench.api",
    "bench.reporter",
    "bench.aimd",
    "bench.aimd_steady",
    "bench.slow_host",
)
# Areas that need PostgreSQL (started once, only when one of them is present).
NEEDS_DATABASE = ("bench.api", "bench.reporter")
# Areas that also run on the local Apache Kafka cluster; their figures get this suffix.
ON_KAFKA = ("bench.dispatcher",)
KAFKA_SUFFIX = "_kafka"


def _runner(
    module: ModuleType, ctx: Context
) -> Callable[[], Coroutine[Any, Any, dict[str, float]]] | None:
    run = getattr(module, "run", None)
    if run is not None:
        return lambda: run(ctx)
    bench_reporter = getattr(module, "bench_reporter", None)
    if bench_reporter is not None:
        return lambda: bench_reporter(ctx.settings())
    return None


def main() -> int:
    started = time.monotonic()
    figures: dict[str, float] = {}
    failed = False
    only = os.environ.get("BENCH_ONLY")  # e.g. "dispatcher": one area, for quick iterations
    present = [
        name
        for name in MODULES
        if importlib.util.find_spec(name) is not None and (not only or name == f"bench.{only}")
    ]
    with (
        tempfile.TemporaryDirectory(prefix="callbacks-bench-") as tmp,
        contextlib.ExitStack() as stack,
    ):
        workdir = Path(tmp)
        broker = Broker(log_path=workdir / "broker.log")
        broker.start()
        stack.callback(broker.stop)
        database_url = None
        if any(name in NEEDS_DATABASE for name in present):
            postgres = PostgresServer()
            postgres.start()
            stack.callback(postgres.stop)
            database_url = postgres.dsn
        ctx = Context(kafka_bootstrap=broker.bootstrap, workdir=workdir, database_url=database_url)
        for name in present:
            module = importlib.import_module(name)
            runner = _runner(module, ctx)
            if runner is None:
                print(f"{name}: no run(ctx) entry point, skipped", file=sys.stderr)
                continue
            try:
                figures.update(asyncio.run(runner()))
            except Exception:  # one area failing must not hide the others' figures
                failed = True
                print(f"{name} failed:", file=sys.stderr)
                traceback.print_exc()
        on_kafka = [n for n in present if n in ON_KAFKA]
        if on_kafka and os.environ.get("BENCH_KAFKA", "true").lower() != "false":
            cluster = KafkaCluster(3, workdir=workdir / "kafka")
            cluster.workdir.mkdir(parents=True, exist_ok=True)
            print("bench: starting a 3-node Apache Kafka cluster ...")
            cluster.start()
            stack.callback(cluster.stop)
            kafka_ctx = Context(
                kafka_bootstrap=cluster.bootstrap,
                workdir=workdir,
                database_url=database_url,
                kafka_durability={
                    "kafka_replication_factor": 3,
                    "kafka_min_insync_replicas": 2,
                    "kafka_idempotent_producer": True,
                },
            )
            for name in on_kafka:
                runner = _runner(importlib.import_module(name), kafka_ctx)
                if runner is None:
                    continue
                try:
                    measured = asyncio.run(runner())
                except Exception:
                    failed = True
                    print(f"{name} on Apache Kafka failed:", file=sys.stderr)
                    traceback.print_exc()
                    continue
                figures.update({f"{key}{KAFKA_SUFFIX}": value for key, value in measured.items()})
    print(f"bench: finished in {time.monotonic() - started:.0f} s")
    for name, value in figures.items():
        print(f"{name}: {value}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
