"""The benchmark's customer endpoint: a separate process answering 200 as fast as it can.

``POST /reset`` clears the counters; ``GET /stats`` returns the request count, the
first and last arrival times and, for bodies carrying ``"sent": "<unix ns>"``, the
produce → arrival latencies in milliseconds. Run as ``python -m bench.sink PORT``.
"""

from __future__ import annotations

import sys
import time

import orjson
from aiohttp import web

_SENT = b'"sent": "'


class Stats:
    def __init__(self) -> None:
        self.count = 0
        self.first = 0.0
        self.last = 0.0
        self.latencies_ms: list[float] = []
        self.ids: set[str] = set()


def make_app() -> web.Application:
    stats = Stats()

    async def hook(request: web.Request) -> web.Response:
        body = await request.read()
        now = time.time()
        if stats.count == 0:
            stats.first = now
        stats.count += 1
        stats.last = now
        at = body.find(_SENT)
        if at >= 0:
            start = at + len(_SENT)
            sent_ns = int(body[start : body.index(b'"', start)])
            stats.latencies_ms.append((now * 1e9 - sent_ns) / 1e6)
        return web.Response(text="ok")

    async def get_stats(_request: web.Request) -> web.Response:
        return web.Response(
            body=orjson.dumps(
                {
                    "count": stats.count,
                    "first": stats.first,
                    "last": stats.last,
                    "latencies_ms": stats.latencies_ms,
                }
            ),
            content_type="application/json",
        )

    async def reset(_request: web.Request) -> web.Response:
        stats.__init__()  # type: ignore[misc]
        return web.Response(text="reset")

    app = web.Application()
    app.router.add_get("/stats", get_stats)
    app.router.add_post("/reset", reset)
    app.router.add_route("*", "/hook", hook)
    return app


def main() -> None:
    port = int(sys.argv[1])
    try:
        import uvloop
    except ImportError:
        loop_factory = None
    else:
        loop_factory = uvloop.new_event_loop
    web.run_app(
        make_app(),
        host="127.0.0.1",
        port=port,
        access_log=None,
        print=None,
        loop=loop_factory() if loop_factory else None,
    )


if __name__ == "__main__":
    main()
