"""/openapi.json matches the routes, and no generated request gets a 5xx (schemathesis)."""

from __future__ import annotations

import asyncio
from typing import Any

from callbacks.settings import Settings
from profile_api.app import create_app
from schemathesis import GenerationMode

from tests.integration.api.helpers import Api

# Examples per operation and generation mode; ~20 operations x 2 modes. Enough to find
# the classic 5xx (NUL bytes, huge numbers, odd dates, wrong types) in a few seconds.
EXAMPLES = 20


async def test_document_covers_every_route(api: Api, api_settings: Settings) -> None:
    reply = await api.call("GET", "/openapi.json")
    assert reply.status == 200
    document = reply.body
    assert document["openapi"].startswith("3.1")
    assert document["components"]["securitySchemes"]["apiKey"] == {
        "type": "apiKey",
        "in": "header",
        "name": "api-key",
    }
    documented = {
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method != "parameters"
    }
    # The router of an app built the same way (HEAD is aiohttp's automatic twin of GET).
    # The web page (/, /static/...) is HTML for browsers, not part of the API.
    routed = {
        (route.method, route.resource.canonical)
        for route in create_app(api_settings).router.routes()
        if route.method != "HEAD"
        and route.resource is not None
        and route.resource.canonical != "/"
        and not route.resource.canonical.startswith("/static/")
    }
    assert documented == routed
    problem = document["components"]["schemas"]["ProblemBody"]
    assert set(problem["required"]) == {"type", "title", "status", "detail"}


def _fuzz(base: str, headers: dict[str, str]) -> list[str]:
    """Every operation, positive and negative data; the failures as readable lines."""
    import schemathesis
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis.errors import Unsatisfiable
    from schemathesis.checks import not_a_server_error
    from schemathesis.core.result import Err

    schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
    failures: list[str] = []
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            failures.append(f"invalid operation in the document: {result.err()}")
            continue
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                database=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            def check(case: schemathesis.Case[Any]) -> None:
                response = case.call(base_url=base, headers=headers, timeout=10)
                case.validate_response(response, checks=[not_a_server_error])

            try:
                check()
            except Unsatisfiable:
                continue  # negative data for an operation without inputs: nothing to send
            except Exception as exc:  # collected, reported together below
                failures.append(f"{operation.label} [{mode.value}]: {exc}")
    return failures


async def test_no_generated_request_gets_a_server_error(api: Api, server: str) -> None:
    assert api.key is not None
    headers = {"api-key": api.key, "Authorization": "Bearer test-admin-token"}
    # schemathesis is synchronous; the app serves from this loop meanwhile.
    failures = await asyncio.to_thread(_fuzz, server, headers)
    assert not failures, "\n\n".join(failures)
