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

    def settings(self, **overrides: object) -> Settings:
        """Settings pointing at the shared servers; modules pick their own topic prefix."""
        values: dict[str, object] = {
            "kafka_bootstrap": self.kafka_bootstrap,
            "database_url": self.database_url,
            "master_key": self.master_key,
            "kafka_partitions": 6,
            "api_host": "127.0.0.1",
            "admin_token": "bench-admin-token",
        }
        values.update(overrides)
        return Settings.model_validate(values)
