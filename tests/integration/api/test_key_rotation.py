"""Master key rotation (README "Security"): new key first in CALLBACKS_MASTER_KEYS, then
``python -m callbacks reseal`` seals every stored secret under it and republishes the
profiles through the outbox; values sealed before key ids existed still open."""

from __future__ import annotations

import base64
import os
import uuid
from typing import Any

import aiohttp
import asyncpg
import orjson
from callbacks.models.profiles import ProfileRecord, open_secrets, secret_values
from callbacks.reseal import reseal
from callbacks.secretbox import LEGACY_PREFIX, PREFIX, SecretBox, key_id
from callbacks.settings import Settings
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tests.integration.api.helpers import Api, sms_profile, start_app

PROFILES = "/v1/callback-profiles"


def _legacy_seal(key: bytes, plaintext: str) -> str:
    """A value as the code before key ids sealed it (``sealed:v1:``, AAD = the prefix)."""
    nonce = os.urandom(12)
    sealed = AESGCM(key).encrypt(nonce, plaintext.encode(), LEGACY_PREFIX.encode())
    return LEGACY_PREFIX + base64.b64encode(nonce + sealed).decode()


async def _document(dsn: str, profile_id: str) -> dict[str, Any]:
    conn = await asyncpg.connect(dsn)
    try:
        text = await conn.fetchval(
            "SELECT document::text FROM callback_profiles WHERE id = $1", uuid.UUID(profile_id)
        )
    finally:
        await conn.close()
    document: dict[str, Any] = orjson.loads(text)
    return document


async def test_rotation_reseals_every_secret_and_republishes(
    api_settings: Settings, own_database: str
) -> None:
    old, new = os.urandom(32), os.urandom(32)

    def with_keys(master_key: bytes | None, master_keys: list[bytes] | None) -> Settings:
        return Settings(
            **{
                **api_settings.model_dump(),
                "database_url": own_database,
                "master_key": master_key and base64.b64encode(master_key).decode(),
                "master_keys": master_keys
                and ",".join(base64.b64encode(k).decode() for k in master_keys),
            }
        )

    before = with_keys(old, None)
    rotated = with_keys(None, [new, old])
    only_new = with_keys(None, [new])

    async with aiohttp.ClientSession() as session:
        runner, base = await start_app(before)
        try:
            api = await Api(base, session).new_account()
            created = (await api.call("POST", PROFILES, json=sms_profile())).body
        finally:
            await runner.cleanup()
        profile_id = created["id"]

        # An existing value in the old format (no key id, no binding) still opens.
        conn = await asyncpg.connect(own_database)
        try:
            await conn.execute(
                """UPDATE callback_profiles SET document = jsonb_set(document,
                       '{authentication,password}', to_jsonb($2::text)) WHERE id = $1""",
                uuid.UUID(profile_id),
                _legacy_seal(old, "legacy-password"),
            )
        finally:
            await conn.close()

        report = await reseal(rotated)
        assert (report.resealed, report.failed) == (1, [])
        document = await _document(own_database, profile_id)
        values = secret_values(ProfileRecord.model_validate(document))
        # encryption key, password, X-Api-Key, signing secret, ed25519 signing key
        assert len(values) == 5
        assert all(v.startswith(f"{PREFIX}{key_id(new)}:") for v in values)

        # Republished: the newest outbox row of the profile carries the resealed document.
        conn = await asyncpg.connect(own_database)
        try:
            payload = await conn.fetchval(
                """SELECT payload::text FROM profile_outbox WHERE profile_id = $1
                   ORDER BY id DESC LIMIT 1""",
                uuid.UUID(profile_id),
            )
            topic = await conn.fetchval(
                "SELECT topic FROM profile_outbox WHERE profile_id = $1 ORDER BY id DESC LIMIT 1",
                uuid.UUID(profile_id),
            )
        finally:
            await conn.close()
        assert orjson.loads(payload) == document
        assert topic == rotated.topics.profiles

        # Once everything is resealed the old key can go: the new one alone opens all.
        runner, base = await start_app(only_new)
        try:
            again = Api(base, session, api.key)
            shown = await again.call(
                "PATCH", f"{PROFILES}/{profile_id}", json={"title": "after rotation"}
            )
            assert shown.status == 200, shown.body
        finally:
            await runner.cleanup()
        opened = open_secrets(
            ProfileRecord.model_validate(await _document(own_database, profile_id)),
            SecretBox(new).open,
        )
        assert opened.authentication.password == "legacy-password"
        assert opened.headers["X-Api-Key"] == "abc"

    # A second run finds nothing to do.
    assert (await reseal(only_new)).resealed == 0
