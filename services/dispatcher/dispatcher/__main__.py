"""``python -m dispatcher``: load settings, configure logging, run until SIGTERM."""

from __future__ import annotations

import asyncio
import gc
import signal

from callbacks.logging import configure_logging, get_logger
from callbacks.settings import Settings

from dispatcher.worker import Dispatcher

GC_GEN0_THRESHOLD = 20_000


async def _serve(settings: Settings) -> None:
    dispatcher = Dispatcher(settings, serve_ops=True, settle_heap=True)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, dispatcher.request_stop)
    await dispatcher.run()


def main() -> int:
    settings = Settings()
    configure_logging(settings.log_format, settings.log_level)
    # Each record allocates a few hundred short-lived objects; the default gen-0 threshold
    # (700) runs a young collection every couple of records. A larger one costs the same
    # per object but far fewer collector passes (process policy, so not in tests).
    gc.set_threshold(GC_GEN0_THRESHOLD, 20, 20)
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
