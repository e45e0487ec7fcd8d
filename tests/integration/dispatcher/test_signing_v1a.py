"""Callbacks signed ``v1a`` or ``both`` (contract §3b) verify at the endpoint with the
profile's public key alone, through the receiver kit, from the dispatcher and the API's
Test call alike."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from callbacks.models.profiles import SigningSecret
from callbacks.settings import Settings
from callbacks.signing import generate_secret, generate_signing_key, public_key
from standardwebhooks.webhooks import Webhook

from tests.integration.api.helpers import Api
from tests.integration.dispatcher.helpers import (
    drain,
    make_profile,
    outcomes,
    produce_events,
    publish_profiles,
    sms_event,
)
from tests.integration.dispatcher.sink import Sink
from tests.integration.dispatcher.test_test_calls import PROFILE, _api
from tests.receivers.kit import load_python_kit

pytestmark = pytest.mark.integration

kit = load_python_kit()
KEY = bytes(range(32))


@pytest.fixture
async def api(topics: Settings) -> AsyncIterator[Api]:
    async for client in _api(topics):
        yield client


@pytest.mark.parametrize("scheme", ["v1a", "both"])
async def test_a_callback_verifies_with_the_public_key(
    topics: Settings, sink: Sink, scheme: str
) -> None:
    now = datetime.now(UTC)
    generation = SigningSecret(
        secret=generate_secret(), secret_key=generate_signing_key(), created_at=now
    )
    assert generation.secret_key is not None
    profile = make_profile(
        sink.url("/hooks/v1a"),
        signing={"scheme": scheme},
        signing_secrets=[generation],
        encryption={
            "enabled": True,
            "algorithm": "aes-256-gcm",
            "scope": "body",
            "key": base64.b64encode(KEY).decode(),
        },
    )
    await publish_profiles(topics, profile)
    event = sms_event(profile)
    await produce_events(topics, [event])
    await drain(topics)

    [got] = sink.at("/hooks/v1a")
    versions = [s.split(",")[0] for s in got.header("webhook-signature").split(" ")]  # type: ignore[union-attr]
    assert versions == (["v1a"] if scheme == "v1a" else ["v1", "v1a"])
    # The receiver holds only the public key, as a customer would.
    kit.verify(got.body, got.headers, public_keys=[public_key(generation.secret_key)])
    with pytest.raises(kit.VerificationError):
        kit.verify(got.body + b" ", got.headers, public_keys=[public_key(generation.secret_key)])
    with pytest.raises(kit.VerificationError):
        kit.verify(got.body, got.headers, public_keys=[public_key(generate_signing_key())])
    if scheme == "both":  # a v1 receiver is not disturbed by the v1a entry
        Webhook(generation.secret).verify(got.body, got.headers)
    plain = kit.decrypt_body("aes-256-gcm", KEY, json.loads(got.body))
    assert json.loads(plain)["id"] == event["data"]["message_id"]
    [outcome] = await outcomes(topics)
    assert outcome["status"] == "delivered"


async def test_the_test_call_signs_v1a_with_the_key_signing_key_serves(
    api: Api, sink: Sink
) -> None:
    created = await api.call(
        "POST",
        "/v1/callback-profiles",
        json={**PROFILE, "url": sink.url("/t"), "signing": {"scheme": "v1a"}},
    )
    assert created.status == 201, created.body
    path = f"/v1/callback-profiles/{created.body['id']}"
    keys = await api.call("GET", f"{path}/signing-key")
    reply = await api.call("POST", f"{path}/test", json={"event": "sms.send"})
    assert reply.status == 200, reply.body
    assert reply.body["delivered"] is True
    [got] = sink.at("/t")
    assert got.header("webhook-signature").startswith("v1a,")  # type: ignore[union-attr]
    assert reply.body["request"]["headers"]["webhook-signature"] == got.header("webhook-signature")
    kit.verify(got.body, got.headers, public_keys=[keys.body["public_key"]])
    with pytest.raises(kit.VerificationError):  # v1a only: the HMAC secret verifies nothing
        kit.verify(got.body, got.headers, secrets=[created.body["signing_secret"]])
