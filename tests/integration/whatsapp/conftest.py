"""Fixtures for the WhatsApp and chatbot end-to-end tests: the dispatcher runs in
process in drain mode against the real broker, profiles are sealed onto the test's
profile topic, events come from the simulator's builders, callbacks land in a sink
that keeps each raw request target (the helpers are in ``helpers.py`` beside this file)."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator

import pytest
from callbacks.settings import Settings
from callbacks_dev.simulator.events import Gateway

from tests.integration.dispatcher.helpers import ACCOUNT
from tests.integration.whatsapp.helpers import RawSink


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The session settings, with a short group session so joins take about a second."""
    return settings.model_copy(update={"consumer_session_timeout": "2s"})


@pytest.fixture
async def sink() -> AsyncIterator[RawSink]:
    server = RawSink()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
def gateway() -> Gateway:
    return Gateway(random.Random(8), account_id=ACCOUNT, profiles={"*": "unset"})
