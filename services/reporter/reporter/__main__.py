"""``python -m reporter``: load settings, configure logging, run until SIGTERM."""

from __future__ import annotations

import asyncio
import signal

from callbacks.logging import configure_logging, get_logger
from callbacks.settings import Settings

from reporter.service import Reporter


async def _serve(settings: Settings) -> None:
    reporter = Reporter(settings)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, reporter.request_stop)
    await reporter.run()


def main() -> int:
    settings = Settings()
    configure_logging(settings.log_format, settings.log_level)
    get_logger("reporter").info("reporter_config", **settings.masked())
    asyncio.run(_serve(settings))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
