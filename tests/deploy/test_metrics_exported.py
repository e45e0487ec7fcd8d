"""Every metric the dashboard and the alert rules query is one the services export:
scraped from the three services running as processes, not read from their source."""

from __future__ import annotations

import pytest

from tests.deploy.helpers import RunningStack
from tests.deploy.promql import (
    dashboard_expressions,
    label_uses,
    metric_names,
    rule_expressions,
)

pytestmark = pytest.mark.integration

# The metric names contract §8 and the deploy brief fix; the dashboard must show each.
CONTRACT_METRICS = {
    "callbacks_deliveries_total",
    "callbacks_delivery_duration_seconds_bucket",
    "callbacks_retries_scheduled_total",
    "callbacks_dead_letters_total",
    "callbacks_events_skipped_total",
    "callbacks_events_consumed_total",
    "callbacks_consumer_lag",
    "callbacks_profiles_cached",
    "callbacks_outbox_pending",
    "callbacks_reports_sent_total",
    "callbacks_http_requests_total",
    "callbacks_http_request_duration_seconds_bucket",
    "callbacks_outcomes_ingested_total",
    "callbacks_reporter_ingest_lag",
}
# Labelled metrics the test traffic (one delivery, one skip, one dead letter, API calls)
# must have given samples, so their label names can be checked against the queries.
MUST_HAVE_SAMPLES = {
    "callbacks_deliveries_total",
    "callbacks_delivery_duration_seconds_bucket",
    "callbacks_events_skipped_total",
    "callbacks_dead_letters_total",
    "callbacks_events_consumed_total",
    "callbacks_consumer_lag",
    "callbacks_http_requests_total",
    "callbacks_http_request_duration_seconds_bucket",
}


def _queried() -> set[str]:
    return {
        name
        for expression in dashboard_expressions() + rule_expressions()
        for name in metric_names(expression)
    }


def test_dashboard_shows_every_contract_metric() -> None:
    shown = {n for e in dashboard_expressions() for n in metric_names(e)}
    assert not CONTRACT_METRICS - shown, sorted(CONTRACT_METRICS - shown)


async def test_every_queried_metric_is_exported_by_a_running_service(
    running_stack: RunningStack,
) -> None:
    exported = await running_stack.scrape_all()
    not_found = sorted(_queried() - exported.names)
    # One assertion, so a failure names both the missing services (no ``python -m
    # <module>`` yet) and the names the running ones do not export.
    report = {"services not running": running_stack.missing, "names not exported": not_found}
    assert report == {"services not running": [], "names not exported": []}


async def test_queried_labels_exist_on_the_exported_samples(
    running_stack: RunningStack,
) -> None:
    assert not running_stack.missing, f"services not running: {running_stack.missing}"
    exported = await running_stack.scrape_all()
    without_samples = MUST_HAVE_SAMPLES - exported.labels.keys()
    assert not without_samples, f"no samples after the test traffic: {sorted(without_samples)}"
    wrong = []
    for expression in dashboard_expressions() + rule_expressions():
        for name, labels in label_uses(expression).items():
            if name in exported.labels and not labels <= exported.labels[name]:
                wrong.append((name, sorted(labels - exported.labels[name]), expression))
    assert not wrong, wrong


async def test_each_service_serves_health_and_readiness(running_stack: RunningStack) -> None:
    import aiohttp

    assert not running_stack.missing, f"services not running: {running_stack.missing}"
    async with aiohttp.ClientSession() as session:
        for module in running_stack.started:
            ready = running_stack.stack.ready_url(module)
            for url in (ready.replace("/readyz", "/healthz"), ready):
                async with session.get(url) as response:
                    assert response.status == 200, url
