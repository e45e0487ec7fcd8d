import base64
import time

import pytest
from callbacks.signing import generate_secret, sign, signature_header
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

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
    # The example of the Standard Webhooks specification.
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"test": 2432232314}'
    assert (
        sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body)
        == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    )


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
