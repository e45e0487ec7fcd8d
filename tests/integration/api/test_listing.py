"""Listing profiles (contract §3 "Listing"): filters, newest first, cursor pagination."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest

from tests.integration.api.helpers import Api, sms_profile

PROFILES = "/v1/callback-profiles"

EMAIL: dict[str, Any] = {
    "channel": "email",
    "events": ["email.send"],
}
GET: dict[str, Any] = {"method": "GET", "body": None, "body_type": None}

# title, overrides, created_at
ROWS: list[tuple[str, dict[str, Any], datetime]] = [
    ("Alpha 100%", {}, datetime(2026, 1, 1, 10, 0, tzinfo=UTC)),
    ("alpha_beta", GET, datetime(2026, 1, 2, 0, 0, tzinfo=UTC)),
    ("Gamma", EMAIL, datetime(2026, 1, 2, 23, 59, 59, tzinfo=UTC)),
    ("GAMMA two", {**EMAIL, **GET}, datetime(2026, 1, 3, 12, 0, tzinfo=UTC)),
    ("delta", {}, datetime(2026, 1, 5, 8, 30, tzinfo=UTC)),
]


async def backdate(database_url: str, profile_id: str, when: datetime) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            """UPDATE callback_profiles
               SET created_at = $2,
                   document = jsonb_set(document, '{created_at}', to_jsonb($3::text))
               WHERE id = $1""",
            uuid.UUID(profile_id),
            when,
            when.isoformat(),
        )
    finally:
        await conn.close()


@pytest.fixture
async def listed(api: Api, migrated_database: str) -> dict[str, str]:
    """The ROWS created for this test's account; title → id."""
    ids: dict[str, str] = {}
    for title, overrides, when in ROWS:
        reply = await api.call("POST", PROFILES, json=sms_profile(title=title, **overrides))
        assert reply.status == 201, reply.body
        ids[title] = reply.body["id"]
        await backdate(migrated_database, reply.body["id"], when)
    return ids


async def titles(api: Api, **params: str) -> list[str]:
    reply = await api.call("GET", PROFILES, params=params)
    assert reply.status == 200, reply.body
    return [item["title"] for item in reply.body["items"]]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, ["delta", "GAMMA two", "Gamma", "alpha_beta", "Alpha 100%"]),
        ({"title": "alpha"}, ["alpha_beta", "Alpha 100%"]),
        ({"title": "AMMA T"}, ["GAMMA two"]),
        ({"title": "%"}, ["Alpha 100%"]),
        ({"title": "_"}, ["alpha_beta"]),
        ({"title": "nothing"}, []),
        ({"method": "GET"}, ["GAMMA two", "alpha_beta"]),
        ({"channel": "email"}, ["GAMMA two", "Gamma"]),
        ({"channel": "email", "method": "POST"}, ["Gamma"]),
        ({"created_from": "2026-01-02", "created_to": "2026-01-02"}, ["Gamma", "alpha_beta"]),
        ({"created_from": "2026-01-03"}, ["delta", "GAMMA two"]),
        ({"created_to": "2026-01-01"}, ["Alpha 100%"]),
        ({"created_from": "2026-01-02T23:59:59Z"}, ["delta", "GAMMA two", "Gamma"]),
        ({"created_to": "2026-01-02T23:59:59+00:00"}, ["Gamma", "alpha_beta", "Alpha 100%"]),
        ({"created_to": "2026-01-02T05:30:00+05:30"}, ["alpha_beta", "Alpha 100%"]),
        ({"created_from": "2026-01-03T12:00:00"}, ["delta", "GAMMA two"]),
    ],
)
async def test_filters(
    api: Api, listed: dict[str, str], params: dict[str, str], expected: list[str]
) -> None:
    assert await titles(api, **params) == expected


async def test_cursor_pages_through_everything_once(api: Api, listed: dict[str, str]) -> None:
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        reply = await api.call("GET", PROFILES, params=params)
        assert reply.status == 200, reply.body
        assert len(reply.body["items"]) <= 2
        seen.extend(item["title"] for item in reply.body["items"])
        pages += 1
        cursor = reply.body["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == [title for title, _, _ in reversed(ROWS)]

    filtered = await api.call("GET", PROFILES, params={"title": "a", "limit": "1"})
    second = await api.call(
        "GET",
        PROFILES,
        params={"title": "a", "limit": "1", "cursor": filtered.body["next_cursor"]},
    )
    assert second.body["items"][0]["title"] == "GAMMA two"


async def test_default_page_is_20(api: Api) -> None:
    for n in range(21):
        assert (await api.call("POST", PROFILES, json=sms_profile(title=f"p{n}"))).status == 201
    first = await api.call("GET", PROFILES)
    assert len(first.body["items"]) == 20
    assert first.body["items"][0]["title"] == "p20"
    rest = await api.call("GET", PROFILES, params={"cursor": first.body["next_cursor"]})
    assert [i["title"] for i in rest.body["items"]] == ["p0"]
    assert rest.body["next_cursor"] is None
    full = await api.call("GET", PROFILES, params={"limit": "100"})
    assert len(full.body["items"]) == 21
    # An empty parameter is an absent one (a form submitted with the field blank).
    blank = await api.call("GET", PROFILES, params={"limit": "", "title": "", "channel": ""})
    assert blank.status == 200, blank.body
    assert [i["title"] for i in blank.body["items"]] == [i["title"] for i in first.body["items"]]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "101"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"method": "PATCH"}, "method"),
        ({"channel": "fax"}, "channel"),
        ({"created_from": "yesterday"}, "created_from"),
        ({"created_to": "2026-13-01"}, "created_to"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"cursor": "WyJ4IiwgInkiXQ"}, "cursor"),
        ({"title": "x" * 201}, "title"),
    ],
)
async def test_bad_parameters_are_422(api: Api, params: dict[str, str], field: str) -> None:
    reply = await api.call("GET", PROFILES, params=params)
    assert reply.status == 422
    assert [e["field"] for e in reply.body["errors"]] == [field]
