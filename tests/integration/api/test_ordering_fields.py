"""The profile fields ``ordering`` and ``batch`` over REST and in /openapi.json (§3b)."""

from __future__ import annotations

from tests.integration.api.helpers import Api, sms_profile

PROFILES = "/v1/callback-profiles"


async def test_ordering_and_batch_are_saved_and_returned(api: Api) -> None:
    batch = {"max_events": 100, "max_wait": "2s"}
    reply = await api.call("POST", PROFILES, json=sms_profile(ordering="latest", batch=batch))
    assert reply.status == 201, reply.body
    assert (reply.body["ordering"], reply.body["batch"]) == ("latest", batch)
    path = f"{PROFILES}/{reply.body['id']}"
    patched = await api.call("PATCH", path, json={"ordering": "fifo", "batch": None})
    assert patched.status == 200, patched.body
    assert (patched.body["ordering"], patched.body["batch"]) == ("fifo", None)
    default = await api.call("POST", PROFILES, json=sms_profile())
    assert (default.body["ordering"], default.body["batch"]) == ("none", None)


async def test_bad_ordering_and_batch_are_422_naming_the_field(api: Api) -> None:
    cases = [
        ({"ordering": "sorted"}, "ordering"),
        ({"batch": {"max_events": 0, "max_wait": "1s"}}, "batch.max_events"),
        ({"batch": {"max_events": 5, "max_wait": "later"}}, "batch.max_wait"),
        (
            {
                "batch": {"max_events": 5, "max_wait": "1s"},
                "body_type": "xml",
                "body": "<s>{{status}}</s>",
            },
            "batch",
        ),
    ]
    for overrides, field in cases:
        reply = await api.call("POST", PROFILES, json=sms_profile(**overrides))
        assert reply.status == 422, (overrides, reply.body)
        assert field in [e["field"] for e in reply.body["errors"]], (overrides, reply.body)


async def test_openapi_documents_ordering_and_batch(api: Api) -> None:
    schemas = (await api.call("GET", "/openapi.json")).body["components"]["schemas"]
    spec = schemas["ProfileSpec"]["properties"]
    assert spec["ordering"]["enum"] == ["none", "fifo", "latest"]
    assert "batch" in spec
    batch = schemas["Batch"]["properties"]
    assert (batch["max_events"]["minimum"], batch["max_events"]["maximum"]) == (1, 1000)
