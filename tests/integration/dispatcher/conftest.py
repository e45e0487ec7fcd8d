"""Fixtures for dispatcher tests (their helpers are in ``helpers.py`` beside this file)."""

from __future__ import annotations

import pytest
from callbacks.settings import Settings


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The session settings, with a short group session so joins take about a second."""
    return settings.model_copy(update={"consumer_session_timeout": "2s"})
