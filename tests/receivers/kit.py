"""The Python receiver kit (receivers/python/callback_receiver.py), importable by tests:
it is a file customers copy, not a package we install."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType


def load_python_kit() -> ModuleType:
    path = Path(__file__).resolve().parents[2] / "receivers" / "python" / "callback_receiver.py"
    spec = importlib.util.spec_from_file_location("callback_receiver", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
