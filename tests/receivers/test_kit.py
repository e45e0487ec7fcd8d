"""The receiver kit (receivers/) in Python, Node.js, Go and Java against vectors made by
our own signing and encryption code: each accepts every good vector, with the right
plaintext, and rejects every tampered, expired or mismatched one."""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from callbacks.catalog import encryption_document

from tests.receivers.vectors import Expected, write_vectors

KIT = Path(__file__).resolve().parents[2] / "receivers"


@pytest.fixture(scope="module")
def vectors(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Expected]]:
    path = tmp_path_factory.mktemp("receivers") / "vectors.tsv"
    expected = write_vectors(path)
    kinds = {(name.split("-")[0] in ("aes",), e.accept) for name, e in expected.items()}
    assert kinds == {(False, True), (False, False), (True, True), (True, False)}
    return path, expected


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not on PATH; the receiver kit test needs it")
    return found


def _run(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=110, check=False
    )
    assert done.returncode == 0, f"{args}: {done.stdout}\n{done.stderr}"
    return done.stdout


def run_python(vectors: Path, _build: Path) -> str:
    return _run([sys.executable, "run_vectors.py", str(vectors)], KIT / "python")


def run_node(vectors: Path, _build: Path) -> str:
    return _run([_tool("node"), "run-vectors.js", str(vectors)], KIT / "node")


def run_go(vectors: Path, build: Path) -> str:
    go = _tool("go")
    # Standard library only: no toolchain switch, no module proxy, no workspace.
    env = {**os.environ, "GOTOOLCHAIN": "local", "GOPROXY": "off", "GOFLAGS": "", "GOWORK": "off"}
    gofmt = _run([str(Path(go).with_name("gofmt")), "-l", "."], KIT / "go", env)
    assert gofmt == "", f"not gofmt-formatted: {gofmt}"
    binary = build / "run-vectors"
    _run([go, "build", "-o", str(binary), "./cmd/run-vectors"], KIT / "go", env)
    return _run([str(binary), str(vectors)], KIT / "go", env)


def run_java(vectors: Path, build: Path) -> str:
    sources = sorted(str(p) for p in (KIT / "java" / "src").rglob("*.java"))
    _run([_tool("javac"), "-Xlint:all", "-Werror", "-d", str(build), *sources], KIT / "java")
    return _run(
        [_tool("java"), "-cp", str(build), "callbacks.receiver.RunVectors", str(vectors)],
        KIT / "java",
    )


@pytest.mark.timeout(240)  # a cold Go build cache compiles the standard library's crypto
@pytest.mark.parametrize(
    "runner", [run_python, run_node, run_go, run_java], ids=lambda r: r.__name__
)
def test_every_implementation_accepts_the_good_vectors_and_rejects_the_bad(
    runner: Callable[[Path, Path], str], vectors: tuple[Path, dict[str, Expected]], tmp_path: Path
) -> None:
    path, expected = vectors
    output = runner(path, tmp_path)
    results: dict[str, tuple[str, str]] = {}
    for line in output.splitlines():
        name, verdict, detail = line.split("\t", 2)
        results[name] = (verdict, detail)
    assert set(results) == set(expected)
    wrong = []
    for name, want in expected.items():
        verdict, detail = results[name]
        if verdict != ("accept" if want.accept else "reject"):
            wrong.append(f"{name}: {verdict} {detail}")
        elif want.plaintext is not None and base64.b64decode(detail) != want.plaintext:
            wrong.append(f"{name}: decrypted to other bytes")
    assert not wrong, "\n".join(wrong)


def test_the_catalog_points_at_the_kit() -> None:
    kit = encryption_document()["receiver_kit"]
    for name in kit["files"].values():
        assert (KIT.parent / name).is_file(), name
    assert (KIT.parent / "docs" / "receivers.md").is_file()
    assert "docs/receivers.md" in encryption_document()["example_python"]
