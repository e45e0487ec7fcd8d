"""``make demo`` / ``python -m callbacks_dev.simulator``: play the upstream gateways against a
running stack (``make run``) and show callbacks arriving at a local demo receiver."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys

from callbacks.logging import configure_logging
from callbacks.settings import Settings

from callbacks_dev.simulator.events import KINDS
from callbacks_dev.simulator.provision import ProvisionError
from callbacks_dev.simulator.run import (
    DEFAULT_MIX,
    DemoError,
    DemoOptions,
    run_demo_until_interrupted,
)


def parse_mix(text: str) -> dict[str, float]:
    """``sms=5,email=2,whatsapp=3`` → weights; kinds left out get none."""
    mix: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        kind, sep, weight = part.partition("=")
        if not sep or kind not in KINDS:
            raise argparse.ArgumentTypeError(f"{part!r}: expected KIND=WEIGHT, KIND in {KINDS}")
        try:
            mix[kind] = float(weight)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{part!r}: weight must be a number") from None
        if mix[kind] < 0:
            raise argparse.ArgumentTypeError(f"{part!r}: weight must not be negative")
    if not mix or sum(mix.values()) <= 0:
        raise argparse.ArgumentTypeError("the mix needs at least one positive weight")
    return {kind: weight for kind, weight in mix.items() if weight > 0}


def _share(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError("a share is between 0 and 1")
    return value


def build_parser(settings: Settings) -> argparse.ArgumentParser:
    admin = settings.admin_token.get_secret_value() if settings.admin_token else "dev-admin-token"
    parser = argparse.ArgumentParser(
        prog="python -m callbacks_dev.simulator",
        description="Produce realistic gateway events against a running stack (make run) "
        "and watch the callbacks arrive at a local demo receiver.",
    )
    add = parser.add_argument
    add("--api-url", default=f"http://127.0.0.1:{settings.api_port}", help="profile-api URL")
    add("--admin-token", default=admin, help="creates a fresh 'demo' account with it")
    add("--api-key", help="use this account's key instead of creating an account")
    add("--account-id", help="the account of --api-key (make run prints it)")
    add("--bootstrap", default=settings.kafka_bootstrap, help="Kafka bootstrap servers")
    add("--topic-prefix", default=settings.topic_prefix, help="namespace of every topic")
    add("--rate", type=float, default=50.0, help="events per second (default 50)")
    add("--duration", type=float, default=60.0, help="seconds of traffic (default 60)")
    add("--max-events", type=int, default=100_000, help="stop after this many events")
    mix = ",".join(f"{k}={v:g}" for k, v in DEFAULT_MIX.items())
    add("--mix", type=parse_mix, default=dict(DEFAULT_MIX), help=f"weights (default {mix})")
    add(
        "--failure-share",
        type=_share,
        default=0.05,
        help="share of callbacks the receiver refuses with 500/503 (default 0.05); a "
        "quarter of those on every attempt, so they end as dead letters",
    )
    add("--seed", type=int, default=None, help="seed for a repeatable run")
    add("--receiver-port", type=int, default=0, help="demo receiver port (default: free)")
    add("--time-scale", type=float, default=0.01, help="compress lifecycle gaps by this")
    add("--settle", type=float, default=20.0, help="seconds to wait for late callbacks")
    return parser


def main(argv: list[str] | None = None) -> int:
    settings = Settings()
    args = build_parser(settings).parse_args(argv)
    configure_logging("console", "warning")
    settings = settings.model_copy(
        update={"kafka_bootstrap": args.bootstrap, "topic_prefix": args.topic_prefix}
    )
    options = DemoOptions(
        api_url=args.api_url,
        admin_token=args.admin_token,
        api_key=args.api_key,
        account_id=args.account_id,
        rate=args.rate,
        duration_s=args.duration,
        max_events=args.max_events,
        mix=args.mix,
        failure_share=args.failure_share,
        seed=args.seed,
        receiver_port=args.receiver_port,
        time_scale=args.time_scale,
        settle_s=args.settle,
    )
    try:
        stats = asyncio.run(run_demo_until_interrupted(options, settings, sys.stdout))
    except (DemoError, ProvisionError) as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        with contextlib.suppress(BrokenPipeError):
            print("\ndemo: interrupted", file=sys.stderr)
        return 130
    return 0 if any(row.delivered for row in stats.by_event.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
