"""``make run``: the whole stack on embedded defaults, until Ctrl-C."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal

from callbacks.devstack.stack import LocalStack, StackConfig


async def _run(broker: str) -> None:
    config = StackConfig.from_environment()
    config.broker = broker
    stack = LocalStack(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        what = "a 3-node Apache Kafka cluster" if broker == "kafka" else "the broker (Tansu)"
        print(f"starting PostgreSQL and {what} ...", flush=True)
        await stack.start_infrastructure()
        print("starting services ...", flush=True)
        started = await stack.start_services()
        account = await stack.create_account("dev")
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
            "Ctrl-C stops everything.",
            flush=True,
        )
        while not stop.is_set():
            for name, process in stack.services.items():
                if not process.alive():
                    print(f"{name} exited; see {stack.workdir / (name + '.log')}", flush=True)
                    stop.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=1.0)
    finally:
        print("stopping ...", flush=True)
        stack.stop()


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m callbacks.devstack")
    parser.add_argument(
        "--broker",
        choices=["tansu", "kafka"],
        default="tansu",
        help="tansu: the embedded broker (quick); kafka: a local 3-node Apache Kafka cluster",
    )
    args = parser.parse_args()
    asyncio.run(_run(args.broker))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
