"""Paths of the deploy files and the command-line tools that check them.

The tools come from the dev extra (kubectl with its built-in kustomize, hadolint,
check-jsonschema, kubernetes-validate as wheels beside this interpreter) and from
Debian (``promtool`` and ``prometheus``, installed on first use: CI machines are fresh).
No tool here needs the network beyond the package registries, nor docker.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
BASE = K8S / "base"
PRODUCTION = K8S / "overlays" / "production"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
PROMETHEUS_CONFIG = DEPLOY / "prometheus" / "prometheus.yml"
DASHBOARD = DEPLOY / "grafana" / "dashboard.json"
RUNBOOK = DEPLOY / "RUNBOOK.md"
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"

_VENV_BIN = Path(sys.executable).parent
# One apt-get at a time, even across pytest processes.
_APT_LOCK = Path("/tmp/callbacks-deploy-tests-apt.lock")


def venv_tool(name: str) -> str:
    """A console script installed by the dev extra, found beside this interpreter."""
    path = _VENV_BIN / name
    assert path.exists(), f"{name} missing: run `.venv/bin/pip install -e '.[dev]'`"
    return str(path)


def run(
    argv: list[str], *, timeout_s: float = 60.0, cwd: Path = ROOT
) -> subprocess.CompletedProcess[str]:
    """Run a tool; the caller asserts on the result, which carries its output."""
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=timeout_s, check=False, cwd=cwd
    )


def debian_tool(name: str, package: str) -> str:
    """A binary from a Debian package, installed with apt-get the first time it is missing.

    Installing without ``apt-get update`` first is tried once, since package lists are
    usually present; an flock keeps two pytest processes from running apt at once.
    """
    found = shutil.which(name)
    if found:
        return found
    assert os.geteuid() == 0, f"{name} is missing and only root can apt-get install {package}"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", package]
    with _APT_LOCK.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        found = shutil.which(name)
        if found:
            return found
        first = subprocess.run(install, capture_output=True, text=True, env=env, check=False)
        if first.returncode != 0:
            update = subprocess.run(
                ["apt-get", "update", "-q"], capture_output=True, text=True, env=env, check=False
            )
            assert update.returncode == 0, update.stderr
            second = subprocess.run(install, capture_output=True, text=True, env=env, check=False)
            assert second.returncode == 0, second.stderr
    found = shutil.which(name)
    assert found, f"apt-get installed {package} but {name} is not on PATH"
    return found


def yaml_documents(text: str) -> Iterator[dict[str, Any]]:
    for document in yaml.safe_load_all(text):
        if document:
            assert isinstance(document, dict)
            yield document


def kustomize_build(directory: Path) -> list[dict[str, Any]]:
    """The real kustomize (the one built into kubectl) renders the directory."""
    result = run([venv_tool("kubectl"), "kustomize", str(directory)])
    assert result.returncode == 0, result.stderr
    return list(yaml_documents(result.stdout))
