"""Dependencies (README "Security"): pinned with hashes, installed from the lock by the
image and by CI, floors above known advisories, and an audit that fails on a known
vulnerability but not on an unreachable advisory source."""

from __future__ import annotations

import importlib.util
import re
import tomllib
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from tests.deploy.tools import DEPLOY, DOCKERFILE, ROOT

RUNTIME_LOCK = ROOT / "requirements.lock"
DEV_LOCK = ROOT / "requirements-dev.lock"
# Known advisories below which no floor may sit: package → (first fixed version, why).
ADVISORIES = {
    "aiohttp": ("3.13.3", "January 2026 batch: zip bombs, DoS, request smuggling"),
    "orjson": ("3.11.5", "unbounded recursion on deeply nested input"),
    "cryptography": ("46.0.5", "missing subgroup check on binary (SECT) curves"),
    "pydantic": ("2.4.0", "CVE-2024-3772: email validation ReDoS"),
}
BUILD_ADVISORIES = {"setuptools": ("78.1.1", "CVE-2025-47273: path traversal")}
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)(?:\s*;[^\\]*)?(?: \\)?$")


def _pins(lock: Path) -> dict[str, tuple[Version, int]]:
    """name → (version, number of hashes) of every requirement in ``lock``."""
    pins: dict[str, tuple[Version, int]] = {}
    current: str | None = None
    for line in lock.read_text("utf-8").splitlines():
        match = _PIN.match(line)
        if match:
            current = match.group(1).lower()
            pins[current] = (Version(match.group(2)), 0)
        elif line.strip().startswith("--hash=sha256:") and current is not None:
            version, count = pins[current]
            pins[current] = (version, count + 1)
        elif line and not line.startswith((" ", "#")):
            raise AssertionError(f"{lock.name}: not a pinned requirement: {line!r}")
    return pins


def _pyproject() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))


def _floor(requirement: Requirement) -> Version | None:
    floors = [Version(s.version) for s in requirement.specifier if s.operator in (">=", "==")]
    return max(floors) if floors else None


@pytest.mark.parametrize("lock", [RUNTIME_LOCK, DEV_LOCK], ids=lambda p: p.name)
def test_every_locked_requirement_is_pinned_with_hashes(lock: Path) -> None:
    pins = _pins(lock)
    assert pins
    assert all(count >= 1 for _, count in pins.values()), "a pin without --hash"


def test_the_locks_satisfy_pyproject_and_agree_with_each_other() -> None:
    runtime, dev = _pins(RUNTIME_LOCK), _pins(DEV_LOCK)
    project = _pyproject()["project"]
    for extra, lock in (
        (project["dependencies"], runtime),
        (project["optional-dependencies"]["dev"], dev),
    ):
        for line in extra:
            requirement = Requirement(line)
            name = requirement.name.lower()
            assert name in lock, f"{name} is not locked"
            assert lock[name][0] in requirement.specifier, (name, lock[name][0])
    # CI tests exactly what the image ships.
    for name, (version, _) in runtime.items():
        assert dev[name][0] == version, name


def test_floors_and_pins_sit_above_known_advisories() -> None:
    project = _pyproject()
    requirements = {
        Requirement(line).name.lower(): Requirement(line)
        for line in project["project"]["dependencies"]
    }
    runtime = _pins(RUNTIME_LOCK)
    for name, (fixed, why) in ADVISORIES.items():
        floor = _floor(requirements[name])
        assert floor is not None, name
        assert floor >= Version(fixed), f"{name}: raise the floor ({why})"
        assert runtime[name][0] >= Version(fixed), name
    build = {
        Requirement(r).name.lower(): Requirement(r) for r in project["build-system"]["requires"]
    }
    for name, (fixed, why) in BUILD_ADVISORIES.items():
        floor = _floor(build[name])
        assert floor is not None, name
        assert floor >= Version(fixed), f"{name}: raise the floor ({why})"


def test_the_image_and_ci_install_from_the_locks_with_hashes() -> None:
    dockerfile = DOCKERFILE.read_text("utf-8")
    assert re.search(r"pip install .*--require-hashes.* -r requirements\.lock", dockerfile)
    assert re.search(r"pip install .*--no-deps \.", dockerfile)
    makefile = (ROOT / "Makefile").read_text("utf-8")
    assert "--require-hashes -r requirements-dev.lock" in makefile
    assert re.search(r"^test: .*\baudit\b", makefile, re.MULTILINE)
    ignored = (ROOT / ".dockerignore").read_text("utf-8").split()
    assert "requirements.lock" not in ignored


def _audit_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("deploy_audit", DEPLOY / "audit.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("pip_audit", "latest", "strict", "code"),
    [
        ({"aiohttp": [], "orjson": []}, None, False, 0),  # audited, clean
        ({"aiohttp": ["GHSA-xxxx"], "orjson": []}, None, False, 1),  # a finding fails
        (None, None, False, 0),  # no source reachable: a warning, not a flaky failure
        (None, None, True, 1),  # ... unless strict
        (None, ["PYSEC-1"], False, 1),  # PyPI's latest-release advisories apply
        (None, [], False, 0),
    ],
)
def test_the_audit_fails_on_findings_only(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    pip_audit: dict[str, list[str]] | None,
    latest: list[str] | None,
    strict: bool,
    code: int,
) -> None:
    audit = _audit_module()
    monkeypatch.setattr(audit, "locked", lambda: {"aiohttp": "3.14.5", "orjson": "3.13.0"})
    monkeypatch.setattr(audit, "pip_audit", lambda _service: pip_audit)
    monkeypatch.setattr(audit, "latest_release_advisories", lambda _name, _version: latest)
    monkeypatch.setenv("CALLBACKS_AUDIT_STRICT", "true" if strict else "false")
    assert audit.main() == code
    printed = capsys.readouterr().out
    assert "audit: 2 locked packages" in printed
    if code and not strict:
        assert "VULNERABLE" in printed


def test_the_audit_reads_every_pin_of_both_locks() -> None:
    pins = _audit_module().locked()
    expected = {**_pins(RUNTIME_LOCK), **_pins(DEV_LOCK)}
    assert pins == {name: str(version) for name, (version, _) in expected.items()}
