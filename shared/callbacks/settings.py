"""Typed settings, read once at start-up from ``CALLBACKS_*`` variables (contract §1)."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any, Literal, Self

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from callbacks.durations import Duration, parse_schedule
from callbacks.topics import Topics

DEFAULT_RETRY_SCHEDULE = "5s,30s,2m,10m,30m,1h,3h,6h,12h"


class Settings(BaseSettings):
    """Everything any service reads from its environment. One object, passed down."""

    model_config = SettingsConfigDict(
        env_prefix="CALLBACKS_", extra="ignore", validate_assignment=True
    )

    database_url: SecretStr | None = None
    kafka_bootstrap: str = "127.0.0.1:9092"
    kafka_partitions: int = Field(default=6, ge=1, le=1024)
    topic_prefix: str = ""
    external_kafka: bool = False
    # Kafka durability (design: at-least-once, never lost): the replication of every topic
    # `init` creates, and the idempotent producer (Apache Kafka has it; Tansu fails it).
    kafka_replication_factor: int = Field(default=3, ge=1, le=32)
    kafka_min_insync_replicas: int = Field(default=2, ge=1, le=32)
    kafka_idempotent_producer: bool = True
    # The largest record a service produces (aiokafka's ``max_request_size``); keep it at
    # or below the broker's ``message.max.bytes``. A record over it is set aside at once
    # (dead letter without its value, a final outcome) instead of failing on every resend.
    kafka_max_record_bytes: int = Field(default=1024 * 1024, ge=16 * 1024, le=64 * 1024 * 1024)
    # Retention per topic family. A retry topic keeps its records for the longest delay of
    # the schedule plus the margin, so an outage as long as the margin loses no retry.
    kafka_source_retention: Duration = Duration("7d")
    kafka_retry_retention_margin: Duration = Duration("7d")
    kafka_outcomes_retention: Duration = Duration("7d")
    kafka_dead_retention: Duration = Duration("30d")
    kafka_redeliver_retention: Duration = Duration("1d")
    # `callbacks.profiles` is compacted; a change stays readable as itself this long first.
    kafka_profiles_min_compaction_lag: Duration = Duration("1h")
    api_host: str = "0.0.0.0"  # noqa: S104 - a service listens on every interface in a pod
    api_port: int = 8080
    dispatcher_metrics_port: int = 9101
    reporter_metrics_port: int = 9102
    admin_token: SecretStr | None = None
    master_key: SecretStr | None = None
    allow_private_targets: bool = False
    retry_schedule: str = DEFAULT_RETRY_SCHEDULE
    delivery_timeout: Duration = Duration("10s")
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 1025
    smtp_from: str = "reports@localhost"
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False
    log_format: Literal["json", "console"] = "json"
    log_level: str = "info"
    outbox_poll_interval: Duration = Duration("1s")
    # Reporter: ingest batch size, how often the report schedule is checked, how long a
    # claimed report stays owned by its sender (a whole send is bounded by a third of it,
    # so a slow but live sender is never overtaken), and the per-command SMTP timeout.
    reporter_batch_max: int = Field(default=1000, ge=1, le=100_000)
    reporter_schedule_interval: Duration = Duration("30s")
    reporter_claim_lease: Duration = Duration("5m")
    smtp_timeout: Duration = Duration("30s")
    # Reporter: after an outage, the unsent closed periods among this many most recent
    # ones are reported, oldest first (a daily report: at most a week back).
    reporter_catch_up_periods: int = Field(default=7, ge=1, le=60)
    # Dispatcher knobs (design: endpoint protection, bounded memory, graceful shutdown).
    max_concurrency_per_host: int = Field(default=64, ge=1)
    max_in_flight: int = Field(default=1000, ge=1)
    breaker_failure_threshold: int = Field(default=5, ge=1)
    breaker_open: Duration = Duration("30s")
    shutdown_grace: Duration = Duration("10s")
    commit_interval: Duration = Duration("150ms")
    # The callback HTTP client (callbacks.http1.Limits): how much of an answer's header
    # section it reads before dropping the connection. aiohttp's client allows 8190 bytes
    # per field and 128 fields; these are no looser.
    max_response_header_bytes: int = Field(default=32 * 1024, ge=1024, le=1024 * 1024)
    max_response_header_field_bytes: int = Field(default=8190, ge=256, le=64 * 1024)
    max_response_headers: int = Field(default=100, ge=8, le=1000)
    # Consumer-group session timeout: how soon a crashed member's partitions move on.
    consumer_session_timeout: Duration = Duration("10s")
    # On losing partitions (a rebalance), how long a member waits for their in-flight
    # callbacks before it commits and lets go; capped at half the session timeout.
    revoke_grace: Duration = Duration("5s")
    # Dispatcher, tenants sharing it (design: endpoint protection, per tenant): the share
    # of max_in_flight one host, and one account, may hold while others have work; how
    # long, and how many at once, events wait for a profile not yet in the cache.
    host_in_flight_share: float = Field(default=0.25, gt=0, le=1)
    account_in_flight_share: float = Field(default=0.5, gt=0, le=1)
    unknown_profile_hold: Duration = Duration("2s")
    unknown_profile_hold_max: int = Field(default=500, ge=0)
    # Ordering state (docs/ordering.md): how long a message's entry is kept after its last
    # change (also the retention of callbacks.ordering), and at most how many messages'
    # entries one partition keeps (the least recently changed go first).
    ordering_state_horizon: Duration = Duration("2d")
    ordering_state_max_keys: int = Field(default=100_000, ge=1)
    # Reporter: a profile whose callbacks have all failed finally for this long (by
    # attempt time, no success in between) is disabled with reason "failing".
    auto_disable_after: Duration = Duration("5d")
    # Security (README "Security"). Production mode is the default: profile URLs and
    # token URLs must be https unless allow_plain_http (make run and the tests set it).
    # master_keys: comma-separated base64 keys, the one that seals first, old ones after
    # (each still opens); master_key alone is the one-key form and joins the list last.
    allow_plain_http: bool = False
    master_keys: SecretStr | None = None
    max_profiles_per_account: int = Field(default=1000, ge=1)
    # Per-account rate limits: at most N calls per window (a token bucket per replica).
    test_call_limit: int = Field(default=30, ge=1)
    test_call_window: Duration = Duration("1m")
    send_now_limit: int = Field(default=5, ge=1)
    send_now_window: Duration = Duration("1h")
    # Set: profile-api serves /metrics on this port only (where Prometheus is let in by
    # the production NetworkPolicy), not on the API port that tenants reach.
    api_metrics_port: int | None = None

    @field_validator("retry_schedule")
    @classmethod
    def _check_schedule(cls, value: str) -> str:
        parse_schedule(value)
        return value

    @model_validator(mode="after")
    def _check_replication(self) -> Settings:
        if self.kafka_min_insync_replicas > self.kafka_replication_factor:
            raise ValueError(
                "CALLBACKS_KAFKA_MIN_INSYNC_REPLICAS must not exceed"
                " CALLBACKS_KAFKA_REPLICATION_FACTOR"
            )
        return self

    @field_validator("master_key")
    @classmethod
    def _check_master_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            _decode_master_key(value.get_secret_value(), "CALLBACKS_MASTER_KEY")
        return value

    @field_validator("master_keys")
    @classmethod
    def _check_master_keys(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            keys = _split_keys(value.get_secret_value())
            if not keys:
                raise ValueError("CALLBACKS_MASTER_KEYS lists no key")
            for key in keys:
                _decode_master_key(key, "CALLBACKS_MASTER_KEYS")
        return value

    @property
    def retry_delays_s(self) -> tuple[float, ...]:
        return parse_schedule(self.retry_schedule)

    @property
    def topics(self) -> Topics:
        return Topics(self.topic_prefix, self.retry_delays_s)

    @property
    def revoke_wait(self) -> float:
        """Seconds a member waits on a revoke: ``revoke_grace``, capped at half the session
        timeout so the member stays in the group while it waits."""
        return min(self.revoke_grace, self.consumer_session_timeout / 2)

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """A copy with ``update`` applied and validated like values read from the
        environment (``{"delivery_timeout": "2s"}`` becomes a :class:`Duration`)."""
        copied = super().model_copy(deep=deep)
        for name, value in (update or {}).items():
            setattr(copied, name, value)
        return copied

    def master_keys_bytes(self) -> list[bytes]:
        """Every master key, the sealing one first: ``master_keys`` in order, then
        ``master_key`` if it is not listed there already."""
        keys: list[bytes] = []
        if self.master_keys is not None:
            keys = [base64.b64decode(k) for k in _split_keys(self.master_keys.get_secret_value())]
        if self.master_key is not None:
            single = base64.b64decode(self.master_key.get_secret_value())
            if single not in keys:
                keys.append(single)
        if not keys:
            raise RuntimeError("CALLBACKS_MASTER_KEYS or CALLBACKS_MASTER_KEY is required")
        return keys

    def master_key_bytes(self) -> bytes:
        """The key that seals (the first of :meth:`master_keys_bytes`)."""
        return self.master_keys_bytes()[0]

    def require_database_url(self) -> str:
        if self.database_url is None:
            raise RuntimeError("CALLBACKS_DATABASE_URL is required")
        return self.database_url.get_secret_value()

    def kafka_environment(self) -> dict[str, str]:
        """The broker and its durability settings as ``CALLBACKS_*`` variables, for a
        service started as a child process on the same broker."""
        return {
            "CALLBACKS_KAFKA_BOOTSTRAP": self.kafka_bootstrap,
            "CALLBACKS_KAFKA_REPLICATION_FACTOR": str(self.kafka_replication_factor),
            "CALLBACKS_KAFKA_MIN_INSYNC_REPLICAS": str(self.kafka_min_insync_replicas),
            "CALLBACKS_KAFKA_IDEMPOTENT_PRODUCER": str(self.kafka_idempotent_producer).lower(),
        }

    def masked(self) -> dict[str, object]:
        """The effective configuration for the start-up log line, secrets masked."""
        out: dict[str, object] = {}
        for name, value in self.model_dump().items():
            out[name] = "****" if isinstance(value, SecretStr) else value
        return out

    # Bulk recovery (profile-api): redeliver requests per second of one replica's
    # recovery, how long a replica's claim on a recovery lasts without progress, and how
    # often an idle replica looks for a recovery to take over (README "Configuration").
    recovery_rate: float = Field(default=50.0, gt=0, le=10_000)
    recovery_lease: Duration = Duration("30s")
    recovery_poll_interval: Duration = Duration("5s")

    @field_validator("recovery_lease", "recovery_poll_interval")
    @classmethod
    def _check_recovery_duration(cls, value: Duration) -> Duration:
        if value <= 0:
            raise ValueError("must be greater than zero")
        return value


def _split_keys(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def _decode_master_key(value: str, name: str) -> bytes:
    try:
        raw = base64.b64decode(value, validate=True)
    except binascii.Error as exc:
        raise ValueError(f"{name} must be base64") from exc
    if len(raw) != 32:
        raise ValueError(f"{name}: every key must decode to 32 bytes")
    return raw
