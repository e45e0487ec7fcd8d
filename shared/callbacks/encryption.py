"""Payload encryption (contract §6): AES-GCM and AES-CFB, per value or whole body. Pure.

INTERFACE FIXED — implementation to be filled in.
"""

from __future__ import annotations

from collections.abc import Mapping

KEY_BYTES: dict[str, int] = {
    "aes-128-gcm": 16,
    "aes-192-gcm": 24,
    "aes-256-gcm": 32,
    "aes-128-cfb": 16,
    "aes-192-cfb": 24,
    "aes-256-cfb": 32,
}


def encrypt_value(algorithm: str, key: bytes, plaintext: bytes) -> str:
    """base64(iv ‖ ciphertext ‖ tag) — GCM: 12-byte IV, 16-byte tag; CFB: 16-byte IV."""
    raise NotImplementedError


def decrypt_value(algorithm: str, key: bytes, token: str) -> bytes:
    raise NotImplementedError


def encrypt_body(algorithm: str, key: bytes, body: bytes) -> bytes:
    """The JSON ``{"encrypted": b64(ct‖tag), "iv": b64(iv), "alg": algorithm}``."""
    raise NotImplementedError


def decrypt_body(algorithm: str, key: bytes, envelope: Mapping[str, str]) -> bytes:
    raise NotImplementedError
