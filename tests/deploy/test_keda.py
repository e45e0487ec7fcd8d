"""deploy/k8s KEDA variant: the production-keda overlay is the production overlay with the
dispatcher's CPU HPA replaced by a KEDA ScaledObject on consumer lag. The ScaledObject
matches a JSON schema written from KEDA's documented fields (its CRD is not among the
Kubernetes schemas) and reads exactly the dispatcher's group and work topics."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from callbacks.settings import Settings
from dispatcher.worker import Dispatcher

from tests.deploy.tools import K8S, PRODUCTION, kustomize_build, run, venv_tool, yaml_documents

KEDA_OVERLAY = K8S / "overlays" / "production-keda"
COMPONENT = K8S / "components" / "keda-dispatcher"
SCALED_OBJECT_FILE = COMPONENT / "scaledobject.yaml"
SCHEMA = Path(__file__).with_name("keda-scaledobject.schema.json")
KUBERNETES_VERSION = "1.30.0"  # as in test_kubernetes.py
NOT_IN_KUBERNETES_SCHEMAS = {"ScaledObject", "ServiceMonitor", "PrometheusRule"}
DISPATCHER = "callbacks-dispatcher"


@pytest.fixture(scope="module")
def keda() -> list[dict[str, Any]]:
    return kustomize_build(KEDA_OVERLAY)


@pytest.fixture(scope="module")
def plain() -> list[dict[str, Any]]:
    return kustomize_build(PRODUCTION)


def _of_kind(documents: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in documents if d["kind"] == kind}


def _scaled_object(documents: list[dict[str, Any]]) -> dict[str, Any]:
    (scaled,) = _of_kind(documents, "ScaledObject").values()
    return scaled


def _settings(documents: list[dict[str, Any]]) -> Settings:
    (config_map,) = _of_kind(documents, "ConfigMap").values()
    data = config_map["data"]
    return Settings.model_validate(
        {k.removeprefix("CALLBACKS_").lower(): v for k, v in data.items()}
    )


def _config(documents: list[dict[str, Any]]) -> dict[str, str]:
    (config_map,) = _of_kind(documents, "ConfigMap").values()
    data: dict[str, str] = config_map["data"]
    return data


def test_scaled_object_file_and_overlay_output_match_the_keda_schema(
    keda: list[dict[str, Any]], tmp_path: Path
) -> None:
    built = tmp_path / "scaledobject.built.json"
    built.write_text(json.dumps(_scaled_object(keda)), "utf-8")
    for instance in (SCALED_OBJECT_FILE, built):
        result = run([venv_tool("check-jsonschema"), "--schemafile", str(SCHEMA), str(instance)])
        assert result.returncode == 0, result.stdout + result.stderr


def _set(path: str, value: object) -> Callable[[dict[str, Any]], None]:
    """A mutation that sets ``path`` (dots; digits index lists) to ``value``."""

    def mutate(document: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = document
        for key in parents:
            node = node[int(key)] if key.isdigit() else node[key]
        node[int(last) if last.isdigit() else last] = value

    return mutate


def _drop(path: str) -> Callable[[dict[str, Any]], None]:
    def mutate(document: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = document
        for key in parents:
            node = node[int(key)] if key.isdigit() else node[key]
        del node[last]

    return mutate


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(_set("apiVersion", "keda.sh/v1"), id="wrong-api-version"),
        pytest.param(_set("spec.maxReplicas", 6), id="hpa-field-name-in-spec"),
        pytest.param(_drop("spec.scaleTargetRef.name"), id="no-target"),
        pytest.param(_set("spec.triggers", []), id="no-trigger"),
        pytest.param(_set("spec.triggers.0.metadata.lagTreshold", "10"), id="misspelt-param"),
        pytest.param(_set("spec.triggers.0.metadata.allowIdleConsumers", False), id="bool-not-str"),
        pytest.param(_set("spec.triggers.0.metadata.lagThreshold", "ten"), id="lag-not-number"),
        pytest.param(_drop("spec.triggers.0.metadata.consumerGroup"), id="no-consumer-group"),
        pytest.param(_set("spec.triggers.0.metadata.offsetResetPolicy", "smallest"), id="reset"),
        pytest.param(_set("spec.triggers.0.metadata.bootstrapServers", "kafka"), id="no-port"),
        pytest.param(
            _set("spec.triggers.0.metadata.allowIdleConsumers", "true"),
            id="idle-consumers-with-limit-to-lagging-partitions",
        ),
        pytest.param(_set("spec.triggers.0.metricType", "Value"), id="fallback-needs-average"),
        pytest.param(
            _set(
                "spec.triggers.0",
                {"type": "cpu", "metricType": "AverageValue", "metadata": {"value": "700m"}},
            ),
            id="fallback-with-cpu-trigger",
        ),
        pytest.param(_set("spec.idleReplicaCount", 1), id="idle-replicas-not-zero"),
        pytest.param(
            _set(
                "spec.advanced.horizontalPodAutoscalerConfig.behavior.scaleUp.policies.0.type", "X"
            ),
            id="hpa-policy-type",
        ),
    ],
)
def test_the_schema_refuses_what_keda_would_not_take(
    keda: list[dict[str, Any]], mutate: Callable[[dict[str, Any]], None]
) -> None:
    schema = json.loads(SCHEMA.read_text("utf-8"))
    validator = jsonschema.Draft202012Validator(schema)
    document = copy.deepcopy(_scaled_object(keda))
    assert not list(validator.iter_errors(document))
    mutate(document)
    assert list(validator.iter_errors(document)), "the schema let a broken ScaledObject through"


def test_keda_overlay_ships_the_scaled_object_instead_of_the_cpu_hpa(
    keda: list[dict[str, Any]], plain: list[dict[str, Any]]
) -> None:
    """KEDA creates an HPA of its own: two HPAs on one Deployment would fight over its
    replicas, so each overlay ships exactly one scaler, and nothing else differs."""
    assert _of_kind(keda, "HorizontalPodAutoscaler") == {}
    assert set(_of_kind(plain, "HorizontalPodAutoscaler")) == {DISPATCHER}
    assert _of_kind(plain, "ScaledObject") == {}
    scaled = _scaled_object(keda)
    assert scaled["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": DISPATCHER,
    }
    assert scaled["metadata"]["namespace"] == "callbacks"
    dispatcher = _of_kind(keda, "Deployment")[DISPATCHER]
    assert "replicas" not in dispatcher["spec"], "the scaler owns the dispatcher's replicas"

    def rest(documents: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [
            d for d in documents if d["kind"] not in {"HorizontalPodAutoscaler", "ScaledObject"}
        ]

    assert rest(keda) == rest(plain)
    for document in rest(keda):
        if document["kind"] in NOT_IN_KUBERNETES_SCHEMAS:
            continue
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


def test_scaled_object_reads_the_dispatchers_group_and_work_topics(
    keda: list[dict[str, Any]],
) -> None:
    settings = _settings(keda)
    # The group id lives in the dispatcher's code; read it from there, not from a copy.
    group = Dispatcher(settings)._group
    topics = settings.topics
    triggers = _scaled_object(keda)["spec"]["triggers"]
    assert {t["type"] for t in triggers} == {"kafka"}
    by_topic = {t["metadata"]["topic"]: t for t in triggers}
    assert len(by_topic) == len(triggers), "one trigger per topic"
    assert set(by_topic) == {*topics.sources, *topics.retries}
    for topic, trigger in by_topic.items():
        metadata = trigger["metadata"]
        assert metadata["consumerGroup"] == group, topic
        assert metadata["bootstrapServers"] == settings.kafka_bootstrap, topic
        # As the dispatcher's consumer resets (callbacks.kafka.make_consumer).
        assert metadata["offsetResetPolicy"] == "earliest", topic
        assert metadata["allowIdleConsumers"] == "false", topic
        assert metadata["limitToPartitionsWithLag"] == "true", topic
        # Retry records wait for their delay on purpose: lag that does not move there is
        # waiting, not backlog.
        persistent = "true" if topic in topics.retries else "false"
        assert metadata["excludePersistentLag"] == persistent, topic
        # lagThreshold is one replica's in-flight budget (deploy/RUNBOOK.md).
        assert float(metadata["lagThreshold"]) == settings.max_in_flight, topic


def test_scaled_object_stays_within_the_partitions_and_keeps_the_hpa_behaviour(
    keda: list[dict[str, Any]], plain: list[dict[str, Any]]
) -> None:
    partitions = int(_config(keda)["CALLBACKS_KAFKA_PARTITIONS"])
    spec = _scaled_object(keda)["spec"]
    assert 2 <= spec["minReplicaCount"] <= spec["maxReplicaCount"] <= partitions
    assert spec["minReplicaCount"] <= spec["fallback"]["replicas"] <= spec["maxReplicaCount"]
    hpa = _of_kind(plain, "HorizontalPodAutoscaler")[DISPATCHER]
    hpa_config = spec["advanced"]["horizontalPodAutoscalerConfig"]
    assert hpa_config["name"] == hpa["metadata"]["name"]
    assert hpa_config["behavior"] == hpa["spec"]["behavior"]
    assert spec["minReplicaCount"] == hpa["spec"]["minReplicas"]
    assert spec["maxReplicaCount"] == hpa["spec"]["maxReplicas"]
    annotations = _scaled_object(keda)["metadata"]["annotations"]
    assert annotations["scaledobject.keda.sh/transfer-hpa-ownership"] == "true"


def test_component_file_is_one_scaled_object() -> None:
    documents = list(yaml_documents(SCALED_OBJECT_FILE.read_text("utf-8")))
    assert [d["kind"] for d in documents] == ["ScaledObject"]
    kustomization = yaml.safe_load((COMPONENT / "kustomization.yaml").read_text("utf-8"))
    assert kustomization["kind"] == "Component"
