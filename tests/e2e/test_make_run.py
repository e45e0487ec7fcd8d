"""`make run` as a newcomer uses it: the launcher prints a working API URL and key, the
key creates and lists profiles, and Ctrl-C leaves no process and no port behind."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import time

import aiohttp
import psutil
from callbacks_dev.devstack.processes import free_port


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def _read_until(process: subprocess.Popen[str], marker: str, timeout_s: float) -> str:
    deadline = time.monotonic() + timeout_s
    seen = []
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            if process.poll() is not None:
                break
            continue
        seen.append(line)
        if marker in line:
            return "".join(seen)
    raise AssertionError(f"{marker!r} not printed within {timeout_s}s:\n{''.join(seen)}")


async def test_make_run_prints_a_working_key_and_ctrl_c_stops_everything() -> None:
    ports = {
        "CALLBACKS_API_PORT": free_port(),
        "CALLBACKS_DISPATCHER_METRICS_PORT": free_port(),
        "CALLBACKS_REPORTER_METRICS_PORT": free_port(),
    }
    broker_port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLBACKS_")}
    env.update({k: str(v) for k, v in ports.items()})
    env["CALLBACKS_KAFKA_BOOTSTRAP"] = f"127.0.0.1:{broker_port}"
    env["CALLBACKS_LOG_FORMAT"] = "console"
    process = subprocess.Popen(
        [sys.executable, "-m", "callbacks_dev.devstack"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    children: list[psutil.Process] = []
    try:
        printed = await asyncio.to_thread(_read_until, process, "Ctrl-C stops everything", 150)
        api = re.search(r"API\s+(http://\S+)", printed)
        key = re.search(r"dev API key\s+(\S+)", printed)
        assert api, printed
        assert key, printed
        assert f"127.0.0.1:{broker_port}" in printed
        children = psutil.Process(process.pid).children(recursive=True)
        assert len(children) >= 5  # postgres, broker, three services

        headers = {"api-key": key.group(1)}
        profile = {
            "title": "Order SMS status",
            "channel": "sms",
            "events": ["sms.send"],
            "method": "POST",
            "url": "https://example.com/hooks/sms",
            "body_type": "json",
            "body": '{"id": "{{message_id}}", "status": "{{status}}"}',
        }
        async with aiohttp.ClientSession(api.group(1), headers=headers) as session:
            async with session.post("/v1/callback-profiles", json=profile) as response:
                assert response.status == 201, await response.text()
                created = await response.json()
            async with session.get("/v1/callback-profiles") as response:
                listed = await response.json()
            assert [p["id"] for p in listed["items"]] == [created["id"]]
            bad = {**profile, "body": '{"id": "{{msg_id}}"}'}
            async with session.post("/v1/callback-profiles", json=bad) as response:
                assert response.status == 422
                assert (await response.json())["errors"][0]["field"] == "body"
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=60)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
            if process.stdout is not None:
                process.stdout.close()
    assert process.returncode == 0
    _gone, alive = psutil.wait_procs(children, timeout=10)
    assert not alive, [p.info for p in alive]
    for port in [*ports.values(), broker_port]:
        assert _port_free(port), f"port {port} still open after Ctrl-C"
