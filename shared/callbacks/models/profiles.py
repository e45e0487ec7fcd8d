"""Callback profiles (contract §3, §3a): what a user edits and what the topic carries.

``ProfileSpec`` is the part a user writes (API body). ``ProfileRecord`` adds the
system's fields and is the value of ``callbacks.profiles`` (secrets sealed under the
master key) and the row document in PostgreSQL (sealed too). Inside a process that
delivers, ``open_secrets`` gives a record with secrets in clear; it never leaves the
process.

Type-level rules (enumerations, lengths, URL shape) live here; rules that span fields
or need the catalog and the template renderer live in ``callbacks.validation``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)

Channel = Literal["default", "sms", "email", "whatsapp", "chatbot"]
Method = Literal["GET", "POST", "PUT", "DELETE"]
BodyType = Literal["json", "xml", "html", "text", "form"]
Algorithm = Literal[
    "aes-128-gcm", "aes-192-gcm", "aes-256-gcm", "aes-128-cfb", "aes-192-cfb", "aes-256-cfb"
]
AuthType = Literal["none", "basic", "bearer", "oauth2_client_credentials"]
RetryOn = Literal["all_failures", "transient_only"]
DisabledReason = Literal["endpoint_gone", "failing"]
SigningScheme = Literal["v1", "v1a", "both"]
Ordering = Literal["none", "fifo", "latest"]

MASK = "****"
# A header whose name says it carries a credential (``X-Api-Key``, ``X-Auth-Token``,
# ``X-Webhook-Secret``, ``Authorization``): its value is a secret like a password.
CREDENTIAL_HEADER = re.compile(r"key|token|secret|auth|password", re.IGNORECASE)
# C0 controls, DEL and C1 controls: never in text that may reach an email or HTTP header.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def is_credential_header(name: str) -> bool:
    return CREDENTIAL_HEADER.search(name) is not None


def refuse_control_characters(value: str) -> str:
    """``value`` unchanged; ValueError if it holds a control character (a pydantic check)."""
    if CONTROL_CHARACTERS.search(value):
        raise ValueError("must not contain control characters (CR, LF, TAB, ...)")
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Encryption(_Strict):
    enabled: bool = False
    algorithm: Algorithm = "aes-256-gcm"
    scope: Literal["values", "body"] = "values"
    key: str | None = None  # base64 of 16, 24 or 32 bytes (must match the algorithm)


class Authentication(_Strict):
    type: AuthType = "none"
    username: str | None = None
    password: str | None = None
    token: str | None = None
    token_url: str | None = None
    client_id: str | None = None
    client_secret: str | None = None
    scope: str | None = None


class Signing(_Strict):
    """Which Standard Webhooks signatures a callback carries (contract §3b): ``v1``
    (HMAC-SHA256 with the ``whsec_`` secret), ``v1a`` (ed25519, verified with the
    ``whpk_`` public key) or ``both`` in one ``webhook-signature`` header."""

    scheme: SigningScheme = "v1"


class Batch(_Strict):
    """Many callbacks in one request (contract §3b): a JSON array of up to
    ``max_events`` rendered bodies, sent when full or ``max_wait`` after its first."""

    max_events: int = Field(ge=1, le=1000)
    max_wait: str = Field(max_length=32)  # duration, e.g. "2s"


class RequiredOptions(_Strict):
    enabled: bool = False
    variables: list[str] = Field(default_factory=list)


class Filter(_Strict):
    """One condition on a variable of the event (contract §3b ``filters``): exactly one
    of ``in``, ``not_in`` (lists of strings), ``equals`` (a string) or ``exists``.
    Evaluated by ``callbacks.filters``; bounds and the catalog check live in
    ``callbacks.validation``."""

    # ``in`` is a Python keyword: the attribute is ``in_``, the JSON name ``in``.
    model_config = ConfigDict(
        extra="forbid", validate_by_name=True, validate_by_alias=True, serialize_by_alias=True
    )

    variable: str
    in_: list[str] | None = Field(default=None, alias="in")
    not_in: list[str] | None = None
    equals: str | None = None
    exists: bool | None = None

    @model_validator(mode="after")
    def _one_operator(self) -> Filter:
        given = [v for v in (self.in_, self.not_in, self.equals, self.exists) if v is not None]
        if len(given) != 1:
            raise ValueError("a filter has exactly one of in, not_in, equals, exists")
        return self

    @model_serializer(mode="wrap")
    def _without_unset_operators(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """Only the variable and its one operator, as the user wrote it."""
        dumped: dict[str, Any] = handler(self)
        return {k: v for k, v in dumped.items() if v is not None}


class ProfileSpec(_Strict):
    """The fields a user sets (POST/PUT body; PATCH merges into it)."""

    title: str = Field(min_length=1, max_length=200)
    channel: Channel = "default"
    events: list[str] = Field(default_factory=list)
    method: Method = "POST"
    url: str = Field(max_length=2048)
    headers: dict[str, str] = Field(default_factory=dict)
    query_params: dict[str, str] = Field(default_factory=dict)
    body_type: BodyType | None = None
    body: str | None = Field(default=None, max_length=256 * 1024)
    form_fields: dict[str, str] | None = None
    encryption: Encryption = Field(default_factory=Encryption)
    authentication: Authentication = Field(default_factory=Authentication)
    required_options: RequiredOptions = Field(default_factory=RequiredOptions)
    # Delivered only when every filter holds (empty: every event); beside
    # required_options, the other rule that skips an event before delivery.
    filters: list[Filter] = Field(
        default_factory=list,
        description="Deliver only events for which every filter holds (empty: every event)",
    )
    enabled: bool = True
    retry_on: RetryOn = "all_failures"
    max_age: str | None = None  # duration, e.g. "2h"
    signing: Signing = Field(default_factory=Signing)
    # Ordering and batching (contract §3b; docs/ordering.md).
    ordering: Ordering = Field(
        default="none",
        description="none; fifo: callbacks of one message id arrive in event order; latest:"
        " a status older than one already delivered for the message ends stale",
    )
    batch: Batch | None = Field(
        default=None,
        description="one request carries a JSON array of up to max_events bodies"
        " (body_type json only), sent when full or after max_wait",
    )

    @field_validator("title")
    @classmethod
    def _title_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("title must not be blank")
        return refuse_control_characters(value)

    @field_validator("url")
    @classmethod
    def _absolute_http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("url must be an absolute http(s) URL")
        return value


class SigningSecret(BaseModel):
    """One generation of signing keys. ``signing_secrets[0]`` is the current one; after a
    rotation the previous one stays, with ``expires_at`` 24 h ahead, so receivers can
    switch over. The HMAC secret and the ed25519 key rotate together."""

    secret: str  # "whsec_" + base64 of the key bytes (sealed at rest and on the topic)
    # "whsk_" + base64(seed ‖ public key), sealed like ``secret``; None in a generation
    # made before v1a existed (the API adds one on the profile's next change).
    secret_key: str | None = None
    created_at: datetime
    expires_at: datetime | None = None

    def active(self, now: datetime) -> bool:
        return self.expires_at is None or self.expires_at > now


class ProfileRecord(ProfileSpec):
    """A saved profile: the value of ``callbacks.profiles`` and the stored document."""

    model_config = ConfigDict(extra="ignore")

    id: str
    account_id: str
    created_at: datetime
    updated_at: datetime
    signing_secrets: list[SigningSecret] = Field(default_factory=list)
    disabled_reason: DisabledReason | None = None
    disabled_at: datetime | None = None

    def active_signing_secrets(self, now: datetime) -> list[str]:
        """Keys to sign with now, by ``signing.scheme``: the ``whsec_`` secrets (v1), the
        ``whsk_`` keys (v1a) or both, of the current generation and, during rotation,
        the previous one."""
        active = [s for s in self.signing_secrets if s.active(now)]
        scheme = self.signing.scheme
        keys = [s.secret for s in active] if scheme in ("v1", "both") else []
        if scheme in ("v1a", "both"):
            keys.extend(s.secret_key for s in active if s.secret_key is not None)
        return keys


# ``fn(value, context)``: the context names the owner and field of a secret
# ("<account>/<profile>/authentication.password"); ``SecretBox`` binds the sealed value
# to it, so a sealed value cannot be moved to another profile or field.
SecretFn = Callable[[str, str], str]


def _map_secrets(record: ProfileRecord, fn: SecretFn) -> ProfileRecord:
    owner = f"{record.account_id}/{record.id}"
    enc = record.encryption
    auth = record.authentication

    def apply(field: str, value: str) -> str:
        return fn(value, f"{owner}/{field}")

    return record.model_copy(
        update={
            "encryption": enc.model_copy(
                update={"key": apply("encryption.key", enc.key) if enc.key else enc.key}
            ),
            "authentication": auth.model_copy(
                update={
                    name: apply(f"authentication.{name}", value) if value else value
                    for name in ("password", "token", "client_secret")
                    if (value := getattr(auth, name)) is not None
                }
            ),
            "headers": {
                name: apply(f"headers.{name.lower()}", value)
                if value and is_credential_header(name)
                else value
                for name, value in record.headers.items()
            },
            "signing_secrets": [
                s.model_copy(
                    update={
                        "secret": apply(f"signing_secrets.{i}", s.secret),
                        "secret_key": (
                            apply(f"signing_secrets.{i}.secret_key", s.secret_key)
                            if s.secret_key
                            else s.secret_key
                        ),
                    }
                )
                for i, s in enumerate(record.signing_secrets)
            ],
        }
    )


def seal_secrets(record: ProfileRecord, seal: SecretFn) -> ProfileRecord:
    """Every secret field passed through ``seal`` (``SecretBox.seal``), bound to its field."""
    return _map_secrets(record, seal)


def open_secrets(record: ProfileRecord, open_: SecretFn) -> ProfileRecord:
    """Every secret field passed through ``open_`` (``SecretBox.open``)."""
    return _map_secrets(record, open_)


def secret_values(record: ProfileRecord) -> list[str]:
    """Every secret value of ``record`` as it stands (sealed or not), e.g. to see which
    key sealed them."""
    values: list[str] = []

    def collect(value: str, _context: str) -> str:
        values.append(value)
        return value

    _map_secrets(record, collect)
    return values


def masked(record: ProfileRecord) -> ProfileRecord:
    """The record as the API shows it: every secret replaced by ``****``."""
    return _map_secrets(record, lambda _value, _context: MASK)
