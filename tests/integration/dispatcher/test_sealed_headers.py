"""A credential-like header saved through the API travels sealed (row, outbox,
``callbacks.profiles``) and reaches the endpoint in clear: the dispatcher opens it
with the other secrets when it loads the profile."""

from __future__ import annotations

import aiohttp
import pytest
from callbacks.settings import Settings

from tests.helpers import eventually
from tests.integration.api.helpers import Api, sms_profile, start_app
from tests.integration.dispatcher.helpers import drain, produce_events, read_topic, sms_event
from tests.integration.dispatcher.sink import Sink

pytestmark = pytest.mark.integration


async def test_a_sealed_credential_header_arrives_in_clear(topics: Settings, sink: Sink) -> None:
    runner, base = await start_app(topics)
    try:
        async with aiohttp.ClientSession() as session:
            api = await Api(base, session).new_account()
            body = sms_profile(
                url=sink.url("/hooks/sealed"),
                headers={"X-Api-Key": "k-123", "X-Auth-Token": "t-456", "X-Plain": "p"},
                encryption={"enabled": False},
                required_options={"enabled": False},
            )
            created = await api.call("POST", "/v1/callback-profiles", json=body)
            assert created.status == 201, created.body
            assert created.body["headers"]["X-Api-Key"] == "****"
            profile_id = created.body["id"]

            async def published() -> bytes | None:
                records = await read_topic(topics, topics.topics.profiles)
                mine = [r.value for r in records if r.key == profile_id.encode()]
                return mine[-1] if mine else None

            value = await eventually(published, what="the profile on the topic")
    finally:
        await runner.cleanup()
    assert b"k-123" not in value
    assert b"t-456" not in value
    assert b"sealed:v2:" in value

    event = sms_event(profile_id, account_id=api.account_id)
    await produce_events(topics, [event])
    await drain(topics)
    [got] = sink.at("/hooks/sealed")
    assert got.header("X-Api-Key") == "k-123"
    assert got.header("X-Auth-Token") == "t-456"
    assert got.header("X-Plain") == "p"
