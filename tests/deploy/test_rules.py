"""Alert rules: promtool accepts them and their unit tests pass, the Kubernetes
PrometheusRule carries exactly the same rules, and every alert has a runbook section."""

from __future__ import annotations

import re
import sys
from typing import Any

import pytest
import yaml

from tests.deploy.tools import (
    ALERTS,
    BASE,
    DEPLOY,
    PROMETHEUS_CONFIG,
    RUNBOOK,
    debian_tool,
    run,
)


@pytest.fixture(scope="session")
def promtool() -> str:
    return debian_tool("promtool", "prometheus")


def _alerts() -> list[dict[str, Any]]:
    groups = yaml.safe_load(ALERTS.read_text("utf-8"))["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def test_promtool_accepts_the_rules(promtool: str) -> None:
    result = run([promtool, "check", "rules", str(ALERTS)])
    assert result.returncode == 0, result.stdout + result.stderr


RULE_TESTS = sorted((DEPLOY / "prometheus").glob("alerts*.test.yml"))


def test_alerts_fire_as_their_unit_tests_say(promtool: str) -> None:
    assert len(RULE_TESTS) == 2
    result = run([promtool, "test", "rules", *map(str, RULE_TESTS)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_unit_test() -> None:
    tested = {
        case["alertname"]
        for path in RULE_TESTS
        for test in yaml.safe_load(path.read_text("utf-8"))["tests"]
        for case in test.get("alert_rule_test", [])
        if case["exp_alerts"]
    }
    assert {rule["alert"] for rule in _alerts()} <= tested


def test_compose_prometheus_config_is_valid(promtool: str, tmp_path: Any) -> None:
    """promtool checks the config and the rule files it names; the compose path of the
    rules (/etc/prometheus/alerts.yml) is pointed at the repository's copy."""
    config = PROMETHEUS_CONFIG.read_text("utf-8").replace("/etc/prometheus/alerts.yml", str(ALERTS))
    path = tmp_path / "prometheus.yml"
    path.write_text(config, "utf-8")
    result = run([promtool, "check", "config", str(path)])
    assert result.returncode == 0, result.stdout + result.stderr
    jobs = {job["job_name"] for job in yaml.safe_load(config)["scrape_configs"]}
    assert {"callbacks-profile-api", "callbacks-dispatcher", "callbacks-reporter"} <= jobs


def test_prometheus_rule_is_generated_from_the_rules_file() -> None:
    rule = yaml.safe_load((BASE / "prometheusrule.yaml").read_text("utf-8"))
    assert rule["spec"] == yaml.safe_load(ALERTS.read_text("utf-8"))
    stale = run([sys.executable, str(DEPLOY / "generate.py"), "--check"])
    assert stale.returncode == 0, stale.stderr


def test_every_alert_has_severity_summary_and_a_runbook_section() -> None:
    anchors = {
        re.sub(r"[^a-z0-9 -]", "", heading.lower()).replace(" ", "-")
        for heading in re.findall(r"^## (.+)$", RUNBOOK.read_text("utf-8"), re.MULTILINE)
    }
    names = [rule["alert"] for rule in _alerts()]
    assert len(names) == len(set(names))
    for rule in _alerts():
        assert rule["labels"]["severity"] in {"warning", "critical"}, rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        url = rule["annotations"]["runbook_url"]
        assert url == f"deploy/RUNBOOK.md#{rule['alert'].lower()}", rule["alert"]
        assert rule["alert"].lower() in anchors, f"RUNBOOK.md lacks ## {rule['alert']}"
    for required in (
        "CallbacksConsumerLagGrowing",
        "CallbacksDeadLetters",
        "CallbacksDeliverySuccessRatioLow",
        "CallbacksOutboxBacklog",
        "CallbacksDailyReportNotSent",
        "CallbacksServiceDown",
    ):
        assert required in names
