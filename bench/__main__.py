"""``python -m bench``: start the shared broker, run every benchmark module, print figures.

The last lines are machine-readable, one ``name: value`` per figure (contract §9).
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import sys
import tempfile
import time
import traceback
from pathlib import Path

from callbacks.devstack.broker import Broker

from bench.context import Context

# Run in this order when present; each exposes ``async def run(ctx) -> dict[str, float]``.
MODULES = ("bench.dispatcher", "bench.api", "bench.reporter")


def main() -> int:
    started = time.monotonic()
    figures: dict[str, float] = {}
    failed = False
    with tempfile.TemporaryDirectory(prefix="callbacks-bench-") as tmp:
        workdir = Path(tmp)
        broker = Broker(log_path=workdir / "broker.log")
        broker.start()
        try:
            ctx = Context(kafka_bootstrap=broker.bootstrap, workdir=workdir)
            for name in MODULES:
                if importlib.util.find_spec(name) is None:
                    continue
                module = importlib.import_module(name)
                try:
                    figures.update(asyncio.run(module.run(ctx)))
                except Exception:  # one area failing must not hide the others' figures
                    failed = True
                    print(f"{name} failed:", file=sys.stderr)
                    traceback.print_exc()
        finally:
            broker.stop()
    print(f"bench: finished in {time.monotonic() - started:.0f} s")
    for name, value in figures.items():
        print(f"{name}: {value}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
