"""Operator commands: ``python -m callbacks migrate|create-topics|init|reseal``.

``init`` is what the Kubernetes migration Job runs before the services roll out;
``reseal`` seals every stored secret again under the first master key (rotation).
"""

from __future__ import annotations

import argparse
import asyncio

from callbacks.db import migrate
from callbacks.kafka import ensure_topics
from callbacks.logging import configure_logging
from callbacks.reseal import reseal
from callbacks.settings import Settings


async def _run(command: str, settings: Settings) -> int:
    if command in ("migrate", "init"):
        await migrate(settings.require_database_url())
    if command in ("create-topics", "init"):
        await ensure_topics(settings)
    if command == "reseal":
        report = await reseal(settings)
        return 1 if report.failed else 0
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m callbacks")
    parser.add_argument("command", choices=["migrate", "create-topics", "init", "reseal"])
    args = parser.parse_args()
    settings = Settings()
    configure_logging(settings.log_format, settings.log_level)
    return asyncio.run(_run(args.command, settings))


if __name__ == "__main__":
    raise SystemExit(main())
