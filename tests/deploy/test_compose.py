"""docker-compose.yml: valid against the compose specification, and wired the way the
README promises (health checks, start order, Prometheus and Grafana provisioning)."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import pytest
import yaml
from callbacks.settings import Settings

from tests.deploy.tools import COMPOSE, DASHBOARD, DEPLOY, ROOT, run, venv_tool

SERVICES = {"profile-api": "profile_api", "dispatcher": "dispatcher", "reporter": "reporter"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(COMPOSE.read_text("utf-8"))
    return document


def test_compose_file_validates_against_the_compose_spec() -> None:
    result = run(
        [venv_tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(COMPOSE)]
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_infrastructure_is_kafka_kraft_postgres_and_mailpit(compose: dict[str, Any]) -> None:
    services = compose["services"]
    kafka = services["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    assert kafka["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert kafka["environment"]["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert services["postgres"]["image"].startswith("postgres:")
    assert services["mailpit"]["image"].startswith("axllent/mailpit:")
    for name in ("kafka", "postgres", "mailpit"):
        assert "healthcheck" in services[name], name


def test_services_run_from_the_image_after_init_with_health_checks(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    init = services["init"]
    assert init["command"] == ["python", "-m", "callbacks", "init"]
    assert init["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert init["depends_on"]["postgres"]["condition"] == "service_healthy"
    port_of = {"profile-api": "8080", "dispatcher": "9101", "reporter": "9102"}
    for name, module in SERVICES.items():
        service = services[name]
        assert service["build"]["context"] == "."
        assert service["image"] == init["image"]
        assert service["command"] == ["python", "-m", module]
        assert service["depends_on"]["init"]["condition"] == "service_completed_successfully"
        assert service["read_only"] is True
        probe = " ".join(service["healthcheck"]["test"])
        assert f"127.0.0.1:{port_of[name]}" in probe, name
        assert "/healthz" in probe, name
        assert "/readyz" in probe, name
        env = service["environment"]
        assert env["CALLBACKS_KAFKA_BOOTSTRAP"] == "kafka:9092"
        assert env["CALLBACKS_SMTP_HOST"] == "mailpit"
    assert services["reporter"]["depends_on"]["mailpit"]["condition"] == "service_healthy"


def test_prometheus_and_grafana_are_provisioned(compose: dict[str, Any]) -> None:
    services = compose["services"]
    mounts = services["prometheus"]["volumes"] + services["grafana"]["volumes"]
    for mount in mounts:
        source = mount.split(":", 1)[0]
        if source.startswith("./"):
            assert (ROOT / source).exists(), source
    assert any("alerts.yml" in m for m in services["prometheus"]["volumes"])
    assert any("dashboard.json" in m for m in services["grafana"]["volumes"])
    datasource = yaml.safe_load(
        (DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )["datasources"][0]
    assert datasource["url"] == "http://prometheus:9090"
    dashboard = json.loads(DASHBOARD.read_text("utf-8"))
    default = dashboard["templating"]["list"][0]["current"]["value"]
    assert default == datasource["uid"]


def _interpolate(value: str) -> str:
    """Compose's ``${VAR:-default}`` and ``${VAR:?message}``, as an operator's .env would
    fill them: defaults as written, required ones with a valid stand-in."""
    stand_ins = {
        "CALLBACKS_MASTER_KEY": base64.b64encode(bytes(32)).decode(),
        "CALLBACKS_ADMIN_TOKEN": "token",
    }

    def replace(match: re.Match[str]) -> str:
        name, op, rest = match.group(1), match.group(2), match.group(3)
        return rest if op == ":-" else stand_ins[name]

    return re.sub(r"\$\{([A-Z0-9_]+)(:-|:\?)([^}]*)\}", replace, value)


def test_service_environment_is_valid_settings(compose: dict[str, Any]) -> None:
    env = compose["services"]["dispatcher"]["environment"]
    values = {k: _interpolate(str(v)) for k, v in env.items()}
    known = {f"CALLBACKS_{name.upper()}" for name in Settings.model_fields}
    assert not values.keys() - known, sorted(values.keys() - known)
    settings = Settings.model_validate(
        {k.removeprefix("CALLBACKS_").lower(): v for k, v in values.items()}
    )
    assert settings.allow_private_targets is False
    assert settings.master_key_bytes() == bytes(32)
