"""Vulnerability audit of the locked dependency set (``make audit``, part of ``make test``).

Two sources, both read through PyPI, the registry the build machines reach:

1. ``pip-audit`` over ``requirements.lock`` and ``requirements-dev.lock`` (pinned with
   hashes, so no resolver runs), with its PyPI service and then OSV. Where the service
   answers, every package is audited; a package pip-audit could not audit is listed.
2. For every package pip-audit could not audit: PyPI's project JSON
   (``/pypi/<name>/json``), whose ``vulnerabilities`` are those of the latest release.
   When the lock pins that release, they are exactly the ones that apply to us.

A known vulnerability fails the audit (exit 1). A source that cannot be reached is a
warning, not a failure, so an outage of an advisory service never makes ``make test``
flaky; ``CALLBACKS_AUDIT_STRICT=true`` turns "could not audit" into a failure too.
The floors in ``pyproject.toml`` are checked offline by ``tests/deploy/test_dependencies.py``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCKS = (ROOT / "requirements.lock", ROOT / "requirements-dev.lock")
PYPI_JSON = "https://pypi.org/pypi/{name}/json"
TIMEOUT_S = 20
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)", re.MULTILINE)


def locked() -> dict[str, str]:
    """name → version of every pin in the lock files."""
    pins: dict[str, str] = {}
    for lock in LOCKS:
        for name, version in _PIN.findall(lock.read_text("utf-8")):
            pins[name.lower()] = version
    return pins


def pip_audit(service: str) -> dict[str, list[str]] | None:
    """package → vulnerability ids from pip-audit, with ``[]`` for audited-and-clean and
    no entry for skipped; None if pip-audit could not run against ``service``."""
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "audit.json"
        command = [sys.executable, "-m", "pip_audit", "--disable-pip", "--require-hashes"]
        for lock in LOCKS:
            command += ["-r", str(lock)]
        command += ["-s", service, "-f", "json", "-o", str(out), "--progress-spinner", "off"]
        command += ["--timeout", str(TIMEOUT_S)]
        try:
            subprocess.run(command, capture_output=True, timeout=600, check=False)  # noqa: S603
        except subprocess.TimeoutExpired:
            return None
        if not out.exists():
            return None
        report = json.loads(out.read_text("utf-8"))
    found: dict[str, list[str]] = {}
    for dep in report.get("dependencies", []):
        if "skip_reason" not in dep:
            found[dep["name"].lower()] = [v["id"] for v in dep.get("vulns", [])]
    return found


def latest_release_advisories(name: str, version: str) -> list[str] | None:
    """Advisories PyPI lists for ``name`` if ``version`` is its latest release; None
    when PyPI cannot say (unreachable, or the lock is behind the latest release)."""
    try:
        url = PYPI_JSON.format(name=name)
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as answer:  # noqa: S310
            project = json.load(answer)
    except (urllib.error.URLError, TimeoutError, ValueError):
        return None
    if project.get("info", {}).get("version") != version:
        return None
    return [
        v["id"]
        for v in project.get("vulnerabilities", [])
        if not v.get("withdrawn") and version not in v.get("fixed_in", [])
    ]


def main() -> int:
    pins = locked()
    results: dict[str, list[str]] = {}
    for service in ("pypi", "osv"):
        audited = pip_audit(service) or {}
        for name, ids in audited.items():
            results.setdefault(name, ids)
        if len(results) == len(pins):
            break
    via_pip_audit = len(results)
    unaudited: list[str] = []
    for name, version in sorted(pins.items()):
        if name in results:
            continue
        ids = latest_release_advisories(name, version)
        if ids is None:
            unaudited.append(f"{name}=={version}")
        else:
            results[name] = ids
    vulnerable = {name: ids for name, ids in results.items() if ids}
    print(
        f"audit: {len(pins)} locked packages; {via_pip_audit} audited by pip-audit, "
        f"{len(results) - via_pip_audit} by PyPI's latest-release advisories, "
        f"{len(unaudited)} not audited"
    )
    if unaudited:
        print("audit: warning: no advisory source answered for: " + ", ".join(unaudited))
    for name, ids in sorted(vulnerable.items()):
        print(f"audit: VULNERABLE {name}=={pins[name]}: {', '.join(ids)}")
    if vulnerable:
        return 1
    strict = os.environ.get("CALLBACKS_AUDIT_STRICT", "").lower() in ("1", "true", "yes")
    return 1 if strict and unaudited else 0


if __name__ == "__main__":
    raise SystemExit(main())
