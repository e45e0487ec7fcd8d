"""deploy/k8s: every manifest is valid Kubernetes, the kustomizations build, and the
pieces fit together (selectors, probes, secrets, the drain budget, the HPA bound)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
from callbacks.durations import parse_duration
from callbacks.kafka import topic_plans
from callbacks.settings import Settings
from pydantic import SecretStr

from tests.deploy.tools import BASE, K8S, PRODUCTION, kustomize_build, yaml_documents

# The Kubernetes version the manifests target; kubernetes-validate ships its schemas.
KUBERNETES_VERSION = "1.30.0"
# Kinds of prometheus-operator, whose schemas kubernetes-validate does not ship: they get
# the structural checks below, and the rules go through promtool (test_rules.py).
OPERATOR_KINDS = {"ServiceMonitor", "PrometheusRule"}
KUSTOMIZE_KINDS = {"Kustomization"}
SECRET_NAME = "callbacks-secrets"
# Settings held in the Secret rather than the ConfigMap.
SECRET_SETTINGS = {
    "CALLBACKS_DATABASE_URL": "database-url",
    "CALLBACKS_MASTER_KEY": "master-key",
    "CALLBACKS_MASTER_KEYS": "master-keys",
    "CALLBACKS_ADMIN_TOKEN": "admin-token",
    "CALLBACKS_SMTP_USERNAME": "smtp-username",
    "CALLBACKS_SMTP_PASSWORD": "smtp-password",
}
SERVICES = {
    "callbacks-profile-api": "profile_api",
    "callbacks-dispatcher": "dispatcher",
    "callbacks-reporter": "reporter",
}


def _resource_files() -> list[Path]:
    """Manifests that stand alone (overlay patches are partial by design)."""
    files = sorted(BASE.glob("*.yaml")) + sorted(PRODUCTION.glob("*.yaml"))
    return [f for f in files if f.name != "kustomization.yaml"]


def _validate(document: dict[str, Any]) -> None:
    if document["kind"] in OPERATOR_KINDS | KUSTOMIZE_KINDS:
        return
    try:
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        name = document.get("metadata", {}).get("name")
        path = "/".join(map(str, exc.path))
        raise AssertionError(f"{document['kind']}/{name}: {path}: {exc.message}") from exc


@pytest.mark.parametrize("path", _resource_files(), ids=lambda p: str(p.relative_to(K8S)))
def test_every_manifest_file_validates_strictly(path: Path) -> None:
    documents = list(yaml_documents(path.read_text("utf-8")))
    assert documents
    for document in documents:
        _validate(document)


@pytest.fixture(scope="module", params=[BASE, PRODUCTION], ids=["base", "production"])
def built(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    directory: Path = request.param
    return kustomize_build(directory)


@pytest.fixture(scope="module")
def production() -> list[dict[str, Any]]:
    return kustomize_build(PRODUCTION)


def _of_kind(documents: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in documents if d["kind"] == kind}


def _containers(documents: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    for kind in ("Deployment", "Job"):
        for name, document in _of_kind(documents, kind).items():
            for container in document["spec"]["template"]["spec"]["containers"]:
                yield name, container


def test_kustomize_output_validates_strictly(built: list[dict[str, Any]]) -> None:
    kinds = {d["kind"] for d in built}
    assert {
        "ConfigMap",
        "Deployment",
        "Service",
        "Job",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "ServiceMonitor",
        "PrometheusRule",
    } <= kinds
    for document in built:
        _validate(document)


def test_each_service_runs_from_the_one_image_with_its_module(
    built: list[dict[str, Any]],
) -> None:
    deployments = _of_kind(built, "Deployment")
    assert set(deployments) == set(SERVICES)
    images = set()
    for name, module in SERVICES.items():
        (container,) = deployments[name]["spec"]["template"]["spec"]["containers"]
        assert container["command"] == ["python", "-m", module]
        images.add(container["image"])
    (job,) = _of_kind(built, "Job").values()
    (migrate,) = job["spec"]["template"]["spec"]["containers"]
    assert migrate["command"] == ["python", "-m", "callbacks", "init"]
    images.add(migrate["image"])
    assert len(images) == 1


def test_pods_run_unprivileged_on_a_read_only_root(built: list[dict[str, Any]]) -> None:
    for kind in ("Deployment", "Job"):
        for name, document in _of_kind(built, kind).items():
            pod = document["spec"]["template"]["spec"]
            assert pod["securityContext"]["runAsNonRoot"] is True, name
            assert pod["securityContext"]["runAsUser"] >= 10000, name
            assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
            assert pod["automountServiceAccountToken"] is False, name
            for container in pod["containers"]:
                context = container["securityContext"]
                assert context["readOnlyRootFilesystem"] is True, name
                assert context["allowPrivilegeEscalation"] is False, name
                assert context["capabilities"]["drop"] == ["ALL"], name
                resources = container["resources"]
                assert {"cpu", "memory"} <= resources["requests"].keys(), name
                assert {"cpu", "memory"} <= resources["limits"].keys(), name


def test_deployments_probe_healthz_and_readyz_on_their_port(
    built: list[dict[str, Any]],
) -> None:
    for name, document in _of_kind(built, "Deployment").items():
        (container,) = document["spec"]["template"]["spec"]["containers"]
        port_names = {p["name"] for p in container["ports"]}
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz", name
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz", name
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            assert container[probe]["httpGet"]["port"] in port_names, (name, probe)


def test_services_and_budgets_select_their_deployments(built: list[dict[str, Any]]) -> None:
    deployments = _of_kind(built, "Deployment")
    for kind in ("Service", "PodDisruptionBudget"):
        for name, document in _of_kind(built, kind).items():
            selector = document["spec"]["selector"]
            selector = selector.get("matchLabels", selector)
            pod_labels = deployments[name]["spec"]["template"]["metadata"]["labels"]
            assert selector.items() <= pod_labels.items(), (kind, name)
    for name, service in _of_kind(built, "Service").items():
        (container,) = deployments[name]["spec"]["template"]["spec"]["containers"]
        port_names = {p["name"] for p in container["ports"]}
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in port_names, (name, port)
    assert "callbacks-dispatcher" in _of_kind(built, "PodDisruptionBudget")


def test_service_monitor_scrapes_every_service(built: list[dict[str, Any]]) -> None:
    (monitor,) = _of_kind(built, "ServiceMonitor").values()
    selector = monitor["spec"]["selector"]["matchLabels"]
    endpoints = {e["port"]: e["path"] for e in monitor["spec"]["endpoints"]}
    services = _of_kind(built, "Service")
    assert set(services) == set(SERVICES)
    for name, service in services.items():
        assert selector.items() <= service["metadata"]["labels"].items(), name
        scraped = [p["name"] for p in service["spec"]["ports"] if p["name"] in endpoints]
        assert scraped, f"no ServiceMonitor endpoint matches a port of {name}"
        assert all(endpoints[p] == "/metrics" for p in scraped)


def _config(documents: list[dict[str, Any]]) -> dict[str, str]:
    (config_map,) = _of_kind(documents, "ConfigMap").values()
    data: dict[str, str] = config_map["data"]
    return data


def test_config_map_holds_every_setting_and_secrets_hold_the_rest(
    built: list[dict[str, Any]],
) -> None:
    config = _config(built)
    fields = {f"CALLBACKS_{name.upper()}": field for name, field in Settings.model_fields.items()}
    secret_fields = {
        env for env, field in fields.items() if field.annotation in (SecretStr, SecretStr | None)
    }
    assert secret_fields <= SECRET_SETTINGS.keys(), "a new secret setting needs a Secret key"
    missing = set(fields) - set(config) - set(SECRET_SETTINGS)
    assert not missing, f"settings missing from deploy/k8s/base/config.env: {sorted(missing)}"
    assert not set(config) & set(SECRET_SETTINGS), "a secret must not sit in the ConfigMap"
    unknown = set(config) - set(fields)
    assert not unknown, f"config.env names settings that do not exist: {sorted(unknown)}"
    Settings.model_validate({k.removeprefix("CALLBACKS_").lower(): v for k, v in config.items()})

    config_name = _of_kind(built, "ConfigMap")
    for name, container in _containers(built):
        refs = [e["configMapRef"]["name"] for e in container["envFrom"]]
        assert refs == list(config_name), name
        for env in container.get("env", []):
            ref = env["valueFrom"]["secretKeyRef"]
            assert ref["name"] == SECRET_NAME, (name, env["name"])
            assert SECRET_SETTINGS[env["name"]] == ref["key"], (name, env["name"])


def test_each_service_gets_only_the_secrets_it_needs(built: list[dict[str, Any]]) -> None:
    granted = {
        name: {e["name"] for e in container.get("env", [])}
        for name, container in _containers(built)
    }
    assert granted["callbacks-profile-api"] == {
        "CALLBACKS_DATABASE_URL",
        "CALLBACKS_MASTER_KEY",
        "CALLBACKS_MASTER_KEYS",
        "CALLBACKS_ADMIN_TOKEN",
    }
    assert granted["callbacks-dispatcher"] == {"CALLBACKS_MASTER_KEY", "CALLBACKS_MASTER_KEYS"}
    assert "CALLBACKS_DATABASE_URL" in granted["callbacks-reporter"]
    assert granted["callbacks-migrate"] == {"CALLBACKS_DATABASE_URL"}


def test_dispatcher_grace_period_covers_its_drain(built: list[dict[str, Any]]) -> None:
    """Kubernetes must not SIGKILL a dispatcher that is still draining in-flight callbacks:
    the drain grace, one more delivery timeout for the last attempt, and 15 s for the
    hand-off to retry topics, the commit and leaving the group."""
    config = _config(built)
    drain_s = parse_duration(config["CALLBACKS_SHUTDOWN_GRACE"]) + parse_duration(
        config["CALLBACKS_DELIVERY_TIMEOUT"]
    )
    deployment = _of_kind(built, "Deployment")["callbacks-dispatcher"]
    grace_s = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert grace_s >= drain_s + 15


def test_dispatcher_autoscaling_stays_within_the_partitions(
    built: list[dict[str, Any]],
) -> None:
    partitions = int(_config(built)["CALLBACKS_KAFKA_PARTITIONS"])
    hpa = _of_kind(built, "HorizontalPodAutoscaler")["callbacks-dispatcher"]
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "callbacks-dispatcher",
    }
    assert 2 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"] <= partitions
    dispatcher = _of_kind(built, "Deployment")["callbacks-dispatcher"]
    assert "replicas" not in dispatcher["spec"], "the HPA owns the dispatcher's replicas"


def test_production_overlay_sets_namespace_and_released_image(
    production: list[dict[str, Any]],
) -> None:
    namespaced = [d for d in production if d["kind"] != "Namespace"]
    assert {d["metadata"].get("namespace") for d in namespaced} == {"callbacks"}
    (namespace,) = _of_kind(production, "Namespace").values()
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for name, container in _containers(production):
        image = container["image"]
        assert ":" in image.rsplit("/", 1)[-1], (name, image)
        assert not image.endswith(":latest"), (name, image)


# What `python -m callbacks init` needs to create topics the way production wants them.
INIT_KAFKA_SETTINGS = {
    "CALLBACKS_KAFKA_REPLICATION_FACTOR": "3",
    "CALLBACKS_KAFKA_MIN_INSYNC_REPLICAS": "2",
    "CALLBACKS_KAFKA_IDEMPOTENT_PRODUCER": "true",
}
INIT_TOPIC_SETTINGS = (
    "CALLBACKS_KAFKA_BOOTSTRAP",
    "CALLBACKS_KAFKA_PARTITIONS",
    "CALLBACKS_TOPIC_PREFIX",
    "CALLBACKS_RETRY_SCHEDULE",
    "CALLBACKS_KAFKA_SOURCE_RETENTION",
    "CALLBACKS_KAFKA_RETRY_RETENTION_MARGIN",
    "CALLBACKS_KAFKA_OUTCOMES_RETENTION",
    "CALLBACKS_KAFKA_DEAD_RETENTION",
    "CALLBACKS_KAFKA_REDELIVER_RETENTION",
    "CALLBACKS_KAFKA_PROFILES_MIN_COMPACTION_LAG",
)


def test_init_job_creates_topics_with_the_replication_settings(
    built: list[dict[str, Any]],
) -> None:
    """The Job reads the same ConfigMap as the services, so the topics it creates carry
    the replication, min ISR and retention the services were deployed with."""
    (job,) = _of_kind(built, "Job").values()
    (migrate,) = job["spec"]["template"]["spec"]["containers"]
    (config_name,) = _of_kind(built, "ConfigMap")
    assert [e["configMapRef"]["name"] for e in migrate["envFrom"]] == [config_name]
    overridden = {e["name"] for e in migrate.get("env", [])}
    assert not overridden & (INIT_KAFKA_SETTINGS.keys() | set(INIT_TOPIC_SETTINGS))
    config = _config(built)
    for key, value in INIT_KAFKA_SETTINGS.items():
        assert config[key] == value, key
    assert set(INIT_TOPIC_SETTINGS) <= config.keys()
    settings = Settings.model_validate(
        {k.removeprefix("CALLBACKS_").lower(): v for k, v in config.items()}
    )
    # One broker down must not stop writes acknowledged by `acks=all`.
    assert settings.kafka_min_insync_replicas < settings.kafka_replication_factor


def test_managed_kafka_notes_name_every_topic_and_its_settings() -> None:
    """deploy/README.md's list for pre-created topics follows ``topic_plans``: every
    topic of the default schedule, every setting a topic's configs come from, with its
    default."""
    readme = (K8S.parent / "README.md").read_text("utf-8")
    section = readme.split("### Managed Kafka", 1)[1].split("\n### ", 1)[0]
    settings = Settings()
    plans = topic_plans(settings)
    for plan in plans:
        base = plan.name.removeprefix("callbacks.retry.")
        assert f"`{base}`" in section, plan.name
    configs = {key for plan in plans for key in plan.configs}
    # The README's table covers exactly these configs; a new one needs a row there.
    assert configs == {
        "retention.ms",
        "cleanup.policy",
        "min.compaction.lag.ms",
        "min.insync.replicas",
    }
    for field, info in Settings.model_fields.items():
        if not field.startswith("kafka_"):
            continue
        name = f"CALLBACKS_{field.upper()}"
        assert f"`{name}" in section, name
        if field.endswith(("_retention", "_compaction_lag")):
            assert f"`{name}` ({info.default})" in section, name
    margin = settings.kafka_retry_retention_margin
    longest = max(settings.retry_schedule.split(","), key=parse_duration)
    assert f"({longest} + {margin})" in section
    for needed in ("topic_under_replicated", "co-partitioning", "PLAINTEXT", "SASL"):
        assert needed in section, needed
