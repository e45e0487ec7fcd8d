"""Secrets at rest and on the profile topic, sealed with AES-GCM under the master keys.

Encryption keys, passwords, client secrets, tokens, credential-like header values and
signing secrets are sealed before they reach PostgreSQL or ``callbacks.profiles``; only
processes holding a master key (the API and the dispatcher) open them. GCM
authenticates, so a token sealed under another key or altered in transit is refused
rather than opened into garbage.

A sealed value is ``sealed:v2:<key id>:`` + base64(nonce ‖ ciphertext ‖ tag). The key id
names the master key that sealed it, so several keys can be held during a rotation: the
first seals, every one opens (``CALLBACKS_MASTER_KEYS``, new key first). The associated
data binds the value to a *context* — the owner's account, profile and field
(``callbacks.models.profiles`` builds it) — so a sealed value copied into another
profile or another field does not open.

Values sealed before key ids existed (``sealed:v1:``, no context) still open under any
held key; ``python -m callbacks reseal`` rewrites them as ``v2`` under the first key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

PREFIX = "sealed:v2:"
LEGACY_PREFIX = "sealed:v1:"
_NONCE_BYTES = 12
_KEY_ID_BYTES = 4


def key_id(master_key: bytes) -> str:
    """A short public name of a master key (hex); it says which key sealed a value and
    reveals nothing usable about the key."""
    return (
        hashlib.sha256(b"callbacks-master-key-id\x00" + master_key).digest()[:_KEY_ID_BYTES].hex()
    )


class SecretBox:
    """Seals under the first master key, opens under any of them (by key id)."""

    def __init__(self, master_keys: bytes | Sequence[bytes]) -> None:
        keys = [master_keys] if isinstance(master_keys, bytes) else list(master_keys)
        if not keys:
            raise ValueError("at least one master key is needed")
        self._aeads: dict[str, AESGCM] = {}
        for key in keys:
            if len(key) not in (16, 24, 32):
                raise ValueError("a master key must be 16, 24 or 32 bytes")
            self._aeads.setdefault(key_id(key), AESGCM(key))
        self.current_key_id = key_id(keys[0])

    def seal(self, plaintext: str, context: str = "") -> str:
        """``sealed:v2:<key id>:`` + base64(nonce ‖ ciphertext ‖ tag), bound to ``context``."""
        nonce = os.urandom(_NONCE_BYTES)
        aead = self._aeads[self.current_key_id]
        sealed = aead.encrypt(nonce, plaintext.encode(), _aad(self.current_key_id, context))
        return f"{PREFIX}{self.current_key_id}:" + base64.b64encode(nonce + sealed).decode("ascii")

    def open(self, token: str, context: str = "") -> str:
        """The plaintext; ValueError if no held key opens it for this ``context``."""
        if token.startswith(LEGACY_PREFIX):
            return self._open_legacy(token[len(LEGACY_PREFIX) :])
        if not token.startswith(PREFIX):
            raise ValueError("not a sealed secret")
        kid, sep, payload = token[len(PREFIX) :].partition(":")
        aead = self._aeads.get(kid)
        if not sep or aead is None:
            raise ValueError("sealed secret does not open with the keys held")
        try:
            raw = base64.b64decode(payload, validate=True)
            plaintext = aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], _aad(kid, context))
        except (binascii.Error, InvalidTag, ValueError) as exc:
            raise ValueError("sealed secret does not open with the keys held") from exc
        return plaintext.decode()

    def _open_legacy(self, payload: str) -> str:
        try:
            raw = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValueError("sealed secret does not open with the keys held") from exc
        for aead in self._aeads.values():
            try:
                plaintext = aead.decrypt(
                    raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], LEGACY_PREFIX.encode()
                )
            except (InvalidTag, ValueError):
                continue
            return plaintext.decode()
        raise ValueError("sealed secret does not open with the keys held")

    def needs_reseal(self, token: str) -> bool:
        """True unless ``token`` is already sealed (v2) under the current key."""
        return not token.startswith(f"{PREFIX}{self.current_key_id}:")

    @staticmethod
    def is_sealed(value: str) -> bool:
        return value.startswith((PREFIX, LEGACY_PREFIX))


def _aad(kid: str, context: str) -> bytes:
    return f"{PREFIX}{kid}\x00{context}".encode()
