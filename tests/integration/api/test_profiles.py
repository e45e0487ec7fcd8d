"""Callback profiles over REST (contract §3): CRUD, masking, update semantics, isolation."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import orjson
import pytest
from callbacks.models.profiles import ProfileRecord, open_secrets
from callbacks.secretbox import SecretBox

from tests.integration.api.helpers import Api, sms_profile

PROFILES = "/v1/callback-profiles"
SECRETS = {
    ("encryption", "key"): "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
    ("authentication", "password"): "p",
}


async def create(api: Api, **overrides: Any) -> dict[str, Any]:
    reply = await api.call("POST", PROFILES, json=sms_profile(**overrides))
    assert reply.status == 201, reply.body
    body: dict[str, Any] = reply.body
    return body


async def test_create_returns_masked_profile_and_signing_secret_once(
    api: Api, migrated_database: str
) -> None:
    created = await create(api)
    uuid.UUID(created["id"])
    assert created["signing_secret"].startswith("whsec_")
    assert created["encryption"]["key"] == "****"
    assert created["authentication"]["password"] == "****"
    assert created["authentication"]["username"] == "u"
    assert created["title"] == "Order SMS status"
    assert created["created_at"] == created["updated_at"]
    assert "account_id" not in created
    assert "signing_secrets" not in created

    fetched = await api.call("GET", f"{PROFILES}/{created['id']}")
    assert fetched.status == 200
    assert "signing_secret" not in fetched.body
    assert fetched.body == {k: v for k, v in created.items() if k != "signing_secret"}

    conn = await asyncpg.connect(migrated_database)
    try:
        stored = await conn.fetchval(
            "SELECT document::text FROM callback_profiles WHERE id = $1",
            uuid.UUID(created["id"]),
        )
        outbox = await conn.fetchval(
            "SELECT payload::text FROM profile_outbox WHERE profile_id = $1",
            uuid.UUID(created["id"]),
        )
    finally:
        await conn.close()
    for text in (stored, outbox):
        for secret in (*SECRETS.values(), created["signing_secret"]):
            assert f'"{secret}"' not in text
        assert "sealed:v2:" in text


async def stored_record(database_url: str, master_key: str, profile_id: str) -> ProfileRecord:
    """The stored document with its secrets opened under the master key."""
    conn = await asyncpg.connect(database_url)
    try:
        text = await conn.fetchval(
            "SELECT document::text FROM callback_profiles WHERE id = $1", uuid.UUID(profile_id)
        )
    finally:
        await conn.close()
    box = SecretBox(base64.b64decode(master_key))
    return open_secrets(ProfileRecord.model_validate_json(text), box.open)


async def test_put_and_patch_with_masked_secrets_keep_the_stored_ones(
    api: Api, migrated_database: str, master_key: str
) -> None:
    created = await create(api)
    path = f"{PROFILES}/{created['id']}"
    shown = (await api.call("GET", path)).body

    # GET → change the title → PUT the whole document back, masks and read-only fields too.
    put = await api.call("PUT", path, json={**shown, "title": "Renamed"})
    assert put.status == 200, put.body
    assert put.body["title"] == "Renamed"
    assert put.body["encryption"]["key"] == "****"
    assert put.body["created_at"] == created["created_at"]
    assert put.body["updated_at"] > created["updated_at"]

    patched = await api.call(
        "PATCH", path, json={"authentication": {"password": "****"}, "enabled": False}
    )
    assert patched.status == 200, patched.body
    assert patched.body["enabled"] is False

    record = await stored_record(migrated_database, master_key, created["id"])
    assert record.encryption.key == SECRETS[("encryption", "key")]
    assert record.authentication.password == SECRETS[("authentication", "password")]
    assert record.signing_secrets[0].secret == created["signing_secret"]

    changed = await api.call("PATCH", path, json={"authentication": {"password": "new"}})
    assert changed.status == 200
    assert changed.body["authentication"]["password"] == "****"
    record = await stored_record(migrated_database, master_key, created["id"])
    assert record.authentication.password == "new"


async def test_a_mask_with_nothing_stored_is_rejected(api: Api) -> None:
    reply = await api.call(
        "POST",
        PROFILES,
        json=sms_profile(authentication={"type": "bearer", "token": "****"}),
    )
    assert reply.status == 422
    assert [e["field"] for e in reply.body["errors"]] == ["authentication.token"]


async def test_patch_merges_settings_and_replaces_maps(api: Api) -> None:
    created = await create(api)
    path = f"{PROFILES}/{created['id']}"
    reply = await api.call(
        "PATCH",
        path,
        json={
            "encryption": {"scope": "body"},
            "authentication": {"username": "other"},
            "headers": {"X-Only": "1"},
        },
    )
    assert reply.status == 200, reply.body
    body = reply.body
    assert body["encryption"] == {
        "enabled": True,
        "algorithm": "aes-256-gcm",
        "scope": "body",
        "key": "****",
    }
    assert body["authentication"]["type"] == "basic"
    assert body["authentication"]["username"] == "other"
    assert body["authentication"]["password"] == "****"
    assert body["headers"] == {"X-Only": "1"}
    assert body["query_params"] == {"msg": "{{message_id}}"}
    assert body["title"] == created["title"]


async def test_put_replaces_the_whole_profile(api: Api) -> None:
    created = await create(api)
    reply = await api.call(
        "PUT",
        f"{PROFILES}/{created['id']}",
        json={
            "title": "Minimal",
            "channel": "sms",
            "events": ["sms.send"],
            "method": "GET",
            "url": "https://example.com/ping",
        },
    )
    assert reply.status == 200, reply.body
    body = reply.body
    assert body["method"] == "GET"
    assert body["headers"] == {}
    assert body["body"] is None
    assert body["encryption"]["enabled"] is False
    assert body["encryption"]["key"] is None
    assert body["authentication"] == {
        "type": "none",
        "username": None,
        "password": None,
        "token": None,
        "token_url": None,
        "client_id": None,
        "client_secret": None,
        "scope": None,
    }


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
async def test_channel_cannot_change(api: Api, method: str) -> None:
    created = await create(api)
    change = {"channel": "email", "events": ["email.send"]}
    body = {**sms_profile(), **change} if method == "PUT" else change
    reply = await api.call(method, f"{PROFILES}/{created['id']}", json=body)
    assert reply.status == 422
    assert reply.headers["Content-Type"].startswith("application/problem+json")
    assert [e["field"] for e in reply.body["errors"]] == ["channel"]
    assert (await api.call("GET", f"{PROFILES}/{created['id']}")).body["channel"] == "sms"


async def test_delete(api: Api) -> None:
    created = await create(api)
    path = f"{PROFILES}/{created['id']}"
    deleted = await api.call("DELETE", path)
    assert deleted.status == 204
    assert deleted.body is None
    assert (await api.call("GET", path)).status == 404
    assert (await api.call("DELETE", path)).status == 404


async def test_rotate_secret_keeps_the_previous_one_for_24_hours(
    api: Api, migrated_database: str, master_key: str
) -> None:
    created = await create(api)
    path = f"{PROFILES}/{created['id']}"
    rotated = await api.call("POST", f"{path}/rotate-secret")
    assert rotated.status == 200, rotated.body
    new_secret = rotated.body["signing_secret"]
    assert new_secret.startswith("whsec_")
    assert new_secret != created["signing_secret"]
    assert "signing_secret" not in (await api.call("GET", path)).body

    record = await stored_record(migrated_database, master_key, created["id"])
    current, previous = record.signing_secrets
    assert current.secret == new_secret
    assert current.expires_at is None
    assert previous.secret == created["signing_secret"]
    assert previous.expires_at is not None
    overlap = previous.expires_at - datetime.now(UTC)
    assert timedelta(hours=23, minutes=59) < overlap <= timedelta(hours=24)
    now = datetime.now(UTC)
    assert record.active_signing_secrets(now) == [new_secret, created["signing_secret"]]
    assert record.active_signing_secrets(now + timedelta(hours=25)) == [new_secret]

    again = await api.call("POST", f"{path}/rotate-secret")
    record = await stored_record(migrated_database, master_key, created["id"])
    assert [s.secret for s in record.signing_secrets] == [
        again.body["signing_secret"],
        new_secret,
    ]


async def test_other_accounts_profiles_are_not_found(api: Api, anonymous: Api) -> None:
    mine = await create(api)
    other = await anonymous.new_account("intruder")
    path = f"{PROFILES}/{mine['id']}"
    for method, body in [
        ("GET", None),
        ("PATCH", {"title": "x"}),
        ("PUT", sms_profile()),
        ("DELETE", None),
    ]:
        reply = await other.call(method, path, json=body)
        assert reply.status == 404, (method, reply.body)
        assert reply.headers["Content-Type"].startswith("application/problem+json")
    assert (await other.call("POST", f"{path}/rotate-secret")).status == 404
    assert (await other.call("GET", PROFILES)).body == {"items": [], "next_cursor": None}
    still = await api.call("GET", path)
    assert still.status == 200
    assert still.body["title"] == mine["title"]


@pytest.mark.parametrize("bad_id", ["not-a-uuid", "0", "5f0c8e1a-3b7d-4c2e-9a61-0d4b7e2f8c93"])
async def test_unknown_ids_are_404(api: Api, bad_id: str) -> None:
    for method in ("GET", "PATCH", "PUT", "DELETE"):
        reply = await api.call(method, f"{PROFILES}/{bad_id}", json=sms_profile())
        assert reply.status == 404, (method, reply.body)


async def test_malformed_json_is_400_and_unknown_fields_are_named(api: Api) -> None:
    broken = await api.call(
        "POST", PROFILES, data=b'{"title": ', headers={"Content-Type": "application/json"}
    )
    assert broken.status == 400
    assert broken.headers["Content-Type"].startswith("application/problem+json")
    assert broken.body["status"] == 400

    not_object = await api.call("POST", PROFILES, data=orjson.dumps([1, 2]))
    assert not_object.status == 422

    unknown = await api.call(
        "POST",
        PROFILES,
        json=sms_profile(colour="blue", encryption={"enabled": False, "salt": "x"}),
    )
    assert unknown.status == 422
    fields = {e["field"]: e["message"] for e in unknown.body["errors"]}
    assert fields == {"colour": "unknown field", "encryption.salt": "unknown field"}

    nul = await api.call("POST", PROFILES, json=sms_profile(title="a\x00b"))
    assert nul.status == 422
    assert [e["field"] for e in nul.body["errors"]] == ["title"]
