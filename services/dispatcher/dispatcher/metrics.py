"""The dispatcher's Prometheus metrics (names fixed by contract §8), built on a registry.

Labels are bounded: outcome, a reason *kind* (never free text), a topic name without the
deployment prefix, a breaker state. Hosts are labels only in the concurrency-limit gauge,
and there only the busiest few (``endpoints.limit_gauge``).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from dispatcher.endpoints.limit_gauge import EndpointLimitCollector

DELIVERIES_TOTAL = "callbacks_deliveries_total"
DELIVERY_DURATION = "callbacks_delivery_duration_seconds"
RETRIES_SCHEDULED_TOTAL = "callbacks_retries_scheduled_total"
DEAD_LETTERS_TOTAL = "callbacks_dead_letters_total"
EVENTS_SKIPPED_TOTAL = "callbacks_events_skipped_total"
EVENTS_CONSUMED_TOTAL = "callbacks_events_consumed_total"
CONSUMER_LAG = "callbacks_consumer_lag"
PROFILES_CACHED = "callbacks_profiles_cached"
IN_FLIGHT = "callbacks_dispatcher_in_flight"
UNCOMMITTED = "callbacks_dispatcher_uncommitted"
BREAKER_TRANSITIONS = "callbacks_circuit_breaker_transitions_total"
BREAKERS_OPEN = "callbacks_circuit_breakers_open"
PROFILE_ERRORS = "callbacks_profile_cache_errors_total"
INTERNAL_ERRORS = "callbacks_dispatcher_internal_errors_total"
OFFSET_COMMITS = "callbacks_offset_commits_total"
HANDOFF_RESENDS = "callbacks_handoff_resends_total"
REVOKE_DRAINS = "callbacks_revoke_drain_seconds"
DEFERRED_TOTAL = "callbacks_deliveries_deferred_total"
PROFILE_HOLDS = "callbacks_profile_holds_total"
ORDERING_WAITING = "callbacks_ordering_waiting"

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class DispatcherMetrics:
    """Every dispatcher metric, registered on the registry it is given."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.deliveries = Counter(
            DELIVERIES_TOTAL,
            "Delivery attempts by outcome (delivered, retrying, failed), and callbacks "
            "ended without one (cancelled, stale).",
            ["outcome"],
            registry=registry,
        )
        self.duration = Histogram(
            DELIVERY_DURATION,
            "Duration of one HTTP delivery attempt in seconds.",
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.retries = Counter(
            RETRIES_SCHEDULED_TOTAL,
            "Failed attempts handed to a retry topic.",
            registry=registry,
        )
        self.dead_letters = Counter(
            DEAD_LETTERS_TOTAL,
            "Records written to callbacks.dead, by reason kind.",
            ["reason"],
            registry=registry,
        )
        self.skipped = Counter(
            EVENTS_SKIPPED_TOTAL,
            "Events not delivered on purpose, by reason.",
            ["reason"],
            registry=registry,
        )
        self.consumed = Counter(
            EVENTS_CONSUMED_TOTAL,
            "Records consumed, by topic (without the deployment prefix).",
            ["topic"],
            registry=registry,
        )
        self._consumed_in: dict[str, Counter] = {}
        self.lag = Gauge(
            CONSUMER_LAG,
            "Records behind the partition end, by topic (without prefix).",
            ["topic"],
            registry=registry,
        )
        self.profiles_cached = Gauge(
            PROFILES_CACHED, "Profiles held in the dispatcher's cache.", registry=registry
        )
        self.in_flight = Gauge(
            IN_FLIGHT, "Records fetched and not yet finished.", registry=registry
        )
        # Read when scraped (``worker.Dispatcher`` gives it the tracker's count).
        self.uncommitted = Gauge(
            UNCOMMITTED,
            "Records taken whose offsets are not committed yet (what a crash repeats at most).",
            registry=registry,
        )
        self.breaker_transitions = Counter(
            BREAKER_TRANSITIONS,
            "Circuit breaker state changes, by new state.",
            ["state"],
            registry=registry,
        )
        self.breakers_open = Gauge(
            BREAKERS_OPEN, "Endpoint hosts whose breaker is open now.", registry=registry
        )
        self.profile_errors = Counter(
            PROFILE_ERRORS,
            "Profile records that could not be loaded, by reason.",
            ["reason"],
            registry=registry,
        )
        self.handoff_resends = Counter(
            HANDOFF_RESENDS,
            "Batches of outcome, retry or parked records sent again because the broker did"
            " not take them (the records are never dropped).",
            registry=registry,
        )
        self.revoke_drain = Histogram(
            REVOKE_DRAINS,
            "Time a member waited, on losing partitions, for their in-flight callbacks.",
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
            registry=registry,
        )
        self.internal_errors = Counter(
            INTERNAL_ERRORS,
            "Unexpected errors while handling a record, by stage.",
            ["stage"],
            registry=registry,
        )
        self.deferred = Counter(
            DEFERRED_TOTAL,
            "Callbacks parked on a retry topic without an attempt, by reason (host_busy, "
            "account_busy, circuit_open, ordering: behind an earlier callback of its message).",
            ["reason"],
            registry=registry,
        )
        self.profile_holds = Counter(
            PROFILE_HOLDS,
            "Events held for a profile not yet in the cache, by result (found, timed_out, "
            "full: too many held already).",
            ["result"],
            registry=registry,
        )
        # Children resolved once: ``labels()`` per attempt is a measurable cost.
        self.by_outcome = {
            outcome: self.deliveries.labels(outcome=outcome)
            for outcome in ("delivered", "retrying", "failed", "cancelled", "stale")
        }
        self.ordering_waiting = Gauge(
            ORDERING_WAITING,
            "Callbacks held behind an earlier callback of their message (ordering: fifo),"
            " in the partitions this member owns.",
            registry=registry,
        )
        self.commits = Counter(
            OFFSET_COMMITS, "Offset commits, by result.", ["result"], registry=registry
        )
        # callbacks_endpoint_concurrency_limit{host}: read from the guard at scrape time.
        self.endpoint_limits = EndpointLimitCollector()
        registry.register(self.endpoint_limits)

    def consumed_in(self, topic: str, prefix: str) -> Counter:
        """The consumed-records counter of ``topic`` (resolved once per topic)."""
        counter = self._consumed_in.get(topic)
        if counter is None:
            counter = self.consumed.labels(topic=topic.removeprefix(prefix))
            self._consumed_in[topic] = counter
        return counter
