"""``python -m callbacks init`` — what the migration Job and compose's ``init`` service
run — succeeds against real servers, and again when everything already exists."""

from __future__ import annotations

import asyncio
import sys

import pytest

from tests.deploy.helpers import RunningStack

pytestmark = pytest.mark.integration


async def test_init_is_idempotent(running_stack: RunningStack) -> None:
    env = running_stack.stack.env()
    for _ in range(2):
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "callbacks",
            "init",
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await asyncio.wait_for(process.communicate(), timeout=60)
        assert process.returncode == 0, output.decode()
