"""The whole local stack: PostgreSQL, broker, migrations, topics and the services.

Each service runs in its own process, started as in production (``python -m <name>``)
with ``CALLBACKS_*`` variables; nothing here reaches into a service's insides.
``supervise`` restarts a service that exits (``callbacks_dev.devstack.supervisor``).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import importlib.util
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from callbacks.db import migrate
from callbacks.kafka import ensure_topics
from callbacks.settings import Settings

from callbacks_dev.devstack.broker import Broker
from callbacks_dev.devstack.kafka_cluster import KafkaCluster
from callbacks_dev.devstack.postgres import PostgresServer
from callbacks_dev.devstack.processes import ChildProcess, free_port
from callbacks_dev.devstack.supervisor import CrashLoop, ServiceExit, Supervisor

SERVICES = ("profile_api", "dispatcher", "reporter")


def service_available(module: str) -> bool:
    return importlib.util.find_spec(f"{module}.__main__") is not None


@dataclass
class StackConfig:
    api_port: int = 8080
    dispatcher_metrics_port: int = 9101
    reporter_metrics_port: int = 9102
    kafka_bootstrap: str = "127.0.0.1:9092"
    external_kafka: bool = False
    # "tansu": the embedded single-node broker; "kafka": a local 3-node Apache Kafka
    # cluster (`make run BROKER=kafka`), its first broker on the bootstrap port.
    broker: str = "tansu"
    database_url: str | None = None
    admin_token: str = "dev-admin-token"  # noqa: S105 - the documented local-only token
    master_key: str = field(default_factory=lambda: base64.b64encode(os.urandom(32)).decode())
    extra_env: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_environment(cls) -> StackConfig:
        settings = Settings()
        return cls(
            api_port=settings.api_port,
            dispatcher_metrics_port=settings.dispatcher_metrics_port,
            reporter_metrics_port=settings.reporter_metrics_port,
            kafka_bootstrap=settings.kafka_bootstrap,
            external_kafka=settings.external_kafka,
            database_url=settings.database_url.get_secret_value()
            if settings.database_url
            else None,
            admin_token=(
                settings.admin_token.get_secret_value()
                if settings.admin_token
                else "dev-admin-token"
            ),
            master_key=(
                settings.master_key.get_secret_value()
                if settings.master_key
                else base64.b64encode(os.urandom(32)).decode()
            ),
        )

    @classmethod
    def on_free_ports(cls) -> StackConfig:
        return cls(
            api_port=free_port(),
            dispatcher_metrics_port=free_port(),
            reporter_metrics_port=free_port(),
            kafka_bootstrap=f"127.0.0.1:{free_port()}",
        )


class LocalStack:
    """Start and stop everything; usable from ``make run``, tests and benchmarks."""

    def __init__(self, config: StackConfig) -> None:
        self.config = config
        self.workdir = Path(tempfile.mkdtemp(prefix="callbacks-stack-"))
        self.postgres: PostgresServer | None = None
        self.broker: Broker | None = None
        self.kafka: KafkaCluster | None = None
        self.services: dict[str, ChildProcess] = {}
        self.database_url = config.database_url or ""

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.config.api_port}"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "CALLBACKS_DATABASE_URL": self.database_url,
                "CALLBACKS_KAFKA_BOOTSTRAP": self.config.kafka_bootstrap,
                "CALLBACKS_API_HOST": "127.0.0.1",
                "CALLBACKS_API_PORT": str(self.config.api_port),
                "CALLBACKS_DISPATCHER_METRICS_PORT": str(self.config.dispatcher_metrics_port),
                "CALLBACKS_REPORTER_METRICS_PORT": str(self.config.reporter_metrics_port),
                "CALLBACKS_ADMIN_TOKEN": self.config.admin_token,
                "CALLBACKS_MASTER_KEY": self.config.master_key,
                "CALLBACKS_ALLOW_PRIVATE_TARGETS": "true",
                "CALLBACKS_ALLOW_PLAIN_HTTP": "true",
                **self._durability(),
            }
        )
        env.update(self.config.extra_env)
        return env

    def _durability(self) -> dict[str, str]:
        """Replication and producer settings that fit the broker this stack runs on."""
        if self.config.external_kafka:
            return {}
        if self.config.broker == "kafka":
            return {
                "CALLBACKS_KAFKA_REPLICATION_FACTOR": "3",
                "CALLBACKS_KAFKA_MIN_INSYNC_REPLICAS": "2",
                "CALLBACKS_KAFKA_IDEMPOTENT_PRODUCER": "true",
            }
        return {
            "CALLBACKS_KAFKA_REPLICATION_FACTOR": "1",
            "CALLBACKS_KAFKA_MIN_INSYNC_REPLICAS": "1",
            "CALLBACKS_KAFKA_IDEMPOTENT_PRODUCER": "false",  # Tansu fails it
        }

    async def start_infrastructure(self) -> None:
        if not self.config.database_url:
            self.postgres = PostgresServer()
            await asyncio.to_thread(self.postgres.start)
            self.database_url = self.postgres.dsn
        if not self.config.external_kafka:
            host, _, port = self.config.kafka_bootstrap.rpartition(":")
            if self.config.broker == "kafka":
                self.kafka = KafkaCluster(
                    3, host=host, workdir=self.workdir / "kafka", first_broker_port=int(port)
                )
                self.kafka.workdir.mkdir(parents=True, exist_ok=True)
                await asyncio.to_thread(self.kafka.start)
                self.config.kafka_bootstrap = self.kafka.bootstrap
            else:
                self.broker = Broker(
                    host=host, port=int(port), log_path=self.workdir / "broker.log"
                )
                await asyncio.to_thread(self.broker.start)
        await migrate(self.database_url)
        await ensure_topics(self.settings())

    def settings(self) -> Settings:
        env = {
            k[len("CALLBACKS_") :].lower(): v
            for k, v in self.env().items()
            if k.startswith("CALLBACKS_")
        }
        return Settings(**env)  # type: ignore[arg-type]

    def start_service(self, module: str) -> ChildProcess:
        process = ChildProcess(
            module,
            [sys.executable, "-m", module],
            env=self.env(),
            log_path=self.workdir / f"{module}.log",
        )
        process.start()
        self.services[module] = process
        return process

    async def wait_ready(self, url: str, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        async with aiohttp.ClientSession() as session:
            while time.monotonic() < deadline:
                try:
                    async with session.get(url, timeout=aiohttp.ClientTimeout(total=1)) as response:
                        if response.status == 200:
                            return
                except (aiohttp.ClientError, TimeoutError):
                    pass
                await asyncio.sleep(0.1)
        raise TimeoutError(f"{url} not ready after {timeout_s:.0f}s")

    def ready_url(self, module: str) -> str:
        port = {
            "profile_api": self.config.api_port,
            "dispatcher": self.config.dispatcher_metrics_port,
            "reporter": self.config.reporter_metrics_port,
        }[module]
        return f"http://127.0.0.1:{port}/readyz"

    async def start_services(self, modules: tuple[str, ...] = SERVICES) -> list[str]:
        started = self.spawn_services(modules)
        await self.wait_services_ready(started)
        return started

    def spawn_services(self, modules: tuple[str, ...] = SERVICES) -> list[str]:
        """Start the service processes that are installed, without waiting for them."""
        started = [m for m in modules if service_available(m)]
        for module in started:
            self.start_service(module)
        return started

    async def wait_services_ready(self, modules: list[str]) -> None:
        for module in modules:
            await self.wait_ready(self.ready_url(module))

    async def supervise(
        self,
        stop: asyncio.Event,
        report: Callable[[ServiceExit], None],
        supervisor: Supervisor | None = None,
        poll_s: float = 0.1,
    ) -> ServiceExit | None:
        """Restart services that exit, as ``supervisor`` decides, until ``stop`` is set.

        Every exit is passed to ``report``. Returns the exit that made a crash loop (the
        stack is then to be stopped), or None once ``stop`` is set.
        """
        policy = supervisor or Supervisor()
        for name in self.services:
            policy.started(name)
        while not stop.is_set():
            for name, process in self.services.items():
                if policy.waiting(name) or process.alive():
                    continue
                code = process.process.returncode if process.process else None
                event = ServiceExit(name, code, process.log_path, policy.exited(name))
                report(event)
                if isinstance(event.decision, CrashLoop):
                    return event
            for name in policy.due():
                self.services[name].start()
                policy.started(name)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=poll_s)
        return None

    async def create_account(self, name: str) -> dict[str, str]:
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                f"{self.api_url}/v1/accounts",
                json={"name": name},
                headers={"Authorization": f"Bearer {self.config.admin_token}"},
            ) as response,
        ):
            response.raise_for_status()
            account: dict[str, str] = await response.json()
            return account

    def stop(self) -> None:
        for process in reversed(list(self.services.values())):
            process.stop()
        self.services.clear()
        if self.broker is not None:
            self.broker.stop()
        if self.kafka is not None:
            self.kafka.stop()
        if self.postgres is not None:
            self.postgres.stop()
