"""``{{name}}`` templates with type-aware escaping (contract §4). Pure, no I/O.

INTERFACE FIXED — implementation to be filled in.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

# Where a rendered value lands decides how it is escaped.
Context = Literal["json", "xml", "html", "text", "url_path", "url_query", "header", "form"]


class TemplateError(ValueError):
    """A template that cannot be parsed or rendered; ``message`` is user-facing."""


class HeaderInjection(TemplateError):
    """A header value whose rendering holds CR or LF."""


@dataclass(frozen=True)
class Template:
    source: str

    @property
    def variable_names(self) -> frozenset[str]:
        """Root names of every placeholder (``a`` for ``{{a.b[0]}}``)."""
        raise NotImplementedError


def compile_template(source: str) -> Template:
    """Parse once (cached); raise TemplateError on an unclosed or empty placeholder."""
    raise NotImplementedError


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
    raise NotImplementedError
