"""Secrets at rest and on the profile topic, sealed with AES-GCM under the master key.

INTERFACE FIXED — implementation to be filled in.
"""

from __future__ import annotations

PREFIX = "sealed:v1:"


class SecretBox:
    def __init__(self, master_key: bytes) -> None:
        self._key = master_key

    def seal(self, plaintext: str) -> str:
        """``sealed:v1:`` + base64(nonce ‖ ciphertext ‖ tag)."""
        raise NotImplementedError

    def open(self, token: str) -> str:
        """The plaintext; ValueError if the token was not sealed with this key."""
        raise NotImplementedError
