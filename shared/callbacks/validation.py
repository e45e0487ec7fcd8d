"""Save-time validation of a profile (contract §3 rules, §4 templates). Pure.

A profile is checked by doing what the dispatcher will do: every template is rendered
with the sample values of the channel's variables through the same code
(``callbacks.request.render_url`` and ``callbacks.templates.render``), so a profile that
saves is one the dispatcher can render. Errors are collected, not raised, so the API
can name every bad field in one problem response.

Sizes are bounded here too (the ``MAX_*`` limits below, documented in the README's
"Security" section): a profile that saves is one whose sealed record always fits one
message on ``callbacks.profiles``, and whose request stays an ordinary HTTP request.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit
from xml.etree import ElementTree

from callbacks.catalog import CHANNELS, sample_values, variables_for
from callbacks.durations import parse_duration
from callbacks.encryption import KEY_BYTES
from callbacks.models.profiles import CONTROL_CHARACTERS, ProfileSpec
from callbacks.request import RESERVED_HEADERS, render_url
from callbacks.templates import Context, Template, TemplateError, compile_template, render


@dataclass(frozen=True)
class FieldError:
    field: str  # dotted path into the body: "body", "headers.X-Id", "events", "encryption.key"
    message: str  # user-facing; for unknown variables it lists the valid ones


# Limits of a profile (README "Security"). Characters, not bytes; the body's 256 KiB
# cap and the title's 200 characters are type rules of ``ProfileSpec``.
MAX_SECRET_CHARS = 4096  # password, token, client_secret, encryption key
MAX_TEXT_CHARS = 1024  # username, client_id, scope
MAX_URL_CHARS = 2048  # url (a type rule too), token_url
MAX_HEADERS = 50
MAX_HEADER_NAME_CHARS = 256
MAX_HEADER_VALUE_CHARS = 4096  # credential-like headers too
MAX_QUERY_PARAMS = 50
MAX_QUERY_NAME_CHARS = 256
MAX_QUERY_VALUE_CHARS = 2048
MAX_FORM_FIELDS = 100
MAX_FORM_NAME_CHARS = 256
MAX_FORM_VALUE_CHARS = 4096
MAX_REQUIRED_VARIABLES = 100
MAX_FILTERS = 20
MAX_FILTER_VARIABLE_CHARS = 256
MAX_FILTER_VALUES = 100  # values of one in / not_in list
MAX_FILTER_VALUE_CHARS = 1024  # one value of in / not_in, or equals
# The whole profile as JSON: with every field at its maximum the sealed record still
# fits the broker's default 1 MiB message (sealing adds about a third to secrets).
MAX_PROFILE_BYTES = 512 * 1024

_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")  # RFC 9110 header field name
_DTD = re.compile(r"<!(DOCTYPE|ENTITY)", re.IGNORECASE)
_BODY_CONTEXTS: dict[str, Context] = {"json": "json", "xml": "xml", "html": "html", "text": "text"}


def validate_profile(spec: ProfileSpec, *, allow_plain_http: bool = False) -> list[FieldError]:
    """Every rule that spans fields or needs the catalog: size limits, events of the
    channel, methods per channel, body rules per method, body_type with a body,
    encryption key length, authentication fields per type, required_options variables,
    filter variables (of the channel's catalog) and value bounds, max_age, https for
    ``url`` and ``token_url`` unless ``allow_plain_http``, and every template rendered
    with the channel's sample values (JSON must parse, XML must be well-formed, unknown
    variables listed with the valid ones). Empty list = valid.

    A profile over a size limit is not rendered: its other errors may be missing."""
    errors: list[FieldError] = []
    _check_limits(spec, errors)
    if errors:
        return errors
    if not allow_plain_http:
        _check_https(spec, errors)
    _check_events(spec, errors)
    _check_method_and_body(spec, errors)
    _check_encryption(spec, errors)
    _check_authentication(spec, errors)
    _check_headers(spec, errors)
    _check_options(spec, errors)
    _check_templates(spec, errors)
    return errors


def _too_long(field: str, value: str | None, limit: int, errors: list[FieldError]) -> None:
    if value is not None and len(value) > limit:
        errors.append(FieldError(field, f"at most {limit} characters (this one has {len(value)})"))


def _check_map(
    field: str,
    items: Mapping[str, str],
    limits: tuple[int, int, int],
    errors: list[FieldError],
) -> None:
    """At most ``count`` entries, names and values within their lengths."""
    count, name_chars, value_chars = limits
    if len(items) > count:
        errors.append(FieldError(field, f"at most {count} entries (this one has {len(items)})"))
        return
    for name, value in items.items():
        if len(name) > name_chars:
            errors.append(FieldError(field, f"a name is at most {name_chars} characters"))
            continue
        _too_long(f"{field}.{name}", value, value_chars, errors)


def _check_limits(spec: ProfileSpec, errors: list[FieldError]) -> None:
    auth = spec.authentication
    for name in ("password", "token", "client_secret"):
        _too_long(f"authentication.{name}", getattr(auth, name), MAX_SECRET_CHARS, errors)
    for name in ("username", "client_id", "scope"):
        _too_long(f"authentication.{name}", getattr(auth, name), MAX_TEXT_CHARS, errors)
    _too_long("authentication.token_url", auth.token_url, MAX_URL_CHARS, errors)
    _too_long("encryption.key", spec.encryption.key, MAX_SECRET_CHARS, errors)
    _check_map(
        "headers",
        spec.headers,
        (MAX_HEADERS, MAX_HEADER_NAME_CHARS, MAX_HEADER_VALUE_CHARS),
        errors,
    )
    _check_map(
        "query_params",
        spec.query_params,
        (MAX_QUERY_PARAMS, MAX_QUERY_NAME_CHARS, MAX_QUERY_VALUE_CHARS),
        errors,
    )
    _check_map(
        "form_fields",
        spec.form_fields or {},
        (MAX_FORM_FIELDS, MAX_FORM_NAME_CHARS, MAX_FORM_VALUE_CHARS),
        errors,
    )
    variables = spec.required_options.variables
    if len(variables) > MAX_REQUIRED_VARIABLES:
        errors.append(
            FieldError("required_options.variables", f"at most {MAX_REQUIRED_VARIABLES} variables")
        )
    _check_filter_limits(spec, errors)
    if not errors:
        size = len(spec.model_dump_json())
        if size > MAX_PROFILE_BYTES:
            errors.append(
                FieldError(
                    "body", f"the profile is {size} bytes as JSON; at most {MAX_PROFILE_BYTES}"
                )
            )


def _check_filter_limits(spec: ProfileSpec, errors: list[FieldError]) -> None:
    if len(spec.filters) > MAX_FILTERS:
        errors.append(FieldError("filters", f"at most {MAX_FILTERS} filters"))
        return
    for index, rule in enumerate(spec.filters):
        _too_long(f"filters.{index}.variable", rule.variable, MAX_FILTER_VARIABLE_CHARS, errors)
        for name, values in (("in", rule.in_), ("not_in", rule.not_in)):
            if values is None:
                continue
            field = f"filters.{index}.{name}"
            if not values:
                errors.append(FieldError(field, "list at least one value"))
            elif len(values) > MAX_FILTER_VALUES:
                errors.append(FieldError(field, f"at most {MAX_FILTER_VALUES} values"))
            elif any(len(v) > MAX_FILTER_VALUE_CHARS for v in values):
                errors.append(
                    FieldError(field, f"a value is at most {MAX_FILTER_VALUE_CHARS} characters")
                )
        _too_long(f"filters.{index}.equals", rule.equals, MAX_FILTER_VALUE_CHARS, errors)


def _check_https(spec: ProfileSpec, errors: list[FieldError]) -> None:
    """Production mode: callbacks and token requests go over TLS only."""
    if urlsplit(spec.url).scheme != "https":
        errors.append(FieldError("url", "must be an https URL"))
    auth = spec.authentication
    if (
        auth.type == "oauth2_client_credentials"
        and auth.token_url
        and urlsplit(auth.token_url).scheme != "https"
    ):
        errors.append(FieldError("authentication.token_url", "must be an https URL"))


def _check_events(spec: ProfileSpec, errors: list[FieldError]) -> None:
    channel = CHANNELS[spec.channel]
    if spec.channel == "default":
        if spec.events:
            errors.append(
                FieldError("events", "the default channel receives every event; leave events empty")
            )
        return
    if not spec.events:
        errors.append(
            FieldError(
                "events",
                f"choose at least one event of {spec.channel}: {', '.join(channel.events)}",
            )
        )
    for name in spec.events:
        if name not in channel.events:
            errors.append(
                FieldError(
                    "events",
                    f"{name!r} is not an event of {spec.channel}; "
                    f"valid events: {', '.join(channel.events)}",
                )
            )
    if len(set(spec.events)) != len(spec.events):
        errors.append(FieldError("events", "an event is listed twice"))


def _check_method_and_body(spec: ProfileSpec, errors: list[FieldError]) -> None:
    methods = CHANNELS[spec.channel].methods
    if spec.method not in methods:
        errors.append(
            FieldError(
                "method",
                f"{spec.method} is not allowed on {spec.channel}; use {', '.join(methods)}",
            )
        )
    has_body = spec.body is not None and spec.body != ""
    has_form = spec.form_fields is not None
    if spec.method in ("GET", "DELETE"):
        if has_body:
            errors.append(FieldError("body", f"a {spec.method} request has no body"))
        if has_form:
            errors.append(FieldError("form_fields", f"a {spec.method} request has no body"))
        return
    if (has_body or has_form) and spec.body_type is None:
        errors.append(FieldError("body_type", "body_type is required with a body"))
    if spec.body_type == "form":
        if has_body:
            errors.append(FieldError("body", "with body_type form, use form_fields, not body"))
        if not has_form:
            errors.append(FieldError("form_fields", "form_fields are required with body_type form"))
    elif has_form:
        errors.append(FieldError("form_fields", "form_fields need body_type form"))
    if spec.method == "PUT" and spec.body_type not in (None, "json"):
        errors.append(FieldError("body_type", "a PUT request has a JSON body"))


def _check_encryption(spec: ProfileSpec, errors: list[FieldError]) -> None:
    encryption = spec.encryption
    if not encryption.enabled:
        return
    size = KEY_BYTES[encryption.algorithm]
    if not encryption.key:
        errors.append(FieldError("encryption.key", "a key is required when encryption is enabled"))
        return
    try:
        key = base64.b64decode(encryption.key, validate=True)
    except (binascii.Error, ValueError):
        errors.append(FieldError("encryption.key", "the key must be base64"))
        return
    if len(key) != size:
        errors.append(
            FieldError(
                "encryption.key",
                f"{encryption.algorithm} needs a {size}-byte key; this one has {len(key)} bytes",
            )
        )


def _check_authentication(spec: ProfileSpec, errors: list[FieldError]) -> None:
    auth = spec.authentication
    required = {
        "none": (),
        "basic": ("username", "password"),
        "bearer": ("token",),
        "oauth2_client_credentials": ("token_url", "client_id", "client_secret"),
    }[auth.type]
    for name in required:
        if not getattr(auth, name):
            errors.append(FieldError(f"authentication.{name}", f"required for {auth.type}"))
    for name in ("username", "password", "token", "client_id", "client_secret", "scope"):
        value = getattr(auth, name)
        if value and CONTROL_CHARACTERS.search(value):
            errors.append(
                FieldError(f"authentication.{name}", "must not contain CR, LF or other controls")
            )
    if auth.type == "basic" and auth.username and ":" in auth.username:
        errors.append(FieldError("authentication.username", "must not contain ':'"))
    if auth.type == "oauth2_client_credentials" and auth.token_url:
        parts = urlsplit(auth.token_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            errors.append(FieldError("authentication.token_url", "must be an absolute http(s) URL"))


def _check_headers(spec: ProfileSpec, errors: list[FieldError]) -> None:
    for name in spec.headers:
        field = f"headers.{name}"
        if not _TOKEN.match(name):
            errors.append(FieldError(field, "not a valid header name"))
        elif name.lower() in RESERVED_HEADERS:
            errors.append(FieldError(field, "this header is set by the platform"))
        elif name.lower() == "authorization" and spec.authentication.type != "none":
            errors.append(
                FieldError(field, "authentication sets the Authorization header; remove one")
            )


def _check_options(spec: ProfileSpec, errors: list[FieldError]) -> None:
    options = spec.required_options
    if options.enabled:
        known = variables_for(spec.channel, spec.events)
        if not options.variables:
            errors.append(
                FieldError("required_options.variables", "list at least one required variable")
            )
        for name in options.variables:
            if name not in known:
                errors.append(
                    FieldError("required_options.variables", _unknown_message(name, known))
                )
    if spec.filters:
        known = variables_for(spec.channel, spec.events)
        for index, rule in enumerate(spec.filters):
            if rule.variable not in known:
                errors.append(
                    FieldError(f"filters.{index}.variable", _unknown_message(rule.variable, known))
                )
    if spec.max_age is not None:
        try:
            seconds = parse_duration(spec.max_age)
        except ValueError as exc:
            errors.append(FieldError("max_age", str(exc)))
        else:
            if seconds <= 0:
                errors.append(FieldError("max_age", "max_age must be greater than zero"))
    _check_batch(spec, errors)


# A batch waits at most this long for more events: its members' offsets stay uncommitted
# (and in flight) meanwhile.
MAX_BATCH_WAIT_S = 60.0


def _check_batch(spec: ProfileSpec, errors: list[FieldError]) -> None:
    batch = spec.batch
    if batch is None:
        return
    if spec.body_type != "json" or spec.method in ("GET", "DELETE"):
        errors.append(FieldError("batch", "batch needs body_type json and a method with a body"))
    try:
        seconds = parse_duration(batch.max_wait)
    except ValueError as exc:
        errors.append(FieldError("batch.max_wait", str(exc)))
        return
    if not 0 < seconds <= MAX_BATCH_WAIT_S:
        errors.append(
            FieldError("batch.max_wait", f"max_wait must be > 0 and at most {MAX_BATCH_WAIT_S:g}s")
        )


def _unknown_message(name: str, known: Mapping[str, Any]) -> str:
    return f"unknown variable {name!r}; valid variables: {', '.join(sorted(known))}"


def _check_templates(spec: ProfileSpec, errors: list[FieldError]) -> None:
    known = variables_for(spec.channel, spec.events)
    samples = sample_values(spec.channel, spec.events)

    def check(field: str, source: str, context: Context | None) -> str | None:
        """Compile, check the variables, render (``None`` context: the URL); the rendered
        text, or None after recording an error."""
        try:
            template: Template = compile_template(source)
            unknown = sorted(template.variable_names - known.keys())
            if unknown:
                errors.extend(FieldError(field, _unknown_message(name, known)) for name in unknown)
                return None
            if context is None:
                return render_url(source, samples, {})
            return render(template, samples, context)
        except TemplateError as exc:
            errors.append(FieldError(field, str(exc)))
            return None

    check("url", spec.url, None)
    for name, value in spec.query_params.items():
        if not name:
            errors.append(FieldError("query_params", "a query parameter needs a name"))
        check(f"query_params.{name}", value, "url_query")
    for name, value in spec.headers.items():
        check(f"headers.{name}", value, "header")
    for name, value in (spec.form_fields or {}).items():
        check(f"form_fields.{name}", value, "form")
    if spec.body and spec.method not in ("GET", "DELETE") and spec.body_type != "form":
        context = _BODY_CONTEXTS.get(spec.body_type or "text", "text")
        rendered = check("body", spec.body, context)
        if rendered is not None:
            message = _body_problem(context, rendered)
            if message is not None:
                errors.append(FieldError("body", message))


def _body_problem(context: Context, rendered: str) -> str | None:
    """Why the rendered body is not a document of its type, or None."""
    if context == "json":
        try:
            json.loads(rendered)
        except ValueError as exc:
            return f"not valid JSON after rendering with sample values: {exc}"
    elif context == "xml":
        if _DTD.search(rendered):
            return "XML bodies may not declare a DTD or entities"
        try:
            ElementTree.fromstring(rendered)  # noqa: S314 - our own text, DTDs refused above
        except ElementTree.ParseError as exc:
            return f"not well-formed XML after rendering with sample values: {exc}"
    return None
