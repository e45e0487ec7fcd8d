"""structlog set-up: JSON lines on stdout in production, console on a terminal.

The JSON path is on the dispatcher's hot path (one canonical line per callback
attempt), so it renders with orjson straight to bytes (about half the cost of the
stdlib ``json`` renderer and a text print) and caches each logger on first use.
"""

from __future__ import annotations

import logging
import sys

import orjson
import structlog


def configure_logging(fmt: str = "json", level: str = "info", *, cache: bool = True) -> None:
    """Configure structlog and the stdlib root logger once per process."""
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        numeric = logging.INFO
    renderer: structlog.types.Processor
    factory: structlog.types.WrappedLogger
    if fmt == "console":
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stdout.isatty())
        factory = structlog.PrintLoggerFactory(file=sys.stdout)
    else:
        # orjson returns bytes: write them to the binary layer of stdout, one line each.
        renderer = structlog.processors.JSONRenderer(serializer=orjson.dumps)
        factory = structlog.BytesLoggerFactory(file=sys.stdout.buffer)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=factory,
        cache_logger_on_first_use=cache,
    )
    logging.basicConfig(level=max(numeric, logging.WARNING), stream=sys.stderr)


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    logger: structlog.stdlib.BoundLogger = structlog.get_logger(name)
    return logger
