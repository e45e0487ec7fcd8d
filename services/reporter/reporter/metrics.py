"""The reporter's Prometheus metrics (contract §8), built against a registry passed in."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REPORTS_SENT_TOTAL = "callbacks_reports_sent_total"
REPORT_FAILURES_TOTAL = "callbacks_report_failures_total"
OUTCOMES_INGESTED_TOTAL = "callbacks_outcomes_ingested_total"
OUTCOMES_DUPLICATE_TOTAL = "callbacks_outcomes_duplicate_total"
INGEST_LAG = "callbacks_reporter_ingest_lag"
INGEST_BATCH_DURATION = "callbacks_reporter_ingest_batch_duration_seconds"
INGEST_ERRORS_TOTAL = "callbacks_reporter_ingest_errors_total"
DEAD_LETTERS_TOTAL = "callbacks_dead_letters_total"
PROFILES_DISABLED_TOTAL = "callbacks_profiles_disabled_total"
PROFILE_NOTICES_SENT_TOTAL = "callbacks_profile_notices_sent_total"


class ReporterMetrics:
    """Every metric the reporter exports; labels are small fixed sets."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.reports_sent = Counter(
            REPORTS_SENT_TOTAL,
            "Report emails handed to the SMTP relay, by kind (daily, weekly, monthly, now).",
            ["kind"],
            registry=registry,
        )
        self.report_failures = Counter(
            REPORT_FAILURES_TOTAL,
            "Report and notice failures by stage; build and notice_build are set aside"
            " (never retried), the others are retried when their lease expires.",
            ["stage"],
            registry=registry,
        )
        self.outcomes_ingested = Counter(
            OUTCOMES_INGESTED_TOTAL,
            "Outcome records stored for the first time (replays are not counted here).",
            registry=registry,
        )
        self.outcomes_duplicate = Counter(
            OUTCOMES_DUPLICATE_TOTAL,
            "Outcome records whose attempt_id was already stored (a replayed batch).",
            registry=registry,
        )
        self.ingest_lag = Gauge(
            INGEST_LAG,
            "Outcome records on the broker not yet read by this reporter (consumer lag).",
            registry=registry,
        )
        self.batch_duration = Histogram(
            INGEST_BATCH_DURATION,
            "Time to parse, store and commit one batch of outcome records.",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
            registry=registry,
        )
        self.ingest_errors = Counter(
            INGEST_ERRORS_TOTAL,
            "Ingest failures (database write, offset commit) by stage; the batch is retried.",
            ["stage"],
            registry=registry,
        )
        self.dead_letters = Counter(
            DEAD_LETTERS_TOTAL,
            "Records sent to callbacks.dead, by reason.",
            ["reason"],
            registry=registry,
        )
        self.profiles_disabled = Counter(
            PROFILES_DISABLED_TOTAL,
            "Profiles disabled by the reporter, by reason (endpoint_gone, failing).",
            ["reason"],
            registry=registry,
        )
        self.notices_sent = Counter(
            PROFILE_NOTICES_SENT_TOTAL,
            "Profile health emails handed to the SMTP relay, by kind.",
            ["kind"],
            registry=registry,
        )
