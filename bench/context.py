"""What every benchmark module gets: the shared broker and a scratch directory."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Context:
    kafka_bootstrap: str
    workdir: Path
