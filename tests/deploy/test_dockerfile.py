"""Dockerfile: hadolint-clean, multi-stage, non-root, and it ships every service."""

from __future__ import annotations

import re

from tests.deploy.tools import DOCKERFILE, ROOT, run, venv_tool


def test_hadolint_finds_nothing() -> None:
    result = run([venv_tool("hadolint"), "--failure-threshold", "info", str(DOCKERFILE)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_image_is_multi_stage_non_root_and_ships_every_service() -> None:
    text = DOCKERFILE.read_text("utf-8")
    stages = re.findall(r"^FROM \S+ AS (\S+)$", text, re.MULTILINE)
    assert len(stages) >= 2
    users = re.findall(r"^USER (\S+)$", text, re.MULTILINE)
    assert users, "the image must not run as root"
    assert users[-1].split(":")[0] not in {"0", "root"}
    copied = set(re.findall(r"^COPY (\S+) ", text, re.MULTILINE))
    assert {"pyproject.toml", "shared", "services"} <= copied
    # The packages the services are started from are where the install picks them up.
    for module_dir in (
        "shared/callbacks",
        "services/profile-api/profile_api",
        "services/dispatcher/dispatcher",
        "services/reporter/reporter",
    ):
        assert (ROOT / module_dir).is_dir(), module_dir
    ignored = (ROOT / ".dockerignore").read_text("utf-8").split()
    for needed in ("pyproject.toml", "shared", "services"):
        assert needed not in ignored
    assert ".venv" in ignored
    assert ".git" in ignored
