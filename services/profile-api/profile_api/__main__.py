"""``python -m profile_api``: settings, logging, then serve until SIGTERM or SIGINT."""

from __future__ import annotations

from aiohttp import web
from callbacks.logging import configure_logging, get_logger
from callbacks.settings import Settings

from profile_api.app import create_app


def main() -> int:
    settings = Settings()
    configure_logging(settings.log_format, settings.log_level)
    log = get_logger("profile_api")
    log.info("starting", service="profile-api", config=settings.masked())
    # run_app turns SIGTERM/SIGINT into a graceful shutdown: in-flight requests finish,
    # then the cleanup context stops the relay, the producer and the pool.
    web.run_app(
        create_app(settings),
        host=settings.api_host,
        port=settings.api_port,
        access_log=None,
        print=None,
        shutdown_timeout=10.0,
    )
    log.info("stopped", service="profile-api")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
