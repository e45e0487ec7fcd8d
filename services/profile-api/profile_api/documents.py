"""From request bodies to profile records and back: the rules of POST, PUT and PATCH.

Pure functions over dicts and models (no I/O), so the update semantics are easy to
read in one place:

- read-only fields a client echoes back from a GET (``id``, ``created_at`` ...) are
  ignored, so GET → edit → PUT works;
- a secret sent as ``****`` (the mask every response shows) keeps the stored secret,
  unless the change sends the secrets somewhere else (``url``'s origin or the
  ``token_url`` changes): then every secret must be sent again;
- PATCH merges ``encryption``, ``authentication`` and ``required_options`` key by key
  and replaces every other field (``headers`` and ``query_params`` as a whole);
- the channel of a saved profile cannot change.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from callbacks.models.profiles import (
    MASK,
    ProfileRecord,
    ProfileSpec,
    SigningSecret,
    is_credential_header,
    masked,
)
from callbacks.signing import generate_signing_key
from callbacks.validation import validate_profile
from pydantic import ValidationError

from profile_api.problems import FieldProblem, pydantic_errors, validation_problem

READ_ONLY_FIELDS = frozenset(
    {
        "id",
        "account_id",
        "created_at",
        "updated_at",
        "signing_secret",
        "signing_secrets",
        "disabled_reason",
        "disabled_at",
    }
)
MERGED_FIELDS = ("encryption", "authentication", "required_options")
SECRET_PATHS = (
    ("encryption", "key"),
    ("authentication", "password"),
    ("authentication", "token"),
    ("authentication", "client_secret"),
)
ROTATION_OVERLAP = timedelta(hours=24)


def writable(body: dict[str, Any]) -> dict[str, Any]:
    """The body without the read-only fields a client may echo back."""
    return {k: v for k, v in body.items() if k not in READ_ONLY_FIELDS}


def merge_patch(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """PATCH semantics: nested settings merge key by key; every other field is replaced."""
    merged = dict(base)
    for name, value in patch.items():
        current = merged.get(name)
        if name in MERGED_FIELDS and isinstance(value, dict) and isinstance(current, dict):
            merged[name] = {**current, **value}
        else:
            merged[name] = value
    return merged


def _origin(url: Any) -> tuple[str, str, int | None] | Any:
    """scheme, host and port (defaults filled in) of ``url``; ``url`` itself when it is
    not a URL with a readable origin (then only an identical value counts as the same)."""
    if not isinstance(url, str):
        return url
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        return url
    scheme = parts.scheme.lower()
    default = {"http": 80, "https": 443}.get(scheme)
    return scheme, (parts.hostname or "").lower(), port or default


def _destination_change(body: dict[str, Any], stored: ProfileRecord) -> str | None:
    """Why the secrets would go to a new place, or None when they stay where they were."""
    if _origin(body.get("url")) != _origin(stored.url):
        return "the url's origin (scheme, host, port) changed"
    auth = body.get("authentication")
    token_url = auth.get("token_url") if isinstance(auth, dict) else None
    if token_url and token_url != stored.authentication.token_url:
        return "the token_url changed"
    return None


def keep_masked_secrets(body: dict[str, Any], stored: ProfileRecord | None) -> dict[str, Any]:
    """Replace every secret sent as ``****`` by the stored one (in clear).

    A mask with nothing stored behind it is an error: saving the literal ``****`` as a
    password would silently break deliveries. So is a mask in a change that points the
    profile at another origin or token URL: the stored secrets were given for the old
    destination, and whoever can edit the profile cannot read them, so they must not be
    sent to a host of that editor's choosing.
    """
    out = dict(body)
    errors: list[FieldProblem] = []
    moved = None if stored is None else _destination_change(body, stored)

    def kept(field: str, previous: str | None) -> bool:
        if previous is None:
            message = f"{MASK} keeps a stored secret, but none is stored; send the secret"
        elif moved is not None:
            message = f"{moved}: send this secret again instead of {MASK} (or null to drop it)"
        else:
            return True
        errors.append(FieldProblem(field=field, message=message))
        return False

    for section, name in SECRET_PATHS:
        part = out.get(section)
        if not isinstance(part, dict) or part.get(name) != MASK:
            continue
        previous = getattr(getattr(stored, section), name) if stored is not None else None
        if kept(f"{section}.{name}", previous):
            out[section] = {**part, name: previous}
    headers = out.get("headers")
    if isinstance(headers, dict):
        stored_headers = {} if stored is None else stored.headers
        replaced = dict(headers)
        for name, value in headers.items():
            if value != MASK or not is_credential_header(str(name)):
                continue
            previous = stored_headers.get(name)
            if kept(f"headers.{name}", previous):
                replaced[name] = previous
        out["headers"] = replaced
    if errors:
        raise validation_problem(errors)
    return out


def parse_spec(body: dict[str, Any], *, allow_plain_http: bool) -> ProfileSpec:
    """Type rules (pydantic) first, then the cross-field and template rules; 422 on any.

    ``allow_plain_http`` is ``Settings.allow_plain_http``: off, ``url`` and
    ``token_url`` must be https (production mode)."""
    try:
        spec = ProfileSpec.model_validate(body)
    except ValidationError as exc:
        raise validation_problem(pydantic_errors(exc)) from exc
    problems = [
        FieldProblem(field=e.field, message=e.message)
        for e in validate_profile(spec, allow_plain_http=allow_plain_http)
    ]
    if problems:
        raise validation_problem(problems)
    return spec


def spec_fields(record: ProfileRecord) -> dict[str, Any]:
    """The user-editable part of a record, as JSON-compatible values (PATCH base)."""
    return record.model_dump(mode="json", include=set(ProfileSpec.model_fields))


def new_record(
    spec: ProfileSpec, *, profile_id: str, account: str, now: datetime, signing_secret: str
) -> ProfileRecord:
    return ProfileRecord(
        **spec.model_dump(),
        id=profile_id,
        account_id=account,
        created_at=now,
        updated_at=now,
        signing_secrets=[_generation(signing_secret, now)],
    )


def _generation(signing_secret: str, now: datetime) -> SigningSecret:
    """A new generation of signing keys: the given HMAC secret and a fresh ed25519 key,
    made for every profile whatever its scheme, so a receiver can install the public key
    before the scheme changes."""
    return SigningSecret(secret=signing_secret, secret_key=generate_signing_key(), created_at=now)


def _with_signing_key(record: ProfileRecord) -> ProfileRecord:
    """``record`` whose current generation has an ed25519 key (a profile saved before
    v1a existed gets one on its next change, its HMAC secret unchanged)."""
    chain = record.signing_secrets
    if not chain or chain[0].secret_key is not None:
        return record
    current = chain[0].model_copy(update={"secret_key": generate_signing_key()})
    return record.model_copy(update={"signing_secrets": [current, *chain[1:]]})


def updated_record(stored: ProfileRecord, spec: ProfileSpec, now: datetime) -> ProfileRecord:
    """``stored`` with the user's fields replaced; 422 if the channel would change.

    Re-enabling a profile clears why it was disabled.
    """
    if spec.channel != stored.channel:
        raise validation_problem(
            [
                FieldProblem(
                    field="channel",
                    message=f"the channel of a saved profile cannot change (it is "
                    f"{stored.channel!r}); create a new profile instead",
                )
            ]
        )
    system: dict[str, Any] = {"updated_at": now}
    if spec.enabled and not stored.enabled:
        system.update(disabled_reason=None, disabled_at=None)
    fields = {name: getattr(spec, name) for name in ProfileSpec.model_fields}
    return _with_signing_key(stored.model_copy(update={**fields, **system}))


def rotated(stored: ProfileRecord, new_secret: str, now: datetime) -> ProfileRecord:
    """The new generation first (``new_secret`` and a fresh ed25519 key); the current one
    stays valid for 24 h; older ones drop out."""
    chain = [_generation(new_secret, now)]
    if stored.signing_secrets:
        current = stored.signing_secrets[0]
        chain.append(current.model_copy(update={"expires_at": now + ROTATION_OVERLAP}))
    return stored.model_copy(update={"signing_secrets": chain, "updated_at": now})


def response_body(record: ProfileRecord, signing_secret: str | None = None) -> dict[str, Any]:
    """What the API shows: every secret masked, the signing secret only when just made."""
    body = masked(record).model_dump(mode="json", exclude={"signing_secrets", "account_id"})
    if signing_secret is not None:
        body["signing_secret"] = signing_secret
    return body
