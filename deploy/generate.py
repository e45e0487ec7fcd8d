"""Generate the derived deploy files, so each fact is written once.

- ``deploy/k8s/base/prometheusrule.yaml`` is ``deploy/prometheus/alerts.yml`` wrapped in a
  PrometheusRule: compose's Prometheus and the Kubernetes operator load the same rules.
- ``deploy/grafana/dashboard.json`` is built from the panel list below, so a panel is one
  line of PromQL rather than sixty lines of Grafana JSON.

``python deploy/generate.py`` rewrites both; ``--check`` fails if either is stale (the
deploy tests run it).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEPLOY = Path(__file__).resolve().parent
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
PROMETHEUS_RULE = DEPLOY / "k8s" / "base" / "prometheusrule.yaml"
DASHBOARD = DEPLOY / "grafana" / "dashboard.json"

RULE_HEADER = """\
# GENERATED from deploy/prometheus/alerts.yml by deploy/generate.py: edit that file.
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: callbacks
  labels:
    app.kubernetes.io/name: callbacks
    app.kubernetes.io/component: alerts
spec:
"""

RATE = "$__rate_interval"
DS = {"type": "prometheus", "uid": "${datasource}"}


def prometheus_rule(alerts_text: str) -> str:
    """The PrometheusRule manifest: the rules file's ``groups`` indented under ``spec``."""
    body = [line for line in alerts_text.splitlines() if not line.startswith("#")]
    indented = [f"  {line}" if line.strip() else "" for line in body]
    return RULE_HEADER + "\n".join(indented).rstrip() + "\n"


@dataclass(frozen=True)
class Panel:
    title: str
    description: str
    targets: tuple[tuple[str, str], ...]  # (PromQL, legend)
    unit: str = "short"
    kind: str = "timeseries"
    width: int = 8


ROWS: tuple[tuple[str, tuple[Panel, ...]], ...] = (
    (
        "Delivery",
        (
            Panel(
                "Deliveries by outcome",
                "Delivery attempts per second, by outcome (delivered, retrying, failed).",
                (
                    (
                        f"sum by (outcome) (rate(callbacks_deliveries_total[{RATE}]))",
                        "{{outcome}}",
                    ),
                ),
                unit="reqps",
            ),
            Panel(
                "Success ratio",
                "Share of delivery attempts answered with a 2xx (alert below 90%).",
                (
                    (
                        f'(sum(rate(callbacks_deliveries_total{{outcome="delivered"}}[{RATE}]))'
                        f" or vector(0)) / sum(rate(callbacks_deliveries_total[{RATE}]))",
                        "success ratio",
                    ),
                ),
                unit="percentunit",
            ),
            Panel(
                "Delivery latency p50 / p99",
                "Duration of one HTTP delivery attempt, from the histogram.",
                tuple(
                    (
                        f"histogram_quantile({q}, sum by (le) "
                        f"(rate(callbacks_delivery_duration_seconds_bucket[{RATE}])))",
                        f"p{int(q * 100)}",
                    )
                    for q in (0.5, 0.99)
                ),
                unit="s",
            ),
            Panel(
                "Retries scheduled",
                "Failed attempts handed to a retry topic, per second.",
                ((f"sum(rate(callbacks_retries_scheduled_total[{RATE}]))", "retries"),),
                unit="ops",
            ),
            Panel(
                "Dead letters by reason",
                "Records written to callbacks.dead per second, by service and reason.",
                (
                    (
                        f"sum by (job, reason) (rate(callbacks_dead_letters_total[{RATE}]))",
                        "{{job}} {{reason}}",
                    ),
                ),
                unit="ops",
            ),
            Panel(
                "Events skipped by reason",
                "Events not delivered on purpose (unknown or disabled profile, not "
                "subscribed, required variable missing), per second.",
                (
                    (
                        f"sum by (reason) (rate(callbacks_events_skipped_total[{RATE}]))",
                        "{{reason}}",
                    ),
                ),
                unit="ops",
            ),
        ),
    ),
    (
        "Consumption and profiles",
        (
            Panel(
                "Consumer lag by topic",
                "Records behind the partition end. Retry topics hold records waiting for "
                "their delay, so their lag is expected.",
                (("sum by (topic) (callbacks_consumer_lag)", "{{topic}}"),),
            ),
            Panel(
                "Events consumed by topic",
                "Records consumed by the dispatchers per second.",
                (
                    (
                        f"sum by (topic) (rate(callbacks_events_consumed_total[{RATE}]))",
                        "{{topic}}",
                    ),
                ),
                unit="ops",
            ),
            Panel(
                "Profiles cached",
                "Profiles held in each dispatcher's memory; replicas should agree.",
                (("max by (instance) (callbacks_profiles_cached)", "{{instance}}"),),
            ),
            Panel(
                "Outbox pending",
                "Profile changes committed but not yet published to callbacks.profiles.",
                (("max by (instance) (callbacks_outbox_pending)", "{{instance}}"),),
            ),
            Panel(
                "Services up",
                "Scrape targets answering, per service.",
                (('sum by (job) (up{job=~"callbacks-.*"})', "{{job}}"),),
                kind="stat",
            ),
        ),
    ),
    (
        "API",
        (
            Panel(
                "HTTP requests by route and status",
                "Requests per second by route template and status code.",
                (
                    (
                        f"sum by (route, status) (rate(callbacks_http_requests_total[{RATE}]))",
                        "{{route}} {{status}}",
                    ),
                ),
                unit="reqps",
                width=12,
            ),
            Panel(
                "API latency p50 / p99",
                "profile-api request duration by route template, from the histogram.",
                tuple(
                    (
                        f"histogram_quantile({q}, sum by (le, route) (rate("
                        f'callbacks_http_request_duration_seconds_bucket{{job="callbacks-profile-api"}}'
                        f"[{RATE}])))",
                        f"p{int(q * 100)} {{{{route}}}}",
                    )
                    for q in (0.5, 0.99)
                ),
                unit="s",
                width=12,
            ),
        ),
    ),
    (
        "Reports",
        (
            Panel(
                "Reports sent",
                "Report emails handed to the SMTP relay per hour, by kind.",
                (
                    (
                        "sum by (kind) (increase(callbacks_reports_sent_total[1h]))",
                        "{{kind}}",
                    ),
                ),
            ),
            Panel(
                "Reporter ingest",
                "Outcome records stored per second.",
                ((f"sum(rate(callbacks_outcomes_ingested_total[{RATE}]))", "ingested"),),
                unit="ops",
            ),
            Panel(
                "Reporter ingest lag",
                "Outcome records on the broker not yet stored by the reporters.",
                (("max by (instance) (callbacks_reporter_ingest_lag)", "{{instance}}"),),
            ),
        ),
    ),
)


def _panel_json(panel: Panel, panel_id: int, x: int, y: int) -> dict[str, Any]:
    return {
        "id": panel_id,
        "type": panel.kind,
        "title": panel.title,
        "description": panel.description,
        "datasource": DS,
        "gridPos": {"h": 8, "w": panel.width, "x": x, "y": y},
        "fieldConfig": {"defaults": {"unit": panel.unit}, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom"}},
        "targets": [
            {"refId": chr(ord("A") + i), "datasource": DS, "expr": expr, "legendFormat": legend}
            for i, (expr, legend) in enumerate(panel.targets)
        ],
    }


def dashboard() -> dict[str, Any]:
    """The Grafana dashboard: one row per concern, panels laid out left to right."""
    panels: list[dict[str, Any]] = []
    next_id = 1
    y = 0
    for row_title, row_panels in ROWS:
        panels.append(
            {
                "id": next_id,
                "type": "row",
                "title": row_title,
                "collapsed": False,
                "gridPos": {"h": 1, "w": 24, "x": 0, "y": y},
                "panels": [],
            }
        )
        next_id += 1
        y += 1
        x = 0
        for panel in row_panels:
            if x + panel.width > 24:
                x = 0
                y += 8
            panels.append(_panel_json(panel, next_id, x, y))
            next_id += 1
            x += panel.width
        y += 8
    return {
        "uid": "callbacks-overview",
        "title": "Callback profiles",
        "description": "Delivery, consumption, API and reports of the callback profiles platform.",
        "tags": ["callbacks"],
        "timezone": "browser",
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "label": "Data source",
                    "type": "datasource",
                    "query": "prometheus",
                    "current": {"text": "Prometheus", "value": "prometheus"},
                    "hide": 0,
                }
            ]
        },
        "annotations": {"list": []},
        "panels": panels,
    }


def rendered() -> dict[Path, str]:
    return {
        PROMETHEUS_RULE: prometheus_rule(ALERTS.read_text("utf-8")),
        DASHBOARD: json.dumps(dashboard(), indent=2) + "\n",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="fail if a file is stale")
    args = parser.parse_args(argv)
    stale = []
    for path, text in rendered().items():
        current = path.read_text("utf-8") if path.exists() else None
        if current == text:
            continue
        if args.check:
            stale.append(path.relative_to(DEPLOY.parent))
        else:
            path.write_text(text, "utf-8")
    if stale:
        print(
            f"stale: {', '.join(map(str, stale))}; run python deploy/generate.py", file=sys.stderr
        )
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
