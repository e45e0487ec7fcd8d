"""What every benchmark module gets: the shared broker, PostgreSQL, a scratch directory."""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass, field
from pathlib import Path

from callbacks.settings import Settings


@dataclass(frozen=True)
class Context:
    kafka_bootstrap: str
    workdir: Path
    database_url: str | None = None
    master_key: str = field(default_factory=lambda: base64.b64encode(os.urandom(32)).decode())
    # The broker's durability settings: Tansu's by default (one replica, no idempotent
    # producer); the Apache Kafka cluster's run passes 3, 2 and true.
    kafka_durability: dict[str, object] = field(
        default_factory=lambda: {
            "kafka_replication_factor": 1,
            "kafka_min_insync_replicas": 1,
            "kafka_idempotent_producer": False,
        }
    )

    def settings(self, **overrides: object) -> Settings:
        """Settings pointing at the shared servers; modules pick their own topic prefix."""
        values: dict[str, object] = {
            "kafka_bootstrap": self.kafka_bootstrap,
            "database_url": self.database_url,
            "master_key": self.master_key,
            "kafka_partitions": 6,
            "api_host": "127.0.0.1",
            "admin_token": "bench-admin-token",
            **self.kafka_durability,
        }
        values.update(overrides)
        return Settings.model_validate(values)
