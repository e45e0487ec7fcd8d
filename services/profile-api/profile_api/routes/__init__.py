"""Route modules. Each exposes ``register(app)`` and its OpenAPI piece (``OPENAPI_PATHS``,
optionally ``OPENAPI_MODELS`` and ``OPENAPI_SCHEMAS``).

To add routes: write ``profile_api/routes/<name>.py`` with those names and add the module
to :data:`MODULES` (one line). Handlers get the caller with ``profile_api.auth.account_id``,
raise ``profile_api.problems.Problem`` for errors, and reach the pool, producer and
settings through ``profile_api.keys``.
"""

from __future__ import annotations

from types import ModuleType

from profile_api.routes import (
    accounts,
    channels,
    deliveries,
    profiles,
    recoveries,
    report_summary,
    reports,
    test_calls,
    web,
)

MODULES: tuple[ModuleType, ...] = (
    accounts,
    profiles,
    channels,
    deliveries,
    recoveries,
    reports,
    report_summary,
    test_calls,
    web,
)
