"""The production overlay's NetworkPolicies (README "Security"): the dispatcher reaches
public addresses, DNS and the brokers only; /metrics is reachable from Prometheus only."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from tests.deploy.tools import BASE, PRODUCTION, kustomize_build

REFUSED = ["10.1.2.3", "172.16.5.4", "172.31.255.1", "192.168.1.1", "169.254.169.254",
           "100.64.0.1", "127.0.0.1", "fd00::1", "fe80::1", "::ffff:10.0.0.1", "::1"]  # fmt: skip
ALLOWED = ["8.8.8.8", "1.1.1.1", "203.0.113.7", "2606:4700:4700::1111"]


@pytest.fixture(scope="module")
def production() -> list[dict[str, Any]]:
    return kustomize_build(PRODUCTION)


def _of_kind(documents: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in documents if d["kind"] == kind}


def _selects(policy: dict[str, Any], labels: dict[str, str]) -> bool:
    wanted = policy["spec"]["podSelector"].get("matchLabels", {})
    return bool(wanted) and wanted.items() <= labels.items()


def _pod_labels(deployment: dict[str, Any]) -> dict[str, str]:
    labels: dict[str, str] = deployment["spec"]["template"]["metadata"]["labels"]
    return labels


def _ip_allowed(rules: list[dict[str, Any]], address: str) -> bool:
    """Whether some egress rule's ipBlock admits ``address`` (on any port)."""
    ip = ipaddress.ip_address(address)
    for rule in rules:
        for peer in rule.get("to", []):
            block = peer.get("ipBlock")
            if block is None:
                continue
            network = ipaddress.ip_network(block["cidr"])
            if ip.version != network.version or ip not in network:
                continue
            if not any(ip in ipaddress.ip_network(e) for e in block.get("except", [])):
                return True
    return False


def test_the_dispatcher_egress_reaches_public_addresses_only(
    production: list[dict[str, Any]],
) -> None:
    policies = _of_kind(production, "NetworkPolicy")
    dispatcher = _of_kind(production, "Deployment")["callbacks-dispatcher"]
    egress = [
        p for p in policies.values()
        if "Egress" in p["spec"]["policyTypes"] and _selects(p, _pod_labels(dispatcher))
    ]  # fmt: skip
    assert len(egress) == 1
    rules = egress[0]["spec"]["egress"]
    assert all(rule.get("to") for rule in rules), "a rule without `to` allows everything"
    for address in REFUSED:
        assert not _ip_allowed(rules, address), address
    for address in ALLOWED:
        assert _ip_allowed(rules, address), address
    # Every non-ipBlock peer is a selector (the DNS and the brokers), with its ports named.
    by_port = {
        (port["protocol"], port["port"])
        for rule in rules
        if not any("ipBlock" in peer for peer in rule["to"])
        for port in rule["ports"]
    }
    assert {("UDP", 53), ("TCP", 53)} <= by_port
    config = _of_kind(production, "ConfigMap")
    (data,) = (c["data"] for c in config.values())
    broker_ports = {int(b.rsplit(":", 1)[1]) for b in data["CALLBACKS_KAFKA_BOOTSTRAP"].split(",")}
    assert {("TCP", port) for port in broker_ports} <= by_port


def test_metrics_are_reachable_from_prometheus_only(production: list[dict[str, Any]]) -> None:
    policies = _of_kind(production, "NetworkPolicy")
    deployments = _of_kind(production, "Deployment")
    for name, deployment in deployments.items():
        labels = _pod_labels(deployment)
        ingress = [
            p for p in policies.values()
            if "Ingress" in p["spec"]["policyTypes"] and _selects(p, labels)
        ]  # fmt: skip
        assert ingress, f"{name}: no ingress policy, so every port is open"
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        ports = {p["name"] for p in container["ports"]}
        assert "metrics" in ports, name
        for policy in ingress:
            for rule in policy["spec"]["ingress"]:
                opened = {p["port"] for p in rule["ports"]}
                if "metrics" in opened:
                    # Only Prometheus' pods, never everyone.
                    assert rule.get("from"), policy["metadata"]["name"]
                    assert all("podSelector" in peer for peer in rule["from"])
                else:
                    assert opened == {"http"}, policy["metadata"]["name"]
                    assert name == "callbacks-profile-api"


@pytest.mark.parametrize("overlay", [BASE, PRODUCTION], ids=["base", "production"])
def test_every_service_serves_metrics_on_its_metrics_port_only(overlay: Any) -> None:
    built = kustomize_build(overlay)
    (monitor,) = _of_kind(built, "ServiceMonitor").values()
    assert [e["port"] for e in monitor["spec"]["endpoints"]] == ["metrics"]
    (data,) = (c["data"] for c in _of_kind(built, "ConfigMap").values())
    api = _of_kind(built, "Deployment")["callbacks-profile-api"]
    (container,) = api["spec"]["template"]["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["metrics"] == int(data["CALLBACKS_API_METRICS_PORT"])
    assert ports["http"] == int(data["CALLBACKS_API_PORT"])
