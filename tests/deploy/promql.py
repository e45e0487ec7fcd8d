"""What the dashboard and the alert rules ask Prometheus for, and what a service exports.

Deliberately small: metric names are ``callbacks_*`` identifiers in an expression; the
labels an expression relies on are those of its ``by (...)`` clauses and its matchers.
Labels Prometheus adds itself (``job``, ``instance``) and ``le`` are left out.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

import yaml

from tests.deploy.tools import ALERTS, DASHBOARD

_METRIC = re.compile(r"\bcallbacks_[a-z0-9_]+\b")
_BY = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")
_MATCHER = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)\s*\"")
_SELECTOR = re.compile(r"\b(callbacks_[a-z0-9_]+)\s*\{([^}]*)\}")
_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s")
_LABEL = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)=\"")
PROMETHEUS_LABELS = {"job", "instance", "le"}


def dashboard_expressions() -> list[str]:
    panels = json.loads(DASHBOARD.read_text("utf-8"))["panels"]
    return [t["expr"] for p in panels for t in p.get("targets", [])]


def rule_expressions() -> list[str]:
    groups = yaml.safe_load(ALERTS.read_text("utf-8"))["groups"]
    return [rule["expr"] for group in groups for rule in group["rules"]]


def metric_names(expression: str) -> set[str]:
    return set(_METRIC.findall(expression))


def label_uses(expression: str) -> dict[str, set[str]]:
    """Per metric in the expression, the labels the expression reads from it.

    A ``by`` clause is charged to every metric of its expression (the expressions here
    aggregate one metric each); a matcher only to the metric it is written on.
    """
    by_labels = {
        label.strip()
        for clause in _BY.findall(expression)
        for label in clause.split(",")
        if label.strip()
    }
    uses = {name: set(by_labels) for name in metric_names(expression)}
    for name, matchers in _SELECTOR.findall(expression):
        uses[name] |= set(_MATCHER.findall(matchers))
    return {name: labels - PROMETHEUS_LABELS for name, labels in uses.items()}


@dataclass
class Exposition:
    """One /metrics page: the series names it declares and the labels seen on samples."""

    names: set[str] = field(default_factory=set)
    labels: dict[str, set[str]] = field(default_factory=dict)
    values: dict[str, float] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> Exposition:
        page = cls()
        for line in text.splitlines():
            if line.startswith("# TYPE "):
                _, _, name, kind = line.split(maxsplit=3)
                page.names.add(name)
                if kind == "histogram":
                    page.names.update(f"{name}_{suffix}" for suffix in ("bucket", "sum", "count"))
                continue
            match = _SAMPLE.match(line)
            if match is None:
                continue
            name, labels = match.group(1), match.group(2) or ""
            page.labels.setdefault(name, set()).update(_LABEL.findall(labels))
            value = float(line.rsplit(maxsplit=1)[-1])
            page.values[name] = page.values.get(name, 0.0) + value
        return page

    def merge(self, other: Exposition) -> None:
        self.names |= other.names
        for name, labels in other.labels.items():
            self.labels.setdefault(name, set()).update(labels)
        for name, value in other.values.items():
            self.values[name] = self.values.get(name, 0.0) + value
