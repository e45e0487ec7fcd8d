"""Secrets at rest and on the profile topic, sealed with AES-GCM under the master key.

Encryption keys, passwords, client secrets and signing secrets are sealed before they
reach PostgreSQL or ``callbacks.profiles``; only processes holding the master key (the
API and the dispatcher) open them. GCM authenticates, so a token sealed under another
key or altered in transit is refused rather than opened into garbage.
"""

from __future__ import annotations

import base64
import binascii
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

PREFIX = "sealed:v1:"
_NONCE_BYTES = 12


class SecretBox:
    def __init__(self, master_key: bytes) -> None:
        if len(master_key) not in (16, 24, 32):
            raise ValueError("the master key must be 16, 24 or 32 bytes")
        self._key = master_key
        self._aead = AESGCM(master_key)

    def seal(self, plaintext: str) -> str:
        """``sealed:v1:`` + base64(nonce ‖ ciphertext ‖ tag)."""
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), PREFIX.encode())
        return PREFIX + base64.b64encode(nonce + sealed).decode("ascii")

    def open(self, token: str) -> str:
        """The plaintext; ValueError if the token was not sealed with this key."""
        if not token.startswith(PREFIX):
            raise ValueError("not a sealed secret")
        try:
            raw = base64.b64decode(token[len(PREFIX) :], validate=True)
            plaintext = self._aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], PREFIX.encode())
        except (binascii.Error, InvalidTag, ValueError) as exc:
            raise ValueError("sealed secret does not open with this key") from exc
        return plaintext.decode()

    @staticmethod
    def is_sealed(value: str) -> bool:
        return value.startswith(PREFIX)
