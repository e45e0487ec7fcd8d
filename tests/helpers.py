"""Helpers shared by every test directory: waiting on effects with a deadline (never a bare
sleep), fresh names, a loopback TLS certificate, and the brokers a test runs against.

Fixtures live in the ``conftest.py`` files; what a test imports lives in a helpers module
(this one, or the ``helpers.py`` beside a directory's conftest), never in a conftest."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ipaddress
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from callbacks.settings import Settings
from callbacks_dev.devstack.kafka_cluster import KafkaCluster
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

T = TypeVar("T")


def unique(prefix: str = "t") -> str:
    """A fresh name (``prefix`` and ten hex digits): topic prefixes, accounts, groups."""
    return f"{prefix}{uuid.uuid4().hex[:10]}"


async def eventually(
    probe: Callable[[], Awaitable[T]],
    *,
    timeout_s: float = 10.0,
    interval_s: float = 0.05,
    what: str = "condition",
) -> T:
    """Poll ``probe`` until it returns a truthy value; fail with ``what`` at the deadline."""
    deadline = time.monotonic() + timeout_s
    last: T | None = None
    while time.monotonic() < deadline:
        last = await probe()
        if last:
            return last
        await asyncio.sleep(interval_s)
    raise AssertionError(f"{what} did not hold within {timeout_s}s (last: {last!r})")


def self_signed_certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 (its own CA, valid for an hour) and its key, written
    as PEM files under ``tmp_path``: for TLS servers on loopback in tests."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


# The brokers: the embedded Tansu and a local 3-node Apache Kafka cluster, each started
# once per session. A Kafka-facing test module (produce/consume/commit, the outbox relay,
# the profile cache on a compacted topic, deliver/retry/dead letter, redelivery, reporter
# ingest, the fleet) says ``pytestmark = KAFKA_FACING`` and runs on both; everything
# else (HTTP, validation, pages) runs on Tansu, the quick one.
BROKER_KINDS = ("tansu", "kafka")
KAFKA_FACING = pytest.mark.brokers(*BROKER_KINDS)


@dataclass(frozen=True)
class KafkaTarget:
    """The broker one test runs against, with the settings that go with it.

    ``tansu`` is the embedded single-node broker (replication 1, no idempotent producer);
    ``kafka`` the local 3-node Apache Kafka cluster (replication 3, min ISR 2, idempotent).
    """

    kind: str
    bootstrap: str
    replication_factor: int = 1
    min_insync_replicas: int = 1
    idempotent_producer: bool = False
    cluster: KafkaCluster | None = None

    def fields(self) -> dict[str, Any]:
        """Keyword arguments of :class:`Settings` that point at this broker."""
        return {
            "kafka_bootstrap": self.bootstrap,
            "kafka_replication_factor": self.replication_factor,
            "kafka_min_insync_replicas": self.min_insync_replicas,
            "kafka_idempotent_producer": self.idempotent_producer,
        }


async def drop_namespace(settings: Settings) -> None:
    """Delete every topic of ``settings.topic_prefix`` (best effort: a failure is
    ignored, the topics only take room).

    Every test has a namespace of a dozen topics. Kept, they add up to thousands by the
    end of the suite: on the Apache Kafka cluster, three brokers with small heaps then
    stall long enough to be fenced under the tests that need them steady; on either
    broker, every client whose metadata covers all topics (the dispatcher subscribes by
    pattern) decodes all of them at every refresh.
    """
    if not settings.topic_prefix:
        return  # never the whole broker
    with contextlib.suppress(KafkaError, OSError, TimeoutError):
        admin = AIOKafkaAdminClient(
            bootstrap_servers=settings.kafka_bootstrap, request_timeout_ms=30_000
        )
        await admin.start()
        try:
            names = [n for n in await admin.list_topics() if n.startswith(settings.topic_prefix)]
            if names:
                await admin.delete_topics(names)
        finally:
            await admin.close()
