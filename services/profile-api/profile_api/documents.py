"""From request bodies to profile records and back: the rules of POST, PUT and PATCH.

Pure functions over dicts and models (no I/O), so the update semantics are easy to
read in one place:

- read-only fields a client echoes back from a GET (``id``, ``created_at`` ...) are
  ignored, so GET → edit → PUT works;
- a secret sent as ``****`` (the mask every response shows) keeps the stored secret;
- PATCH merges ``encryption``, ``authentication`` and ``required_options`` key by key
  and replaces every other field (``headers`` and ``query_params`` as a whole);
- the channel of a saved profile cannot change.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from callbacks.models.profiles import (
    MASK,
    ProfileRecord,
    ProfileSpec,
    SigningSecret,
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


def keep_masked_secrets(body: dict[str, Any], stored: ProfileRecord | None) -> dict[str, Any]:
    """Replace every secret sent as ``****`` by the stored one (in clear).

    A mask with nothing stored behind it is an error: saving the literal ``****`` as a
    password would silently break deliveries.
    """
    out = dict(body)
    errors: list[FieldProblem] = []
    for section, name in SECRET_PATHS:
        part = out.get(section)
        if not isinstance(part, dict) or part.get(name) != MASK:
            continue
        previous = getattr(getattr(stored, section), name) if stored is not None else None
        if previous is None:
            errors.append(
                FieldProblem(
                    field=f"{section}.{name}",
                    message=f"{MASK} keeps a stored secret, but none is stored; send the secret",
                )
            )
            continue
        out[section] = {**part, name: previous}
    if errors:
        raise validation_problem(errors)
    return out


def parse_spec(body: dict[str, Any]) -> ProfileSpec:
    """Type rules (pydantic) first, then the cross-field and template rules; 422 on any."""
    try:
        spec = ProfileSpec.model_validate(body)
    except ValidationError as exc:
        raise validation_problem(pydantic_errors(exc)) from exc
    problems = [FieldProblem(field=e.field, message=e.message) for e in validate_profile(spec)]
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
