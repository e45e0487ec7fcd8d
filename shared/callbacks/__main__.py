"""Operator commands: ``python -m callbacks migrate|create-topics|init``.

``init`` is what the Kubernetes migration Job runs before the services roll out.
"""

from __future__ import annotations

import argparse
import asyncio

from callbacks.db import migrate
from callbacks.kafka import ensure_topics
from callbacks.logging import configure_logging
from callbacks.settings import Settings


async def _run(command: str, settings: Settings) -> None:
    if command in ("migrate", "init"):
        await migrate(settings.require_database_url())
    if command in ("create-topics", "init"):
        await ensure_topics(settings)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m callbacks")
    parser.add_argument("command", choices=["migrate", "create-topics", "init"])
    args = parser.parse_args()
    settings = Settings()
    configure_logging(settings.log_format, settings.log_level)
    asyncio.run(_run(args.command, settings))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
