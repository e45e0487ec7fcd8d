"""Dockerfile: hadolint-clean, multi-stage, non-root, and it ships every service."""

from __future__ import annotations

import re
import shutil
import sys
import tomllib
import zipfile
from pathlib import Path

from tests.deploy.tools import DOCKERFILE, ROOT, run, venv_tool

SERVICE_MODULES = ("profile_api", "dispatcher", "reporter")
PACKAGE_DIRS = (
    "shared/callbacks",
    "services/profile-api/profile_api",
    "services/dispatcher/dispatcher",
    "services/reporter/reporter",
)
# Where dev tools would land in a wheel: their own package, or a devstack or simulator
# package inside the runtime one.
DEV_PACKAGES = ("callbacks_dev/", "callbacks/devstack/", "callbacks/simulator/")


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
    for module_dir in PACKAGE_DIRS:
        assert (ROOT / module_dir).is_dir(), module_dir
    ignored = (ROOT / ".dockerignore").read_text("utf-8").split()
    for needed in ("pyproject.toml", "shared", "services"):
        assert needed not in ignored
    assert ".venv" in ignored
    assert ".git" in ignored


def test_the_image_install_carries_every_runtime_file(tmp_path: Path) -> None:
    """The build stage runs ``pip install .`` on the Docker context: build that wheel from
    a copy of the same files and check that every service entry point and every non-Python
    file of the packages (migrations, static web files, templates) is inside. An editable
    install would hide a file missing from package-data; the image would not."""
    context = tmp_path / "context"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    context.mkdir()
    shutil.copy2(ROOT / "pyproject.toml", context)
    for folder in ("shared", "services"):
        shutil.copytree(ROOT / folder, context / folder, ignore=ignore)
    result = run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path), "."],
        cwd=context,
        timeout_s=180,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    (wheel,) = tmp_path.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        shipped = set(archive.namelist())
    expected = {"callbacks/__main__.py"} | {f"{m}/__main__.py" for m in SERVICE_MODULES}
    for package_dir in PACKAGE_DIRS:
        source = ROOT / package_dir
        for path in source.rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts:
                expected.add(f"{source.name}/{path.relative_to(source).as_posix()}")
    assert not expected - shipped, sorted(expected - shipped)
    assert not any(name.startswith(("tests/", "bench/", *DEV_PACKAGES)) for name in shipped)


def test_the_dev_tools_stay_out_of_the_build_context() -> None:
    """``devtools/`` is neither copied into the image nor sent with its build context, and
    the runtime project's package discovery does not reach it."""
    text = DOCKERFILE.read_text("utf-8")
    copied = set(re.findall(r"^COPY (\S+) ", text, re.MULTILINE))
    assert not {name for name in copied if name.strip("./").startswith("devtools")}
    assert "devtools" in (ROOT / ".dockerignore").read_text("utf-8").split()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))
    where = project["tool"]["setuptools"]["packages"]["find"]["where"]
    assert not [folder for folder in where if folder.startswith("devtools")]
    # Sources only: a checkout may keep an untracked __pycache__ where a package was.
    for name in ("devstack", "simulator"):
        assert not list((ROOT / "shared" / "callbacks" / name).rglob("*.py")), name


def test_runtime_commands_do_not_import_the_dev_tools() -> None:
    """What the image runs (the services and ``python -m callbacks``) imports nothing of
    ``callbacks_dev``, so the image works without it."""
    modules = ", ".join(f"{m}.__main__" for m in ("callbacks", *SERVICE_MODULES))
    probe = (
        f"import sys, {modules}\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'callbacks_dev'))"
    )
    result = run([sys.executable, "-c", probe])
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "[]", result.stdout
