import base64
import os
from datetime import UTC, datetime

import pytest
from callbacks.models.profiles import ProfileRecord, open_secrets, seal_secrets
from callbacks.secretbox import LEGACY_PREFIX, PREFIX, SecretBox, key_id
from callbacks.settings import Settings


@pytest.mark.parametrize("plaintext", ["", "p@ss:word", "नमस्ते 👍", "whsec_" + "A" * 44, "x" * 5000])
def test_round_trip(plaintext: str) -> None:
    box = SecretBox(os.urandom(32))
    token = box.seal(plaintext)
    assert token.startswith(PREFIX)
    assert plaintext not in token.removeprefix(PREFIX) or plaintext == ""
    assert box.open(token) == plaintext
    assert box.seal(plaintext) != token  # fresh nonce
    assert SecretBox.is_sealed(token)


def test_other_key_or_tampering_is_refused() -> None:
    box = SecretBox(os.urandom(32))
    token = box.seal("secret")
    with pytest.raises(ValueError, match="does not open"):
        SecretBox(os.urandom(32)).open(token)
    tampered = token[:-4] + ("AAAA" if token[-4:] != "AAAA" else "BBBB")
    with pytest.raises(ValueError, match="does not open"):
        box.open(tampered)
    with pytest.raises(ValueError, match="does not open"):
        box.open(PREFIX + "not base64!")
    with pytest.raises(ValueError, match="does not open"):
        box.open(PREFIX + "AAAA")
    with pytest.raises(ValueError, match="not a sealed secret"):
        box.open("secret")


def test_master_key_size() -> None:
    with pytest.raises(ValueError, match="master key"):
        SecretBox(b"short")


def _legacy_seal(key: bytes, plaintext: str) -> str:
    """A value as sealed before key ids existed (``sealed:v1:``, AAD = the prefix)."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    nonce = os.urandom(12)
    sealed = AESGCM(key).encrypt(nonce, plaintext.encode(), LEGACY_PREFIX.encode())
    return LEGACY_PREFIX + base64.b64encode(nonce + sealed).decode()


def test_sealed_values_name_their_key_and_every_held_key_opens() -> None:
    old, new = os.urandom(32), os.urandom(32)
    sealed_old = SecretBox(old).seal("p", "acct/prof/authentication.password")
    assert sealed_old.startswith(f"{PREFIX}{key_id(old)}:")
    rotated = SecretBox([new, old])
    assert rotated.current_key_id == key_id(new)
    assert rotated.open(sealed_old, "acct/prof/authentication.password") == "p"
    assert rotated.needs_reseal(sealed_old)
    resealed = rotated.seal("p", "acct/prof/authentication.password")
    assert resealed.startswith(f"{PREFIX}{key_id(new)}:")
    assert not rotated.needs_reseal(resealed)
    with pytest.raises(ValueError, match="does not open"):
        SecretBox(old).open(resealed, "acct/prof/authentication.password")


@pytest.mark.parametrize(
    "other",
    ["acct/other-profile/authentication.password", "other-acct/prof/authentication.password",
     "acct/prof/authentication.client_secret", ""],
)  # fmt: skip
def test_a_sealed_value_opens_only_in_its_own_context(other: str) -> None:
    box = SecretBox(os.urandom(32))
    token = box.seal("p", "acct/prof/authentication.password")
    with pytest.raises(ValueError, match="does not open"):
        box.open(token, other)


def test_values_sealed_before_key_ids_still_open() -> None:
    old, new = os.urandom(32), os.urandom(32)
    legacy = _legacy_seal(old, "hunter2")
    box = SecretBox([new, old])
    assert SecretBox.is_sealed(legacy)
    assert box.open(legacy, "any/context/at.all") == "hunter2"
    assert box.needs_reseal(legacy)
    with pytest.raises(ValueError, match="does not open"):
        SecretBox(new).open(legacy)


def test_an_unknown_key_id_is_refused() -> None:
    token = SecretBox(os.urandom(32)).seal("x")
    with pytest.raises(ValueError, match="does not open"):
        SecretBox(os.urandom(32)).open(token)
    with pytest.raises(ValueError, match="does not open"):
        SecretBox(os.urandom(32)).open(PREFIX + "nokeyid")


def _record(profile_id: str, password: str) -> ProfileRecord:
    now = datetime(2026, 11, 24, tzinfo=UTC)
    return ProfileRecord(
        id=profile_id,
        account_id="acct-1",
        title="t",
        url="https://example.com/",
        headers={"X-Api-Key": "header-secret", "Content-Type": "application/json"},
        authentication={"type": "basic", "username": "u", "password": password},
        created_at=now,
        updated_at=now,
    )


def test_a_sealed_password_swapped_into_another_profile_does_not_open() -> None:
    box = SecretBox(os.urandom(32))
    first = seal_secrets(_record("profile-a", "pa"), box.seal)
    second = seal_secrets(_record("profile-b", "pb"), box.seal)
    assert open_secrets(first, box.open).authentication.password == "pa"
    swapped = second.model_copy(
        update={"authentication": second.authentication.model_copy(
            update={"password": first.authentication.password})}
    )  # fmt: skip
    with pytest.raises(ValueError, match="does not open"):
        open_secrets(swapped, box.open)


def test_credential_headers_are_sealed_and_open_again() -> None:
    box = SecretBox(os.urandom(32))
    sealed = seal_secrets(_record("profile-a", "pa"), box.seal)
    assert SecretBox.is_sealed(sealed.headers["X-Api-Key"])
    assert sealed.headers["Content-Type"] == "application/json"
    assert open_secrets(sealed, box.open).headers["X-Api-Key"] == "header-secret"


def test_master_keys_setting_puts_the_new_key_first() -> None:
    new, old, single = (base64.b64encode(os.urandom(32)).decode() for _ in range(3))
    settings = Settings(master_keys=f"{new}, {old}", master_key=single)  # type: ignore[arg-type]
    assert settings.master_keys_bytes() == [base64.b64decode(k) for k in (new, old, single)]
    assert settings.master_key_bytes() == base64.b64decode(new)
    alone = Settings(master_key=single)  # type: ignore[arg-type]
    assert alone.master_keys_bytes() == [base64.b64decode(single)]
    with pytest.raises(ValueError, match="32 bytes"):
        Settings(master_keys=f"{new},{base64.b64encode(b'short').decode()}")  # type: ignore[arg-type]
