"""``make run``: the whole stack on embedded defaults, supervised, until Ctrl-C.

Exits 0 on Ctrl-C, 1 when a service crash-loops (``callbacks_dev.devstack.supervisor``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal

from callbacks_dev.devstack.stack import LocalStack, StackConfig
from callbacks_dev.devstack.supervisor import CrashLoop, ServiceExit, crash_report, describe


async def _run(broker: str) -> int:
    """Run the stack until Ctrl-C (0) or until a service crash-loops (1)."""
    config = StackConfig.from_environment()
    config.broker = broker
    stack = LocalStack(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    def report(event: ServiceExit) -> None:
        crashed = isinstance(event.decision, CrashLoop)
        print(crash_report(event) if crashed else describe(event), flush=True)

    try:
        what = "a 3-node Apache Kafka cluster" if broker == "kafka" else "the broker (Tansu)"
        print(f"starting PostgreSQL and {what} ...", flush=True)
        await stack.start_infrastructure()
        print("starting services ...", flush=True)
        started = stack.spawn_services()
        supervision = asyncio.create_task(stack.supervise(stop, report))
        ready = asyncio.create_task(_ready(stack, started))
        await asyncio.wait({supervision, ready}, return_when=asyncio.FIRST_COMPLETED)
        if ready.done():
            if ready.exception() is not None:
                stop.set()
                await supervision
            _print_banner(stack, started, ready.result())
        else:
            ready.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ready
        return 1 if await supervision else 0
    finally:
        print("stopping ...", flush=True)
        stack.stop()


async def _ready(stack: LocalStack, started: list[str]) -> dict[str, str]:
    await stack.wait_services_ready(started)
    return await stack.create_account("dev")


def _print_banner(stack: LocalStack, started: list[str], account: dict[str, str]) -> None:
    key = account["api_key"]
    print(
        "\n"
        f"  services     {', '.join(started)} (logs in {stack.workdir})\n"
        f"  API          {stack.api_url}\n"
        f"  broker       {stack.config.kafka_bootstrap}\n"
        f"  database     {stack.database_url}\n"
        f"  account id   {account['id']}\n"
        f"  dev API key  {key}\n"
        f"  admin token  {stack.config.admin_token}\n\n"
        f"  try: curl -s -H 'api-key: {key}' {stack.api_url}/v1/channels\n\n"
        "A service that exits is restarted; five exits in a minute stop the stack.\n"
        "Ctrl-C stops everything.",
        flush=True,
    )


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m callbacks_dev.devstack")
    parser.add_argument(
        "--broker",
        choices=["tansu", "kafka"],
        default="tansu",
        help="tansu: the embedded broker (quick); kafka: a local 3-node Apache Kafka cluster",
    )
    args = parser.parse_args()
    return asyncio.run(_run(args.broker))


if __name__ == "__main__":
    raise SystemExit(main())
