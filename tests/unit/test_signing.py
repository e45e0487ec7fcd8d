import base64
import time
from datetime import UTC, datetime, timedelta

import pytest
from callbacks.models.profiles import (
    Encryption,
    ProfileRecord,
    SigningSecret,
    open_secrets,
    seal_secrets,
)
from callbacks.request import build_request
from callbacks.secretbox import SecretBox
from callbacks.signing import (
    generate_secret,
    generate_signing_key,
    public_key,
    sign,
    signature_header,
)
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

# The examples of the Standard Webhooks specification.
SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY = (
    "msg_p5jXN8AQM9LWM0D4loKWxJek",
    1614265330,
    b'{"test": 2432232314}',
)
SPEC_SIGNING_KEY = (
    "whsk_6Xb/dCcHpPea21PS1N9VY/NZW723CEc77N4rJCubMbfVKIDij2HKpMKkioLlX0dRqSKJp4AJ6p9lMicMFs6Kvg=="
)
SPEC_V1A = (
    "v1a,hnO3f9T8Ytu9HwrXslvumlUpqtNVqkhqw/enGzPCXe5BdqzCInXqYXFymVJaA7AZdpXwVLPo3mNl8EM+m7TBAg=="
)

BODIES = [b"", b'{"status": "delivered"}', "नमस्ते 👍".encode(), b"<x a='1'>&amp;</x>\n"]


def headers(msg_id: str, timestamp: int, signature: str) -> dict[str, str]:
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature,
    }


def test_generate_secret_shape() -> None:
    secret = generate_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 32
    assert generate_secret() != secret


def test_known_vector() -> None:
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    assert (
        sign(secret, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY)
        == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    )


def test_known_vector_v1a() -> None:
    assert sign(SPEC_SIGNING_KEY, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY) == SPEC_V1A


def verify_v1a(whpk: str, signature: str, msg_id: str, timestamp: int, body: bytes) -> None:
    """An independent ed25519 check of one ``v1a,`` signature (raises InvalidSignature)."""
    key = Ed25519PublicKey.from_public_bytes(base64.b64decode(whpk.removeprefix("whpk_")))
    version, _, value = signature.partition(",")
    assert version == "v1a"
    key.verify(base64.b64decode(value), f"{msg_id}.{timestamp}.".encode() + body)


def test_spec_public_key_verifies_the_spec_signature() -> None:
    whpk = public_key(SPEC_SIGNING_KEY)
    raw = base64.b64decode(SPEC_SIGNING_KEY.removeprefix("whsk_"))
    assert whpk == "whpk_" + base64.b64encode(raw[32:]).decode()  # the 64-byte form's tail
    verify_v1a(whpk, SPEC_V1A, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY)


def test_generate_signing_key_shape() -> None:
    key = generate_signing_key()
    assert key.startswith("whsk_")
    assert len(base64.b64decode(key.removeprefix("whsk_"))) == 64
    assert generate_signing_key() != key
    assert len(base64.b64decode(public_key(key).removeprefix("whpk_"))) == 32


@pytest.mark.parametrize("body", BODIES)
def test_v1a_verifies_with_the_public_key_only(body: bytes) -> None:
    key = generate_signing_key()
    signature = sign(key, "dlv_1", 1700000000, body)
    verify_v1a(public_key(key), signature, "dlv_1", 1700000000, body)
    with pytest.raises(InvalidSignature):
        verify_v1a(public_key(key), signature, "dlv_1", 1700000000, body + b" ")
    with pytest.raises(InvalidSignature):
        verify_v1a(public_key(generate_signing_key()), signature, "dlv_1", 1700000000, body)


def test_both_schemes_in_one_header() -> None:
    secret, key = generate_secret(), generate_signing_key()
    now = int(time.time())
    body = '{"a": "नमस्ते"}'.encode()
    header = signature_header([secret, key], "dlv_5", now, body)
    v1, v1a = header.split(" ")
    assert v1.startswith("v1,")
    verify_v1a(public_key(key), v1a, "dlv_5", now, body)
    # A v1 receiver (the Standard Webhooks library) skips the v1a entry and verifies.
    Webhook(secret).verify(body, headers("dlv_5", now, header))


@pytest.mark.parametrize(
    ("key", "match"),
    [
        ("whsk_!!!", "base64"),
        ("whsk_" + base64.b64encode(bytes(32)).decode(), "64 bytes"),
        # the spec key's seed with another key's public half
        (
            "whsk_"
            + base64.b64encode(
                base64.b64decode(SPEC_SIGNING_KEY.removeprefix("whsk_"))[:32] + bytes(32)
            ).decode(),
            "does not match",
        ),
    ],
)
def test_bad_signing_key(key: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        sign(key, "id", 1, b"")


NOW = datetime(2030, 1, 1, tzinfo=UTC)


def record(scheme: str, chain: list[SigningSecret]) -> ProfileRecord:
    return ProfileRecord.model_validate(
        {
            "title": "t",
            "url": "https://example.com/hook",
            "id": "p",
            "account_id": "a",
            "created_at": NOW,
            "updated_at": NOW,
            "signing": {"scheme": scheme},
            "signing_secrets": chain,
        }
    )


def generation(*, expires_in: timedelta | None = None, with_key: bool = True) -> SigningSecret:
    return SigningSecret(
        secret=generate_secret(),
        secret_key=generate_signing_key() if with_key else None,
        created_at=NOW - timedelta(days=1),
        expires_at=NOW + expires_in if expires_in is not None else None,
    )


@pytest.mark.parametrize("scheme", ["v1", "v1a", "both"])
def test_active_keys_follow_the_scheme_and_the_rotation(scheme: str) -> None:
    current, previous = generation(), generation(expires_in=timedelta(hours=1))
    profile = record(scheme, [current, previous])
    hmac_keys = [current.secret, previous.secret]
    ed_keys = [current.secret_key, previous.secret_key]
    expected = {"v1": hmac_keys, "v1a": ed_keys, "both": hmac_keys + ed_keys}[scheme]
    assert profile.active_signing_secrets(NOW) == expected
    later = NOW + timedelta(hours=2)  # the previous generation has expired
    assert profile.active_signing_secrets(later) == [
        k for k in expected if k in (current.secret, current.secret_key)
    ]


def test_a_generation_without_an_ed25519_key_signs_v1_only() -> None:
    current, legacy = generation(), generation(expires_in=timedelta(hours=1), with_key=False)
    assert record("both", [current, legacy]).active_signing_secrets(NOW) == [
        current.secret,
        legacy.secret,
        current.secret_key,
    ]


@pytest.mark.parametrize("body", BODIES)
def test_verifies_with_standardwebhooks(body: bytes) -> None:
    secret = generate_secret()
    now = int(time.time())
    signature = signature_header([secret], "dlv_1", now, body)
    Webhook(secret).verify(body, headers("dlv_1", now, signature), json_parse=False)


def test_rotation_both_secrets_verify() -> None:
    new, old = generate_secret(), generate_secret()
    now = int(time.time())
    body = '{"a": "नमस्ते"}'.encode()
    header = signature_header([new, old], "dlv_2", now, body)
    assert len(header.split(" ")) == 2
    Webhook(new).verify(body, headers("dlv_2", now, header))
    Webhook(old).verify(body, headers("dlv_2", now, header))
    with pytest.raises(WebhookVerificationError):
        Webhook(generate_secret()).verify(body, headers("dlv_2", now, header))


def test_tampered_body_or_id_fails() -> None:
    secret = generate_secret()
    now = int(time.time())
    header = signature_header([secret], "dlv_3", now, b"a")
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(b"b", headers("dlv_3", now, header))
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(b"a", headers("dlv_4", now, header))


def test_bad_secret() -> None:
    with pytest.raises(ValueError, match="base64"):
        sign("whsec_!!!", "id", 1, b"")


def test_the_ed25519_key_is_sealed_like_the_other_secrets() -> None:
    box = SecretBox(bytes(range(32)))
    profile = record("v1a", [generation()])
    sealed = seal_secrets(profile, box.seal)
    key = sealed.signing_secrets[0].secret_key
    assert key is not None
    assert SecretBox.is_sealed(key)
    assert "whsk_" not in sealed.model_dump_json()
    assert open_secrets(sealed, box.open) == profile


def test_the_request_builder_signs_what_is_sent_with_the_scheme() -> None:
    profile = record("both", [generation()]).model_copy(
        update={
            "body_type": "json",
            "body": '{"s": "{{status}}"}',
            "encryption": Encryption(
                enabled=True,
                scope="body",
                key=base64.b64encode(bytes(16)).decode(),
                algorithm="aes-128-gcm",
            ),
        }
    )
    request = build_request(
        profile,
        {"status": "delivered"},
        delivery_id="dlv_9",
        timestamp=1700000000,
        auth_header=None,
    )
    sent = dict(request.headers)
    assert request.body is not None
    assert b"delivered" not in request.body  # encrypted, and the signature covers that
    v1, v1a = sent["webhook-signature"].split(" ")
    key = profile.signing_secrets[0]
    assert key.secret_key is not None
    verify_v1a(public_key(key.secret_key), v1a, "dlv_9", 1700000000, request.body)
    assert v1 == sign(key.secret, "dlv_9", 1700000000, request.body)
