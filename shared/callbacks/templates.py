"""``{{name}}`` templates with type-aware escaping (contract §4). Pure, no I/O.

A template is parsed once (``compile_template`` is cached) into literal text and
placeholders. Rendering then only looks values up and escapes them for where they land,
so the dispatcher's hot path does no parsing. Whether a placeholder of a JSON body sits
inside a string literal is decided at parse time by scanning the template's literal
text, because that decides between string escaping and a JSON literal.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal
from urllib.parse import quote

import orjson

# Where a rendered value lands decides how it is escaped.
Context = Literal["json", "xml", "html", "text", "url_path", "url_query", "header", "form"]

# One step of a placeholder path: a key into an object or an index into a list.
PathStep = str | int

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_PATH = re.compile(rf"{_NAME}(?:\.{_NAME}|\[\d+\])*")
_STEP = re.compile(rf"\.?({_NAME})|\[(\d+)\]")


class TemplateError(ValueError):
    """A template that cannot be parsed or rendered; ``message`` is user-facing."""

    @property
    def message(self) -> str:
        return str(self)


class HeaderInjection(TemplateError):
    """A header value whose rendering holds CR or LF."""


@dataclass(frozen=True, slots=True)
class Placeholder:
    """One ``{{ path }}``; ``in_json_string`` is true when it sits inside a JSON string
    literal of the template's text (only meaningful for the ``json`` context)."""

    expression: str
    path: tuple[PathStep, ...]
    in_json_string: bool
    # The name when the path is a bare name (the common case): one dict lookup.
    simple: str | None = None

    @property
    def root(self) -> str:
        return str(self.path[0])


@dataclass(frozen=True)
class Template:
    source: str
    parts: tuple[str | Placeholder, ...] = field(init=False, repr=False, compare=False)
    # The source itself when it holds no placeholder: rendering is then a no-op.
    static: str | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        parts = _parse(self.source)
        object.__setattr__(self, "parts", parts)
        has_placeholder = any(isinstance(p, Placeholder) for p in parts)
        object.__setattr__(self, "static", None if has_placeholder else self.source)

    @property
    def variable_names(self) -> frozenset[str]:
        """Root names of every placeholder (``a`` for ``{{a.b[0]}}``)."""
        return frozenset(p.root for p in self.placeholders)

    @property
    def placeholders(self) -> tuple[Placeholder, ...]:
        return tuple(p for p in self.parts if isinstance(p, Placeholder))


@lru_cache(maxsize=8192)
def compile_template(source: str) -> Template:
    """Parse once (cached); raise TemplateError on an unclosed or empty placeholder."""
    return Template(source)


def _parse(source: str) -> tuple[str | Placeholder, ...]:
    parts: list[str | Placeholder] = []
    in_string = False  # JSON quote state of the literal text seen so far
    pos = 0
    while True:
        start = source.find("{{", pos)
        literal = source[pos:] if start < 0 else source[pos:start]
        if literal:
            parts.append(literal)
            in_string = _json_quote_state(literal, in_string)
        if start < 0:
            return tuple(parts)
        end = source.find("}}", start + 2)
        if end < 0:
            raise TemplateError(f"unclosed placeholder at position {start}: missing '}}}}'")
        expression = source[start + 2 : end].strip()
        if not expression:
            raise TemplateError(f"empty placeholder at position {start}")
        if _PATH.fullmatch(expression) is None:
            raise TemplateError(
                f"invalid placeholder {{{{{expression}}}}}: use a name, name.field or name[0]"
            )
        path = _split_path(expression)
        simple = expression if len(path) == 1 else None
        parts.append(Placeholder(expression, path, in_string, simple))
        pos = end + 2


def _split_path(expression: str) -> tuple[PathStep, ...]:
    steps: list[PathStep] = []
    for match in _STEP.finditer(expression):
        name, index = match.groups()
        steps.append(name if name is not None else int(index))
    return tuple(steps)


def _json_quote_state(text: str, in_string: bool) -> bool:
    """The quote state after ``text``: a ``"`` toggles it unless escaped by a backslash."""
    escaped = False
    for char in text:
        if escaped:
            escaped = False
        elif in_string and char == "\\":
            escaped = True
        elif char == '"':
            in_string = not in_string
    return in_string


def _lookup(variables: Mapping[str, Any], path: tuple[PathStep, ...]) -> Any:
    value: Any = variables
    for step in path:
        if isinstance(step, int):
            if not isinstance(value, list | tuple) or step >= len(value):
                return None
            value = value[step]
        else:
            if not isinstance(value, Mapping):
                return None
            value = value.get(step)
            if value is None:
                return None
    return value


def value_text(value: Any) -> str:
    """A value as text: strings verbatim, booleans ``true``/``false``, numbers as JSON
    writes them, objects and lists as compact JSON, missing as ``""``."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float | dict | list | tuple):
        return _json(value)
    return str(value)


def _json(value: Any) -> str:
    try:
        return orjson.dumps(value, default=str).decode()
    except (TypeError, orjson.JSONEncodeError) as exc:
        raise TemplateError(f"value cannot be written as JSON: {exc}") from exc


def _json_string_content(text: str) -> str:
    return orjson.dumps(text).decode()[1:-1]


def _escape_xml(text: str) -> str:
    return html.escape(text, quote=True)


def _escape_url(text: str) -> str:
    return quote(text, safe="")


def _verbatim(text: str) -> str:
    return text


_ESCAPES: dict[str, Callable[[str], str]] = {
    "xml": _escape_xml,
    "html": _escape_xml,
    "url_path": _escape_url,
    "url_query": _escape_url,
    "header": _verbatim,
    "text": _verbatim,
    "form": _verbatim,
}


def render(
    template: Template | str,
    variables: Mapping[str, Any],
    context: Context,
    *,
    transform: Callable[[str], str] | None = None,
) -> str:
    """Render with each value escaped for ``context``.

    ``transform`` (per-value encryption) is applied to a value's text before escaping;
    with it, every inserted value becomes a string. A missing value renders as ``null``
    standing alone in JSON and as ``""`` elsewhere. Objects and lists standing alone in
    JSON are inserted as JSON; elsewhere as their compact JSON text, escaped.
    """
    compiled = template if isinstance(template, Template) else compile_template(template)
    rendered = compiled.static
    if rendered is None:
        escape = _ESCAPES.get(context)  # None for json
        out: list[str] = []
        append = out.append
        for part in compiled.parts:
            if isinstance(part, str):
                append(part)
                continue
            name = part.simple
            value = variables.get(name) if name is not None else _lookup(variables, part.path)
            if value is not None and transform is not None:
                value = transform(value_text(value))
            if escape is not None:
                append(escape(value_text(value)))
            elif part.in_json_string:
                append(_json_string_content(value_text(value)))
            else:
                append(_json(value))
        rendered = "".join(out)
    if context == "header" and ("\r" in rendered or "\n" in rendered):
        raise HeaderInjection("header value contains CR or LF")
    return rendered
