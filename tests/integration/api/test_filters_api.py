"""The ``filters`` profile field through the API: saved, shown and patched as written."""

from __future__ import annotations

from tests.integration.api.helpers import Api, sms_profile

PROFILES = "/v1/callback-profiles"


async def test_filters_are_saved_shown_and_replaced_by_patch(api: Api) -> None:
    filters = [
        {"variable": "status", "in": ["failed", "undelivered"]},
        {"variable": "error_code", "exists": True},
    ]
    created = await api.call("POST", PROFILES, json=sms_profile(filters=filters))
    assert created.status == 201, created.body
    assert created.body["filters"] == filters
    shown = await api.call("GET", f"{PROFILES}/{created.body['id']}")
    assert shown.body["filters"] == filters

    narrowed = [{"variable": "status", "equals": "failed"}]
    patched = await api.call(
        "PATCH", f"{PROFILES}/{created.body['id']}", json={"filters": narrowed}
    )
    assert patched.status == 200, patched.body
    assert patched.body["filters"] == narrowed
    cleared = await api.call("PATCH", f"{PROFILES}/{created.body['id']}", json={"filters": []})
    assert cleared.body["filters"] == []
