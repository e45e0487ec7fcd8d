"""The pure delivery-request builder (contract §4, §6): profile + variables → HTTP request.

``build_request`` is the one builder: the dispatcher's attempts and the API's ``test``
calls both call it, so they send byte-identical requests for the same input. No I/O;
randomness only in the IVs.

It runs once per attempt, so everything that depends only on the profile's text (parsed
templates, the split URL, the decoded key) is cached by that text, and no pydantic
validation happens here.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache, partial
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from callbacks import __version__
from callbacks.encryption import KEY_BYTES, encrypt_body, encrypt_value
from callbacks.http1 import valid_field_value
from callbacks.models.profiles import ProfileRecord
from callbacks.signing import signature_header
from callbacks.templates import (
    Context,
    HeaderInjection,
    Template,
    TemplateError,
    compile_template,
    render,
)

USER_AGENT = f"callback-profiles/{__version__}"

# Set by the builder on every attempt; a profile's own header of these names is ignored
# (validation refuses them at save time).
RESERVED_HEADERS = frozenset(
    {
        "user-agent",
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
        "host",
        "content-length",
        "transfer-encoding",
        "connection",
    }
)

CONTENT_TYPES: dict[str, str] = {
    "json": "application/json",
    "xml": "application/xml; charset=utf-8",
    "html": "text/html; charset=utf-8",
    "text": "text/plain; charset=utf-8",
    "form": "application/x-www-form-urlencoded; charset=utf-8",
}

_BODYLESS = frozenset({"GET", "DELETE"})
_BODY_CONTEXTS: dict[str, Context] = {"json": "json", "xml": "xml", "html": "html", "text": "text"}


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


@lru_cache(maxsize=4096)
def url_templates(url: str) -> tuple[str, Template, Template]:
    """``scheme://host``, the path template and the query template of a profile URL.

    Variables may stand in the path and query only: a variable host would let an event
    choose where a callback goes. The fragment is dropped (it is never sent)."""
    parts = urlsplit(url)
    if "{{" in parts.netloc or "{{" in parts.scheme:
        raise TemplateError("variables are allowed only in the path and query of the url")
    return (
        f"{parts.scheme}://{parts.netloc}",
        compile_template(parts.path),
        compile_template(parts.query),
    )


def render_url(
    url: str,
    variables: Mapping[str, Any],
    query_params: Mapping[str, str],
    *,
    transform: Callable[[str], str] | None = None,
) -> str:
    """The URL with its path and query rendered and ``query_params`` appended."""
    base, path, query = url_templates(url)
    rendered = base + render(path, variables, "url_path", transform=transform)
    pairs = [render(query, variables, "url_query", transform=transform)] if query.source else []
    # A parameter's whole value (its literal text too) is data, so it is rendered
    # verbatim and then percent-encoded as one; the URL's own query is the user's text.
    for name, value in query_params.items():
        text = render(value, variables, "text", transform=transform)
        pairs.append(f"{quote(name, safe='')}={quote(text, safe='')}")
    return f"{rendered}?{'&'.join(pairs)}" if pairs else rendered


@lru_cache(maxsize=1024)
def _decode_key(key: str) -> bytes:
    try:
        return base64.b64decode(key, validate=True)
    except (binascii.Error, ValueError):
        raise RequestBuildError("invalid_encryption_key") from None


def _encrypt_text(algorithm: str, key: bytes, text: str) -> str:
    return encrypt_value(algorithm, key, text.encode())


def build_request(
    profile: ProfileRecord,
    variables: Mapping[str, Any],
    *,
    delivery_id: str,
    timestamp: int,
    auth_header: str | None,
    signing_secrets: Sequence[str] | None = None,
) -> DeliveryRequest:
    """Render ``profile`` (secrets in clear) for one attempt stamped ``timestamp``.

    Adds User-Agent, Content-Type for the body type, webhook-id, webhook-timestamp,
    webhook-signature (over the bytes sent) and ``auth_header`` (the Authorization
    value, computed by the caller: Basic/Bearer here via ``static_auth_header``, OAuth2
    from the caller's token cache). Signed with ``signing_secrets``, by default the
    profile's secrets active at ``timestamp``; raises ``RequestBuildError``.
    """
    if signing_secrets is None:
        signing_secrets = profile.active_signing_secrets(datetime.fromtimestamp(timestamp, UTC))
    encryption = profile.encryption
    key = b""
    transform: Callable[[str], str] | None = None
    if encryption.enabled:
        if not encryption.key:
            raise RequestBuildError("missing_encryption_key")
        key = _decode_key(encryption.key)
        if len(key) != KEY_BYTES[encryption.algorithm]:
            raise RequestBuildError("invalid_encryption_key")
        if encryption.scope == "values":
            transform = partial(_encrypt_text, encryption.algorithm, key)
    try:
        url = render_url(profile.url, variables, profile.query_params, transform=transform)
        body, body_type = _render_body(profile, variables, transform)
        headers: list[tuple[str, str]] = []
        content_type_set = False
        for name, template in profile.headers.items():
            lowered = name.lower()
            if lowered in RESERVED_HEADERS or (
                auth_header is not None and lowered == "authorization"
            ):
                continue
            try:
                value = render(template, variables, "header", transform=transform)
            except HeaderInjection:
                raise RequestBuildError(f"header_injection:{name}") from None
            if not valid_field_value(value):  # a control character from the event's data
                raise RequestBuildError(f"header_injection:{name}")
            if lowered == "content-type":
                if body is None or (encryption.enabled and encryption.scope == "body"):
                    continue
                content_type_set = True
            headers.append((name, value))
    except TemplateError as exc:
        raise RequestBuildError(f"template_error:{exc}") from None

    if body is not None:
        if encryption.enabled and encryption.scope == "body":
            body = encrypt_body(encryption.algorithm, key, body)
            headers.append(("Content-Type", "application/json"))
        elif not content_type_set and body_type is not None:
            headers.append(("Content-Type", CONTENT_TYPES[body_type]))
    headers.append(("User-Agent", USER_AGENT))
    headers.append(("webhook-id", delivery_id))
    headers.append(("webhook-timestamp", str(timestamp)))
    if signing_secrets:
        signature = signature_header(signing_secrets, delivery_id, timestamp, body or b"")
        headers.append(("webhook-signature", signature))
    if auth_header is not None:
        headers.append(("Authorization", auth_header))
    return DeliveryRequest(profile.method, url, tuple(headers), body)


def _render_body(
    profile: ProfileRecord,
    variables: Mapping[str, Any],
    transform: Callable[[str], str] | None,
) -> tuple[bytes | None, str | None]:
    """The rendered body and its type; None for GET/DELETE and for a profile without one."""
    if profile.method in _BODYLESS:
        return None, None
    body_type = profile.body_type
    if body_type == "form":
        fields = profile.form_fields or {}
        pairs = [
            (name, render(value, variables, "form", transform=transform))
            for name, value in fields.items()
        ]
        return urlencode(pairs).encode(), body_type
    if profile.body is None:
        return None, None
    context = _BODY_CONTEXTS[body_type or "text"]
    rendered = render(profile.body, variables, context, transform=transform)
    return rendered.encode(), body_type


def static_auth_header(profile: ProfileRecord) -> str | None:
    """``Basic …`` or ``Bearer …`` for those auth types; None for none/OAuth2."""
    auth = profile.authentication
    if auth.type == "basic":
        credentials = f"{auth.username or ''}:{auth.password or ''}".encode()
        return "Basic " + base64.b64encode(credentials).decode("ascii")
    if auth.type == "bearer":
        return f"Bearer {auth.token or ''}"
    return None
