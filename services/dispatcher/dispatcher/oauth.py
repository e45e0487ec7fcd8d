"""OAuth2 client-credentials tokens, cached per client until shortly before they expire.

Why a cache: fetching a token per callback would double the calls to the customer and
hit their token endpoint's rate limits. A token is dropped after the endpoint answers
401 (revoked or rotated early), and concurrent callbacks share one token request.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from callbacks.models.profiles import ProfileRecord
from callbacks.sender import Sender, TokenError, client_credentials_token

__all__ = ["TokenCache", "TokenError"]

EXPIRY_MARGIN_S = 30.0

_Key = tuple[str, str, str, str]


@dataclass(frozen=True)
class _Token:
    value: str
    expires_at: float


class TokenCache:
    """Tokens per (token URL, client, secret, scope); one request at a time per client."""

    def __init__(self, sender: Sender, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._sender = sender
        self._tokens: dict[_Key, _Token] = {}
        self._pending: dict[_Key, asyncio.Future[_Token]] = {}
        self._clock = clock

    @staticmethod
    def _key(profile: ProfileRecord) -> _Key:
        auth = profile.authentication
        return (
            auth.token_url or "",
            auth.client_id or "",
            auth.client_secret or "",
            auth.scope or "",
        )

    async def header(self, profile: ProfileRecord) -> str:
        """``Bearer <access token>`` for the profile's client; raises TokenError."""
        key = self._key(profile)
        token = self._tokens.get(key)
        if token is not None and token.expires_at > self._clock():
            return f"Bearer {token.value}"
        pending = self._pending.get(key)
        if pending is None:
            pending = asyncio.get_running_loop().create_future()
            self._pending[key] = pending
            try:
                fresh = await self._fetch(key)
            except asyncio.CancelledError:
                pending.cancel()
                raise
            except Exception as exc:
                pending.set_exception(exc)
                pending.exception()  # mark retrieved: there may be no other waiter
                raise
            finally:
                del self._pending[key]
            self._tokens[key] = fresh
            pending.set_result(fresh)
            return f"Bearer {fresh.value}"
        return f"Bearer {(await asyncio.shield(pending)).value}"

    def invalidate(self, profile: ProfileRecord) -> None:
        self._tokens.pop(self._key(profile), None)

    async def _fetch(self, key: _Key) -> _Token:
        token_url, client_id, client_secret, scope = key
        value, lifetime = await client_credentials_token(
            self._sender,
            token_url=token_url,
            client_id=client_id,
            client_secret=client_secret,
            scope=scope or None,
        )
        return _Token(value, self._clock() + max(lifetime - EXPIRY_MARGIN_S, 0.0))
