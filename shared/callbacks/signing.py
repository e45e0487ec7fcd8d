"""Standard Webhooks signatures (contract §6, §3b). Pure.

The scheme is Standard Webhooks' so receivers can verify with any of its libraries. The
signed content is ``{id}.{timestamp}.{body}`` and one header carries every signature,
space-separated; a receiver accepts the request if any one verifies:

- ``v1``: HMAC-SHA256 keyed with the bytes behind ``whsec_`` (a shared secret);
- ``v1a``: ed25519 with the key behind ``whsk_`` — base64 of the 64-byte form
  ``seed ‖ public key`` the spec's test vector uses; receivers hold only the public
  key, ``whpk_`` + base64 of its 32 bytes, and cannot sign.

The kind of a key is in its prefix, so a list of active keys (both kinds, during a
rotation old and new) signs in one call.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Sequence
from functools import lru_cache

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

SECRET_PREFIX = "whsec_"  # noqa: S105 - the scheme's marker, not a secret
SIGNING_KEY_PREFIX = "whsk_"
PUBLIC_KEY_PREFIX = "whpk_"
_SEED_BYTES = 32


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str, what: str) -> bytes:
    text += "=" * (-len(text) % 4)  # other Standard Webhooks tools accept unpadded keys
    try:
        return base64.b64decode(text, validate=True)
    except ValueError as exc:
        raise ValueError(f"{what} must be followed by base64") from exc


def generate_secret() -> str:
    """A fresh ``whsec_`` + base64(32 random bytes)."""
    return SECRET_PREFIX + _b64(secrets.token_bytes(32))


def generate_signing_key() -> str:
    """A fresh ed25519 key: ``whsk_`` + base64(seed ‖ public key), 64 bytes."""
    key = Ed25519PrivateKey.generate()
    return SIGNING_KEY_PREFIX + _b64(key.private_bytes_raw() + key.public_key().public_bytes_raw())


@lru_cache(maxsize=4096)
def _hmac_key(secret: str) -> bytes:
    # Decoded once per secret: this runs for every attempt in the dispatcher.
    return _unb64(secret.removeprefix(SECRET_PREFIX), "signing secret 'whsec_'")


@lru_cache(maxsize=4096)
def _ed25519_key(signing_key: str) -> Ed25519PrivateKey:
    raw = _unb64(signing_key.removeprefix(SIGNING_KEY_PREFIX), "signing key 'whsk_'")
    if len(raw) != 2 * _SEED_BYTES:
        raise ValueError("a 'whsk_' key is base64 of 64 bytes: seed and public key")
    key = Ed25519PrivateKey.from_private_bytes(raw[:_SEED_BYTES])
    # A key whose public half is not its seed's would sign what its whpk_ cannot verify.
    if key.public_key().public_bytes_raw() != raw[_SEED_BYTES:]:
        raise ValueError("the public half of the 'whsk_' key does not match its seed")
    return key


def public_key(signing_key: str) -> str:
    """The ``whpk_`` key that verifies what ``signing_key`` (``whsk_``) signs."""
    raw = _ed25519_key(signing_key).public_key().public_bytes_raw()
    return PUBLIC_KEY_PREFIX + _b64(raw)


def sign(key: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """One signature by ``key``'s kind: ``v1,`` + base64(HMAC-SHA256) for ``whsec_``,
    ``v1a,`` + base64(ed25519) for ``whsk_``, over ``f"{msg_id}.{timestamp}.{body}"``."""
    message = f"{msg_id}.{timestamp}.".encode() + body
    if key.startswith(SIGNING_KEY_PREFIX):
        return "v1a," + _b64(_ed25519_key(key).sign(message))
    return "v1," + _b64(hmac.new(_hmac_key(key), message, hashlib.sha256).digest())


def signature_header(keys: Sequence[str], msg_id: str, timestamp: int, body: bytes) -> str:
    """One signature per active key (``whsec_`` or ``whsk_``), space-separated."""
    return " ".join(sign(key, msg_id, timestamp, body) for key in keys)
