"""Verify and decrypt callbacks from Callback Profiles, in Python.

Copy this file into your service; it needs the ``cryptography`` package (AES and
ed25519; HMAC and base64 are in the standard library).

    from callback_receiver import verify, decrypt_value, decrypt_body, VerificationError

    verify(raw_body, request.headers, secrets=["whsec_…"], public_keys=["whpk_…"])
    status = decrypt_value("aes-256-gcm", key, payload["status"]).decode()  # scope "values"
    plain = decrypt_body("aes-256-gcm", key, json.loads(raw_body))          # scope "body"

Verify the raw bytes you received, before parsing them, and before decrypting.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Iterable, Mapping

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.decrepit.ciphers.modes import CFB
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

TOLERANCE_S = 5 * 60  # how far webhook-timestamp may be from your clock
KEY_BYTES = {"128": 16, "192": 24, "256": 32}


class VerificationError(ValueError):
    """The callback is not authentic, or too old or too new to accept."""


class DecryptionError(ValueError):
    """The value or body does not decrypt under this key and algorithm."""


def _b64(text: str, error: type[ValueError]) -> bytes:
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise error("not base64") from None


def _header(headers: Mapping[str, str], name: str) -> str:
    # HTTP header names are case-insensitive; frameworks hand over various spellings.
    for key, value in headers.items():
        if key.lower() == name:
            return value
    raise VerificationError(f"missing {name} header")


def verify(
    body: bytes,
    headers: Mapping[str, str],
    *,
    secrets: Iterable[str] = (),
    public_keys: Iterable[str] = (),
    tolerance_s: int = TOLERANCE_S,
    now: float | None = None,
) -> None:
    """Raise VerificationError unless one signature in ``webhook-signature`` verifies.

    ``secrets`` are ``whsec_`` signing secrets (``v1``, HMAC-SHA256), ``public_keys``
    ``whpk_`` keys (``v1a``, ed25519); pass the old and new ones during a rotation. The
    header may hold several signatures, space-separated; unknown versions are skipped.
    """
    msg_id = _header(headers, "webhook-id")
    stamp = _header(headers, "webhook-timestamp")
    signatures = _header(headers, "webhook-signature")
    if not stamp.isascii() or not stamp.isdigit():
        raise VerificationError("webhook-timestamp is not a number of seconds")
    current = time.time() if now is None else now
    if abs(current - int(stamp)) > tolerance_s:
        raise VerificationError("webhook-timestamp is outside the tolerance")
    signed = f"{msg_id}.{stamp}.".encode() + body
    hmac_keys = [_b64(s.removeprefix("whsec_"), VerificationError) for s in secrets]
    ed_keys = [
        Ed25519PublicKey.from_public_bytes(_b64(k.removeprefix("whpk_"), VerificationError))
        for k in public_keys
    ]
    for entry in signatures.split(" "):
        version, _, value = entry.partition(",")
        try:
            signature = _b64(value, VerificationError)
        except VerificationError:
            continue
        if version == "v1":
            for key in hmac_keys:
                if hmac.compare_digest(hmac.new(key, signed, hashlib.sha256).digest(), signature):
                    return
        elif version == "v1a":
            for public in ed_keys:
                try:
                    public.verify(signature, signed)
                except InvalidSignature:
                    continue
                return
    raise VerificationError("no signature verifies")


def _cipher(algorithm: str, key: bytes) -> str:
    """The mode ("gcm" or "cfb") of ``aes-<bits>-<mode>``, after checking the key size."""
    parts = algorithm.split("-")
    if len(parts) != 3 or parts[0] != "aes" or parts[2] not in ("gcm", "cfb"):
        raise DecryptionError(f"unknown algorithm {algorithm!r}")
    if KEY_BYTES.get(parts[1]) != len(key):
        raise DecryptionError(f"{algorithm} needs a {parts[1]}-bit key")
    return parts[2]


def _decrypt(algorithm: str, key: bytes, iv: bytes, data: bytes) -> bytes:
    if _cipher(algorithm, key) == "gcm":
        # 12-byte IV; data is ciphertext ‖ 16-byte tag, checked before anything is returned.
        if len(iv) != 12 or len(data) < 16:
            raise DecryptionError("too short")
        try:
            return AESGCM(key).decrypt(iv, data, None)
        except InvalidTag:
            raise DecryptionError("does not authenticate under this key") from None
    # CFB (128-bit segments), 16-byte IV, no tag: it cannot tell a wrong key or an altered
    # value. The signature is what proves the callback is ours.
    if len(iv) != 16:
        raise DecryptionError("too short")
    decryptor = Cipher(algorithms.AES(key), CFB(iv)).decryptor()
    return decryptor.update(data) + decryptor.finalize()


def decrypt_value(algorithm: str, key: bytes, token: str) -> bytes:
    """One value of scope ``values``: ``token`` is base64(iv ‖ ciphertext ‖ tag)."""
    raw = _b64(token, DecryptionError)
    iv_bytes = 12 if _cipher(algorithm, key) == "gcm" else 16
    return _decrypt(algorithm, key, raw[:iv_bytes], raw[iv_bytes:])


def decrypt_body(algorithm: str, key: bytes, envelope: Mapping[str, object]) -> bytes:
    """The body of scope ``body``: the parsed JSON ``{"encrypted", "iv", "alg"}``.

    ``algorithm`` is the one you configured; an envelope naming another is refused
    (its ``alg`` is not authenticated, so never let it choose)."""
    encrypted, iv, alg = envelope.get("encrypted"), envelope.get("iv"), envelope.get("alg")
    if not isinstance(encrypted, str) or not isinstance(iv, str):
        raise DecryptionError("not an encrypted body")
    if alg != algorithm:
        raise DecryptionError(f"body encrypted with {alg!r}, expected {algorithm!r}")
    return _decrypt(algorithm, key, _b64(iv, DecryptionError), _b64(encrypted, DecryptionError))
