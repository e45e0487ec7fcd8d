"""``python -m dispatcher``: load settings, configure logging, run until SIGTERM."""

from __future__ import annotations

import asyncio
import signal

from callbacks.logging import configure_logging, get_logger
from callbacks.settings import Settings

from dispatcher.worker import Dispatcher


async def _serve(settings: Settings) -> None:
    dispatcher = Dispatcher(settings, serve_ops=True)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, dispatcher.request_stop)
    await dispatcher.run()


def main() -> int:
    settings = Settings()
    configure_logging(settings.log_format, settings.log_level)
    get_logger("dispatcher").info("dispatcher_config", **settings.masked())
    try:
        import uvloop
    except ImportError:
        asyncio.run(_serve(settings))
    else:
        uvloop.run(_serve(settings))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
