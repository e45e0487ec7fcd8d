"""Standard Webhooks signatures (contract §6). Pure.

The scheme is Standard Webhooks' so receivers can verify with any of its libraries:
HMAC-SHA256 over ``{id}.{timestamp}.{body}`` keyed with the bytes behind ``whsec_``.
During a secret rotation every active secret signs, space-separated, and a receiver
accepts the request if any one verifies.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Sequence
from functools import lru_cache

SECRET_PREFIX = "whsec_"  # noqa: S105 - the scheme's marker, not a secret


def generate_secret() -> str:
    """A fresh ``whsec_`` + base64(32 random bytes)."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


@lru_cache(maxsize=4096)
def _key(secret: str) -> bytes:
    # Decoded once per secret: this runs for every attempt in the dispatcher.
    text = secret.removeprefix(SECRET_PREFIX)
    text += "=" * (-len(text) % 4)  # other Standard Webhooks tools accept unpadded secrets
    try:
        return base64.b64decode(text, validate=True)
    except ValueError as exc:
        raise ValueError("signing secret must be 'whsec_' followed by base64") from exc


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """``v1,`` + base64(HMAC-SHA256(key, f"{msg_id}.{timestamp}.{body}"))."""
    message = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key(secret), message, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def signature_header(secrets: Sequence[str], msg_id: str, timestamp: int, body: bytes) -> str:
    """One signature per active secret, space-separated."""
    return " ".join(sign(secret, msg_id, timestamp, body) for secret in secrets)
