"""``signing.scheme`` and ``GET …/signing-key`` over REST (contract §3b)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from callbacks.signing import public_key

from tests.integration.api.helpers import Api, sms_profile
from tests.integration.api.test_profiles import create, stored_record

PROFILES = "/v1/callback-profiles"


def _fields(reply_body: dict[str, Any]) -> list[str]:
    return [e["field"] for e in reply_body["errors"]]


async def test_the_scheme_defaults_to_v1_and_round_trips(api: Api) -> None:
    created = await create(api)
    assert created["signing"] == {"scheme": "v1"}
    path = f"{PROFILES}/{created['id']}"
    patched = await api.call("PATCH", path, json={"signing": {"scheme": "both"}})
    assert patched.status == 200, patched.body
    assert patched.body["signing"] == {"scheme": "both"}
    # GET → PUT back keeps it (the web page does this).
    shown = (await api.call("GET", path)).body
    put = await api.call("PUT", path, json={**shown, "title": "Renamed"})
    assert put.body["signing"] == {"scheme": "both"}
    v1a = await create(api, signing={"scheme": "v1a"})
    assert v1a["signing"] == {"scheme": "v1a"}


@pytest.mark.parametrize(
    ("signing", "field"),
    [
        ({"scheme": "v2"}, "signing.scheme"),
        ({"scheme": "V1A"}, "signing.scheme"),
        ({"scheme": None}, "signing.scheme"),
        ({"scheme": "v1", "algorithm": "rsa"}, "signing.algorithm"),
        ("v1a", "signing"),
    ],
)
async def test_a_bad_scheme_is_422_naming_the_field(api: Api, signing: Any, field: str) -> None:
    reply = await api.call("POST", PROFILES, json=sms_profile(signing=signing))
    assert reply.status == 422, reply.body
    assert field in _fields(reply.body)
    created = await create(api)
    patched = await api.call("PATCH", f"{PROFILES}/{created['id']}", json={"signing": signing})
    assert patched.status == 422, patched.body
    assert field in _fields(patched.body)


async def test_signing_key_is_the_public_half_of_the_sealed_key(
    api: Api, migrated_database: str, master_key: str
) -> None:
    created = await create(api, signing={"scheme": "v1a"})
    reply = await api.call("GET", f"{PROFILES}/{created['id']}/signing-key")
    assert reply.status == 200, reply.body
    record = await stored_record(migrated_database, master_key, created["id"])
    [generation] = record.signing_secrets
    assert generation.secret_key is not None
    assert generation.secret_key.startswith("whsk_")
    assert reply.body == {
        "scheme": "v1a",
        "public_key": public_key(generation.secret_key),
        "public_keys": [
            {
                "public_key": public_key(generation.secret_key),
                "created_at": created["created_at"],
                "expires_at": None,
            }
        ],
    }
    assert reply.body["public_key"].startswith("whpk_")
    # The private key is sealed at rest and never shown.
    conn = await asyncpg.connect(migrated_database)
    try:
        stored = await conn.fetchval(
            "SELECT document::text FROM callback_profiles WHERE id = $1", uuid.UUID(created["id"])
        )
    finally:
        await conn.close()
    assert generation.secret_key not in stored
    assert "whsk_" not in stored
    assert "whsk_" not in str((await api.call("GET", f"{PROFILES}/{created['id']}")).body)


async def test_a_v1_profile_has_a_key_ready_before_the_switch(api: Api) -> None:
    created = await create(api)
    path = f"{PROFILES}/{created['id']}/signing-key"
    before = await api.call("GET", path)
    assert before.status == 200, before.body
    assert before.body["scheme"] == "v1"
    await api.call("PATCH", f"{PROFILES}/{created['id']}", json={"signing": {"scheme": "v1a"}})
    after = await api.call("GET", path)
    assert after.body["scheme"] == "v1a"
    assert after.body["public_key"] == before.body["public_key"]  # switching does not rotate


async def test_signing_key_of_other_accounts_and_unknown_ids_is_404(
    api: Api, anonymous: Api
) -> None:
    mine = await create(api, signing={"scheme": "v1a"})
    other = await anonymous.new_account("intruder")
    for client, profile_id in (
        (other, mine["id"]),
        (api, str(uuid.uuid4())),
        (api, "not-a-uuid"),
    ):
        reply = await client.call("GET", f"{PROFILES}/{profile_id}/signing-key")
        assert reply.status == 404, reply.body
        assert reply.headers["Content-Type"].startswith("application/problem+json")


async def test_rotation_rotates_the_ed25519_key_too_and_serves_both_for_24_hours(
    api: Api, migrated_database: str, master_key: str
) -> None:
    created = await create(api, signing={"scheme": "both"})
    path = f"{PROFILES}/{created['id']}"
    old = (await api.call("GET", f"{path}/signing-key")).body["public_key"]
    rotated = await api.call("POST", f"{path}/rotate-secret")
    assert rotated.status == 200, rotated.body
    assert "whsk_" not in str(rotated.body)
    keys = (await api.call("GET", f"{path}/signing-key")).body
    new = keys["public_key"]
    assert new != old
    assert [k["public_key"] for k in keys["public_keys"]] == [new, old]
    current_key, previous_key = keys["public_keys"]
    assert current_key["expires_at"] is None
    overlap = datetime.fromisoformat(previous_key["expires_at"]) - datetime.now(UTC)
    assert timedelta(hours=23, minutes=59) < overlap <= timedelta(hours=24)

    record = await stored_record(migrated_database, master_key, created["id"])
    current, previous = record.signing_secrets
    assert current.secret == rotated.body["signing_secret"]
    assert current.secret_key is not None
    assert previous.secret_key is not None
    assert public_key(current.secret_key) == new
    assert public_key(previous.secret_key) == old
    now = datetime.now(UTC)
    assert record.active_signing_secrets(now) == [
        current.secret,
        previous.secret,
        current.secret_key,
        previous.secret_key,
    ]
    assert record.active_signing_secrets(now + timedelta(hours=25)) == [
        current.secret,
        current.secret_key,
    ]


async def test_a_profile_saved_before_v1a_gets_a_key_on_its_next_change(
    api: Api, migrated_database: str, master_key: str
) -> None:
    created = await create(api)
    conn = await asyncpg.connect(migrated_database)
    try:  # what a profile stored before v1a existed looks like
        await conn.execute(
            "UPDATE callback_profiles SET document = document #- '{signing_secrets,0,secret_key}'"
            " WHERE id = $1",
            uuid.UUID(created["id"]),
        )
    finally:
        await conn.close()
    path = f"{PROFILES}/{created['id']}"
    missing = await api.call("GET", f"{path}/signing-key")
    assert missing.status == 404
    assert missing.body["type"].endswith("no-signing-key")
    assert "signing.scheme" in missing.body["detail"]

    patched = await api.call("PATCH", path, json={"signing": {"scheme": "v1a"}})
    assert patched.status == 200, patched.body
    assert (await api.call("GET", f"{path}/signing-key")).status == 200
    record = await stored_record(migrated_database, master_key, created["id"])
    [generation] = record.signing_secrets
    assert generation.secret == created["signing_secret"]  # the HMAC secret stays
    assert generation.secret_key is not None
