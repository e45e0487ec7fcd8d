"""The pure delivery-request builder (contract §4, §6): profile + variables → HTTP request.

The API's ``test`` calls and the dispatcher both call ``build_request``, so they send
byte-identical requests for the same input. No I/O; randomness only in the IVs.

INTERFACE FIXED — implementation to be filled in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from callbacks import __version__
from callbacks.models.profiles import ProfileRecord

USER_AGENT = f"callback-profiles/{__version__}"


class RequestBuildError(Exception):
    """The profile cannot be rendered for this event (e.g. CR/LF in a header value).

    ``reason`` is short and stable (used in outcomes and dead letters)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class DeliveryRequest:
    method: str
    url: str  # fully rendered, query parameters included, percent-encoded
    headers: tuple[tuple[str, str], ...]  # in sending order
    body: bytes | None


def build_request(
    profile: ProfileRecord,
    variables: Mapping[str, Any],
    *,
    delivery_id: str,
    timestamp: int,
    signing_secrets: Sequence[str],
    auth_header: str | None,
) -> DeliveryRequest:
    """Render ``profile`` (secrets in clear) for one attempt.

    Adds User-Agent, Content-Type for the body type, webhook-id, webhook-timestamp,
    webhook-signature (over the bytes sent) and ``auth_header`` (the Authorization
    value, computed by the caller: Basic/Bearer here via ``static_auth_header``, OAuth2
    from the caller's token cache).
    """
    raise NotImplementedError


def static_auth_header(profile: ProfileRecord) -> str | None:
    """``Basic …`` or ``Bearer …`` for those auth types; None for none/OAuth2."""
    raise NotImplementedError
