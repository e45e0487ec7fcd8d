import base64
import json

import pytest
from callbacks.encryption import (
    KEY_BYTES,
    decrypt_body,
    decrypt_value,
    encrypt_body,
    encrypt_value,
)
from cryptography.hazmat.decrepit.ciphers.modes import CFB
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

PLAINTEXTS = [b"", b"delivered", "नमस्ते 👍".encode(), b'{"a": "<&>"}', bytes(range(256)) * 4]


@pytest.mark.parametrize("algorithm", sorted(KEY_BYTES))
@pytest.mark.parametrize("plaintext", PLAINTEXTS)
def test_value_round_trip(algorithm: str, plaintext: bytes) -> None:
    key = bytes(range(KEY_BYTES[algorithm]))
    token = encrypt_value(algorithm, key, plaintext)
    assert decrypt_value(algorithm, key, token) == plaintext
    assert encrypt_value(algorithm, key, plaintext) != token  # a fresh IV each time


@pytest.mark.parametrize("algorithm", sorted(KEY_BYTES))
def test_body_round_trip(algorithm: str) -> None:
    key = bytes(range(KEY_BYTES[algorithm]))
    body = '{"to": "+919876543210", "text": "नमस्ते"}'.encode()
    envelope = json.loads(encrypt_body(algorithm, key, body))
    assert set(envelope) == {"encrypted", "iv", "alg"}
    assert envelope["alg"] == algorithm
    assert decrypt_body(algorithm, key, envelope) == body


def test_value_layout_decrypts_with_only_the_key_gcm() -> None:
    key = b"k" * 32
    raw = base64.b64decode(encrypt_value("aes-256-gcm", key, b"delivered"))
    assert len(raw) == 12 + len(b"delivered") + 16
    assert AESGCM(key).decrypt(raw[:12], raw[12:], None) == b"delivered"


def test_value_layout_decrypts_with_only_the_key_cfb() -> None:
    key = b"k" * 16
    raw = base64.b64decode(encrypt_value("aes-128-cfb", key, b"delivered"))
    assert len(raw) == 16 + len(b"delivered")
    decryptor = Cipher(algorithms.AES(key), CFB(raw[:16])).decryptor()
    assert decryptor.update(raw[16:]) + decryptor.finalize() == b"delivered"


def test_body_layout_decrypts_with_only_the_key() -> None:
    key = b"k" * 24
    envelope = json.loads(encrypt_body("aes-192-gcm", key, b"<xml/>"))
    iv = base64.b64decode(envelope["iv"])
    assert len(iv) == 12
    assert AESGCM(key).decrypt(iv, base64.b64decode(envelope["encrypted"]), None) == b"<xml/>"


@pytest.mark.parametrize(
    ("algorithm", "key"),
    [("aes-256-gcm", b"k" * 16), ("aes-128-cfb", b"k" * 32), ("aes-512-gcm", b"k" * 32)],
)
def test_wrong_key_size_or_algorithm(algorithm: str, key: bytes) -> None:
    with pytest.raises(ValueError, match=r"key|algorithm"):
        encrypt_value(algorithm, key, b"x")


def test_tampered_or_foreign_tokens_are_refused() -> None:
    key = b"k" * 32
    token = encrypt_value("aes-256-gcm", key, b"secret")
    with pytest.raises(ValueError, match="authenticate"):
        decrypt_value("aes-256-gcm", b"x" * 32, token)
    with pytest.raises(ValueError, match="base64"):
        decrypt_value("aes-256-gcm", key, "not base64!")
    with pytest.raises(ValueError, match="short"):
        decrypt_value("aes-256-gcm", key, base64.b64encode(b"abc").decode())
    with pytest.raises(ValueError, match="lacks"):
        decrypt_body("aes-256-gcm", key, {"iv": "AAAA"})
