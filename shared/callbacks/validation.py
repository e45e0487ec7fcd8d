"""Save-time validation of a profile (contract §3 rules, §4 templates). Pure.

A profile is checked by doing what the dispatcher will do: every template is rendered
with the sample values of the channel's variables through the same code
(``callbacks.request.render_url`` and ``callbacks.templates.render``), so a profile that
saves is one the dispatcher can render. Errors are collected, not raised, so the API
can name every bad field in one problem response.
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
from callbacks.models.profiles import ProfileSpec
from callbacks.request import RESERVED_HEADERS, render_url
from callbacks.templates import Context, Template, TemplateError, compile_template, render


@dataclass(frozen=True)
class FieldError:
    field: str  # dotted path into the body: "body", "headers.X-Id", "events", "encryption.key"
    message: str  # user-facing; for unknown variables it lists the valid ones


_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")  # RFC 9110 header field name
_DTD = re.compile(r"<!(DOCTYPE|ENTITY)", re.IGNORECASE)
_BODY_CONTEXTS: dict[str, Context] = {"json": "json", "xml": "xml", "html": "html", "text": "text"}


def validate_profile(spec: ProfileSpec) -> list[FieldError]:
    """Every rule that spans fields or needs the catalog: events of the channel, methods
    per channel, body rules per method, body_type with a body, encryption key length,
    authentication fields per type, required_options variables, max_age, and every
    template rendered with the channel's sample values (JSON must parse, XML must be
    well-formed, unknown variables listed with the valid ones). Empty list = valid."""
    errors: list[FieldError] = []
    _check_events(spec, errors)
    _check_method_and_body(spec, errors)
    _check_encryption(spec, errors)
    _check_authentication(spec, errors)
    _check_headers(spec, errors)
    _check_options(spec, errors)
    _check_templates(spec, errors)
    return errors


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
        if value and ("\r" in value or "\n" in value):
            errors.append(FieldError(f"authentication.{name}", "must not contain CR or LF"))
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
    if spec.max_age is not None:
        try:
            seconds = parse_duration(spec.max_age)
        except ValueError as exc:
            errors.append(FieldError("max_age", str(exc)))
        else:
            if seconds <= 0:
                errors.append(FieldError("max_age", "max_age must be greater than zero"))


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
