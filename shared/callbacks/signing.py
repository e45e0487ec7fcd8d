"""Standard Webhooks signatures (contract §6). Pure.

INTERFACE FIXED — implementation to be filled in.
"""

from __future__ import annotations

from collections.abc import Sequence


def generate_secret() -> str:
    """A fresh ``whsec_`` + base64(32 random bytes)."""
    raise NotImplementedError


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """``v1,`` + base64(HMAC-SHA256(key, f"{msg_id}.{timestamp}.{body}"))."""
    raise NotImplementedError


def signature_header(secrets: Sequence[str], msg_id: str, timestamp: int, body: bytes) -> str:
    """One signature per active secret, space-separated."""
    raise NotImplementedError
