"""`make run` supervises its services: a dispatcher killed with SIGKILL is restarted and
ready again with a console line; a service that cannot start crash-loops, and the stack
stops with the end of its log printed and a non-zero exit code.

The launcher runs as ``make run`` starts it (``python -m callbacks_dev.devstack``), on the
session's PostgreSQL and broker under this test's own topic prefix.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import aiohttp
import psutil
import pytest
from callbacks.settings import Settings
from callbacks_dev.devstack.processes import free_port

from tests.helpers import eventually

pytestmark = pytest.mark.brokers("tansu")  # the supervisor is the subject, not the broker

READY_MARKER = "Ctrl-C stops everything"


@dataclass
class Launcher:
    """The running ``python -m callbacks_dev.devstack`` and what it printed so far."""

    process: asyncio.subprocess.Process
    ports: dict[str, int]
    printed: list[str] = field(default_factory=list)

    async def read_until(self, pattern: str, timeout_s: float) -> re.Match[str]:
        """The first printed line (from now on) that matches ``pattern``."""
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout_s
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                raw = await asyncio.wait_for(self.process.stdout.readline(), remaining)
            except TimeoutError:
                break
            if not raw:
                break  # the launcher closed its stdout: it has exited
            line = raw.decode(errors="replace").rstrip("\n")
            self.printed.append(line)
            if found := re.search(pattern, line):
                return found
        shown = "\n".join(self.printed)
        raise AssertionError(f"{pattern!r} not printed within {timeout_s}s:\n{shown}")

    def service_pids(self, module: str) -> list[int]:
        """The running processes of one service (normally one)."""
        pids = []
        for child in psutil.Process(self.process.pid).children(recursive=True):
            with contextlib.suppress(psutil.NoSuchProcess, psutil.ZombieProcess):
                if child.status() != psutil.STATUS_ZOMBIE and child.cmdline()[-2:] == [
                    "-m",
                    module,
                ]:
                    pids.append(child.pid)
        return pids

    async def ready(self, port: int) -> bool:
        try:
            async with (
                aiohttp.ClientSession() as session,
                session.get(
                    f"http://127.0.0.1:{port}/readyz", timeout=aiohttp.ClientTimeout(total=1)
                ) as response,
            ):
                return response.status == 200
        except (aiohttp.ClientError, TimeoutError):
            return False


Start = Callable[[dict[str, int]], Awaitable[Launcher]]


@pytest.fixture
async def launch(settings: Settings) -> AsyncIterator[Start]:
    """Start launchers on given ports; Ctrl-C (then SIGKILL) any still running at the end."""
    started: list[Launcher] = []

    async def start(ports: dict[str, int]) -> Launcher:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CALLBACKS_")}
        env.update({k: str(v) for k, v in ports.items()})
        env.update(
            {
                "CALLBACKS_DATABASE_URL": settings.require_database_url(),
                "CALLBACKS_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
                "CALLBACKS_EXTERNAL_KAFKA": "true",
                "CALLBACKS_TOPIC_PREFIX": settings.topic_prefix,
                "CALLBACKS_KAFKA_PARTITIONS": "3",
                "CALLBACKS_LOG_FORMAT": "console",
                **settings.kafka_environment(),
            }
        )
        process = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "callbacks_dev.devstack"),
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
        launcher = Launcher(process, ports)
        started.append(launcher)
        return launcher

    try:
        yield start
    finally:
        for launcher in started:
            process = launcher.process
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(signal.SIGINT)
                try:
                    await asyncio.wait_for(process.wait(), 60)
                except TimeoutError:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(process.pid, signal.SIGKILL)
                    await process.wait()


def _ports() -> dict[str, int]:
    return {
        "CALLBACKS_API_PORT": free_port(),
        "CALLBACKS_DISPATCHER_METRICS_PORT": free_port(),
        "CALLBACKS_REPORTER_METRICS_PORT": free_port(),
    }


async def _stopped(launcher: Launcher, children: list[psutil.Process]) -> int:
    """Wait for the launcher's exit code; every process it started must be gone too."""
    await launcher.read_until(r"^stopping \.\.\.$", timeout_s=30)
    code = await asyncio.wait_for(launcher.process.wait(), 60)
    _gone, alive = await asyncio.to_thread(psutil.wait_procs, children, timeout=10)
    assert not alive, [p.pid for p in alive]
    return code


async def test_a_killed_dispatcher_is_restarted_and_ready_again(
    launch: Start,
) -> None:
    ports = _ports()
    launcher = await launch(ports)
    await launcher.read_until(READY_MARKER, timeout_s=120)
    (old_pid,) = launcher.service_pids("dispatcher")
    children = psutil.Process(launcher.process.pid).children(recursive=True)

    os.kill(old_pid, signal.SIGKILL)

    line = await launcher.read_until(r"^dispatcher exited .*", timeout_s=10)
    found = re.fullmatch(
        r"dispatcher exited with code -9 \(SIGKILL\); restart 1 in 0\.5s; log: (\S+)",
        line.group(0),
    )
    assert found, line.group(0)
    assert found.group(1).endswith("dispatcher.log")
    assert os.path.exists(found.group(1))

    port = ports["CALLBACKS_DISPATCHER_METRICS_PORT"]

    async def back() -> bool:
        pids = launcher.service_pids("dispatcher")
        return bool(pids) and pids != [old_pid] and await launcher.ready(port)

    await eventually(back, timeout_s=60, what="a new dispatcher answering /readyz")
    assert await launcher.ready(ports["CALLBACKS_API_PORT"])  # the others went on

    launcher.process.send_signal(signal.SIGINT)
    (new_pid,) = launcher.service_pids("dispatcher")
    assert await _stopped(launcher, [*children, psutil.Process(new_pid)]) == 0


async def test_a_crash_looping_service_stops_the_stack_with_its_log_tail(
    launch: Start,
) -> None:
    ports = _ports()
    # The reporter's port is taken, so every reporter process fails at start.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", ports["CALLBACKS_REPORTER_METRICS_PORT"]))
        taken.listen()
        launcher = await launch(ports)
        children: list[psutil.Process] = []
        for restart in range(1, 5):
            line = await launcher.read_until(r"^reporter exited .*", timeout_s=60)
            if not children:  # every other process of the stack has started by now
                children = psutil.Process(launcher.process.pid).children(recursive=True)
            assert re.fullmatch(
                rf"reporter exited with code 1; restart {restart} in \S+s; log: \S+reporter\.log",
                line.group(0),
            ), line.group(0)
        crash = await launcher.read_until(r"^reporter exited .*", timeout_s=30)
        assert "5 exits within 60s: a crash loop, stopping the stack" in crash.group(0)
        header = await launcher.read_until(r"^--- last (\d+) lines of \S+reporter\.log ---$", 5)
        assert 1 <= int(header.group(1)) <= 30
        await launcher.read_until(r"^---$", timeout_s=5)
        shown = launcher.printed[launcher.printed.index(header.group(0)) + 1 : -1]
        assert len(shown) == int(header.group(1))
        assert any("address already in use" in line.lower() for line in shown), shown
        assert await _stopped(launcher, children) == 1
    assert READY_MARKER not in "\n".join(launcher.printed)
