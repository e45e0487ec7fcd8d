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
from callbacks_dev.devstack.kafka_cluster import KAFKA_VERSION

from tests.deploy.tools import COMPOSE, DASHBOARD, DEPLOY, ROOT, run, venv_tool

SERVICES = {"profile-api": "profile_api", "dispatcher": "dispatcher", "reporter": "reporter"}
# The KRaft nodes, by service name, with their node ids; `kafka` keeps its old name.
BROKERS = {"kafka": "1", "kafka-2": "2", "kafka-3": "3"}
BOOTSTRAP = ",".join(f"{name}:9092" for name in BROKERS)


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
    for name in (*BROKERS, "postgres", "mailpit"):
        assert "healthcheck" in services[name], name


def test_services_run_from_the_image_after_init_with_health_checks(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    init = services["init"]
    assert init["command"] == ["python", "-m", "callbacks", "init"]
    for broker in BROKERS:
        assert init["depends_on"][broker]["condition"] == "service_healthy", broker
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
        assert env["CALLBACKS_KAFKA_BOOTSTRAP"] == BOOTSTRAP
        assert env["CALLBACKS_SMTP_HOST"] == "mailpit"
    assert services["reporter"]["depends_on"]["mailpit"]["condition"] == "service_healthy"


def test_kafka_is_three_combined_kraft_nodes_with_a_volume_each(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    brokers = {s: services[s] for s in services if s.startswith("kafka")}
    assert set(brokers) == set(BROKERS)
    voters = ",".join(f"{node}@{name}:9093" for name, node in BROKERS.items())
    volumes = set()
    for name, node in BROKERS.items():
        broker = brokers[name]
        env = broker["environment"]
        assert broker["image"] == f"apache/kafka:{KAFKA_VERSION}", name
        assert env["KAFKA_NODE_ID"] == node, name
        assert env["KAFKA_PROCESS_ROLES"] == "broker,controller", name
        assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == voters, name
        assert env["KAFKA_ADVERTISED_LISTENERS"] == f"PLAINTEXT://{name}:9092", name
        assert "localhost:9092" in " ".join(broker["healthcheck"]["test"]), name
        (mount,) = broker["volumes"]
        volume, target = mount.split(":")
        assert target == env["KAFKA_LOG_DIRS"], name
        assert volume in compose["volumes"], name
        volumes.add(volume)
    assert len(volumes) == len(BROKERS), "each broker needs a data volume of its own"
    cluster_ids = {b["environment"]["CLUSTER_ID"] for b in brokers.values()}
    assert len(cluster_ids) == 1


def test_kafka_replicates_its_own_topics_and_never_auto_creates(
    compose: dict[str, Any],
) -> None:
    for name in BROKERS:
        env = compose["services"][name]["environment"]
        assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false", name
        for key in (
            "KAFKA_DEFAULT_REPLICATION_FACTOR",
            "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR",
            "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
            "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR",
        ):
            assert env[key] == str(len(BROKERS)), (name, key)
        for key in (
            "KAFKA_MIN_INSYNC_REPLICAS",
            "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR",
            "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR",
        ):
            assert env[key] == "2", (name, key)


def test_services_create_replicated_topics_with_the_idempotent_producer(
    compose: dict[str, Any],
) -> None:
    for name in ("init", *SERVICES):
        env = compose["services"][name]["environment"]
        settings = Settings.model_validate(
            {
                "kafka_bootstrap": env["CALLBACKS_KAFKA_BOOTSTRAP"],
                "kafka_replication_factor": env["CALLBACKS_KAFKA_REPLICATION_FACTOR"],
                "kafka_min_insync_replicas": env["CALLBACKS_KAFKA_MIN_INSYNC_REPLICAS"],
                "kafka_idempotent_producer": env["CALLBACKS_KAFKA_IDEMPOTENT_PRODUCER"],
            }
        )
        assert settings.kafka_bootstrap == BOOTSTRAP, name
        assert settings.kafka_replication_factor == len(BROKERS), name
        assert settings.kafka_min_insync_replicas == 2, name
        assert settings.kafka_idempotent_producer is True, name


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
