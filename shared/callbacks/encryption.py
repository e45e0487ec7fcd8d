"""Payload encryption (contract §6): AES-GCM and AES-CFB, per value or whole body. Pure.

Layouts are what receivers decrypt with (the catalog documents them): a value is
``base64(iv ‖ ciphertext ‖ tag)``; a body is a JSON envelope with the IV apart. Every
encryption draws a fresh IV from ``os.urandom``: with GCM a repeated IV under one key
breaks confidentiality and authenticity, and CFB leaks the XOR of two plaintexts.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.decrepit.ciphers.modes import CFB
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_BYTES: dict[str, int] = {
    "aes-128-gcm": 16,
    "aes-192-gcm": 24,
    "aes-256-gcm": 32,
    "aes-128-cfb": 16,
    "aes-192-cfb": 24,
    "aes-256-cfb": 32,
}

GCM_IV_BYTES = 12
GCM_TAG_BYTES = 16
CFB_IV_BYTES = 16


def _check(algorithm: str, key: bytes) -> bool:
    """True for GCM, False for CFB; ValueError on an unknown algorithm or a wrong key."""
    size = KEY_BYTES.get(algorithm)
    if size is None:
        raise ValueError(f"unknown algorithm {algorithm!r}")
    if len(key) != size:
        raise ValueError(f"{algorithm} needs a {size}-byte key, got {len(key)} bytes")
    return algorithm.endswith("-gcm")


def _encrypt(algorithm: str, key: bytes, plaintext: bytes) -> tuple[bytes, bytes]:
    """(iv, ciphertext ‖ tag)."""
    if _check(algorithm, key):
        iv = os.urandom(GCM_IV_BYTES)
        return iv, AESGCM(key).encrypt(iv, plaintext, None)
    iv = os.urandom(CFB_IV_BYTES)
    encryptor = Cipher(algorithms.AES(key), CFB(iv)).encryptor()
    return iv, encryptor.update(plaintext) + encryptor.finalize()


def _decrypt(algorithm: str, key: bytes, iv: bytes, data: bytes) -> bytes:
    if _check(algorithm, key):
        if len(iv) != GCM_IV_BYTES or len(data) < GCM_TAG_BYTES:
            raise ValueError("ciphertext too short")
        try:
            return AESGCM(key).decrypt(iv, data, None)
        except InvalidTag as exc:
            raise ValueError("ciphertext does not authenticate under this key") from exc
    if len(iv) != CFB_IV_BYTES:
        raise ValueError("ciphertext too short")
    decryptor = Cipher(algorithms.AES(key), CFB(iv)).decryptor()
    return decryptor.update(data) + decryptor.finalize()


def _b64decode(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("not base64") from exc


def encrypt_value(algorithm: str, key: bytes, plaintext: bytes) -> str:
    """base64(iv ‖ ciphertext ‖ tag) — GCM: 12-byte IV, 16-byte tag; CFB: 16-byte IV."""
    iv, data = _encrypt(algorithm, key, plaintext)
    return base64.b64encode(iv + data).decode("ascii")


def decrypt_value(algorithm: str, key: bytes, token: str) -> bytes:
    """The plaintext of ``encrypt_value``; ValueError if it does not decrypt."""
    raw = _b64decode(token)
    iv_size = GCM_IV_BYTES if _check(algorithm, key) else CFB_IV_BYTES
    return _decrypt(algorithm, key, raw[:iv_size], raw[iv_size:])


def encrypt_body(algorithm: str, key: bytes, body: bytes) -> bytes:
    """The JSON ``{"encrypted": b64(ct‖tag), "iv": b64(iv), "alg": algorithm}``."""
    iv, data = _encrypt(algorithm, key, body)
    return orjson.dumps(
        {
            "encrypted": base64.b64encode(data).decode("ascii"),
            "iv": base64.b64encode(iv).decode("ascii"),
            "alg": algorithm,
        }
    )


def decrypt_body(algorithm: str, key: bytes, envelope: Mapping[str, str]) -> bytes:
    """The plaintext of ``encrypt_body`` (its JSON parsed); ValueError if it does not decrypt."""
    try:
        data, iv = envelope["encrypted"], envelope["iv"]
    except KeyError as exc:
        raise ValueError(f"envelope lacks {exc.args[0]!r}") from exc
    return _decrypt(algorithm, key, _b64decode(iv), _b64decode(data))
