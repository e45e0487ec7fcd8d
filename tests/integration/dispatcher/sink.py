"""A loopback HTTP endpoint for dispatcher tests: records every request, answers as told.

Per path, a script of responses is played in order (the last one repeats); a response
may wait for a while or hang until the sink stops. ``/token`` is an OAuth2 token
endpoint handing out ``tok1``, ``tok2``, ...
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from aiohttp import web
from callbacks_dev.devstack.processes import free_port

from tests.helpers import eventually


@dataclass(frozen=True)
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"ok"
    delay_s: float = 0.0
    hang: bool = False


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    query_string: str
    headers: dict[str, str]
    raw_headers: tuple[tuple[str, str], ...]
    body: bytes
    at: float

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


class Sink:
    def __init__(self, host: str = "127.0.0.1") -> None:
        """``host``: a loopback address to listen on (127.0.0.2, … are other hosts)."""
        self.host = host
        self.active = 0  # requests being answered now
        self.peak = 0  # the most answered at once
        self.received: list[Received] = []
        self.token_requests: list[Received] = []
        self.scripts: dict[str, list[Reply]] = {}
        self._release = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def base(self) -> str:
        return f"http://{self.host}:{self.port}"

    def url(self, path: str) -> str:
        return f"{self.base}{path}"

    def script(self, path: str, *replies: Reply) -> None:
        self.scripts[path] = list(replies)

    def at(self, path: str) -> list[Received]:
        return [r for r in self.received if r.path == path]

    async def wait_for(
        self, count: int, path: str | None = None, timeout_s: float = 15.0
    ) -> list[Received]:
        async def probe() -> list[Received]:
            got = self.at(path) if path else self.received
            return got if len(got) >= count else []

        return await eventually(
            probe, timeout_s=timeout_s, what=f"{count} requests at {path or 'sink'}"
        )

    def release(self) -> None:
        """Let every hanging request (``Reply(hang=True)``) answer."""
        self._release.set()

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        self.port = free_port()
        await web.TCPSite(self._runner, self.host, self.port).start()

    async def stop(self) -> None:
        self._release.set()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        seen = Received(
            request.method,
            request.path,
            request.query_string,
            {k.lower(): v for k, v in request.headers.items()},
            tuple(request.headers.items()),
            body,
            time.monotonic(),
        )
        if request.path == "/token":
            self.token_requests.append(seen)
            n = len(self.token_requests)
            return web.json_response({"access_token": f"tok{n}", "expires_in": 3600})
        self.received.append(seen)
        script = self.scripts.get(request.path)
        reply = Reply()
        if script:
            reply = script.pop(0) if len(script) > 1 else script[0]
        self.active += 1
        self.peak = max(self.peak, self.active)
        try:
            if reply.hang:
                await self._release.wait()
            elif reply.delay_s:
                await asyncio.sleep(reply.delay_s)
        finally:
            self.active -= 1
        return web.Response(status=reply.status, headers=reply.headers, body=reply.body)
