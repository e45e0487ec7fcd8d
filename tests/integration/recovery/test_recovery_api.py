"""Bulk recovery through the API (contract §7): what is recovered, progress, the 409,
validation and account scoping, and a recovery that survives its replica's stop."""

from __future__ import annotations

import collections
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import asyncpg
from callbacks.settings import Settings

from tests.helpers import eventually
from tests.integration.api.helpers import Api
from tests.integration.recovery.helpers import (
    Replica,
    Seeded,
    create_profile,
    problem_fields,
    redeliver_requests,
    seed,
)

# Times of the seeded callbacks: an hour ago, so the window is inside the retention
# whatever the date (nothing here depends on today's date, only on "now").
BASE = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)


def at(minutes: int) -> datetime:
    return BASE + timedelta(minutes=minutes)


def window(**fields: Any) -> dict[str, Any]:
    return {"since": at(0).isoformat(), "until": at(30).isoformat(), **fields}


async def finished(api: Api, recovery_id: str, timeout_s: float = 15.0) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        reply = await api.call("GET", f"/v1/recoveries/{recovery_id}")
        assert reply.status == 200, reply.body
        body: dict[str, Any] = reply.body
        return body if body["status"] == "done" else None

    return await eventually(probe, timeout_s=timeout_s, what=f"recovery {recovery_id} done")


async def _mixed_window(pool: asyncpg.Pool, api: Api, profile: str) -> list[str]:
    """Failed and delivered callbacks in the window, and some that must never be taken;
    the ids of the failed ones in the window."""
    assert api.account_id is not None
    failed = [f"{profile}-f{i}" for i in range(4)]
    rows = [Seeded(d, "failed", at(i + 1)) for i, d in enumerate(failed)]
    rows += [Seeded(f"{profile}-ok{i}", "delivered", at(i + 10)) for i in range(3)]
    rows += [
        Seeded(f"{profile}-before", "failed", at(-1)),
        Seeded(f"{profile}-after", "failed", at(30)),  # until is exclusive
        Seeded(f"{profile}-nowhere", "failed", at(5), source=None),  # position unknown
    ]
    await seed(pool, api.account_id, profile, rows)
    other = await create_profile(api)
    await seed(pool, api.account_id, other, [Seeded(f"{other}-f", "failed", at(2))])
    return failed


async def test_recover_failed_redelivers_exactly_the_failed_callbacks_of_the_window(
    api: Api, pool: asyncpg.Pool, recovery_settings: Settings
) -> None:
    profile = await create_profile(api)
    failed = await _mixed_window(pool, api, profile)

    reply = await api.call(
        "POST", f"/v1/callback-profiles/{profile}/recover", json=window(status="failed")
    )
    assert reply.status == 202, reply.body
    assert reply.body == {"id": reply.body["id"], "status": "running", "total": 4, "done": 0}
    done = await finished(api, reply.body["id"])
    assert (done["done"], done["total"], done["filter"]) == (4, 4, "failed")
    assert done["profile_id"] == profile

    requests = await redeliver_requests(recovery_settings)
    assert sorted(r.delivery_id for r in requests) == sorted(failed)
    assert {(r.attempt, r.account_id, r.profile_id) for r in requests} == {
        (4, api.account_id, profile)
    }
    assert {r.event_id for r in requests} == {f"ev-{d}" for d in failed}


async def test_recover_all_takes_delivered_callbacks_too(
    api: Api, pool: asyncpg.Pool, recovery_settings: Settings
) -> None:
    profile = await create_profile(api)
    await _mixed_window(pool, api, profile)
    reply = await api.call(
        "POST", f"/v1/callback-profiles/{profile}/recover", json=window(status="all")
    )
    assert reply.status == 202, reply.body
    assert reply.body["total"] == 7
    done = await finished(api, reply.body["id"])
    assert done["done"] == 7
    assert len(await redeliver_requests(recovery_settings)) == 7


async def test_same_window_while_one_runs_is_409(
    pool: asyncpg.Pool, recovery_settings: Settings
) -> None:
    slow = recovery_settings.model_copy(update={"recovery_rate": 1.0})
    replica = await Replica.start(slow)
    try:
        async with aiohttp.ClientSession() as session:
            api = await Api(replica.base, session).new_account()
            assert api.account_id is not None
            profile = await create_profile(api)
            rows = [Seeded(f"{profile}-{i}", "failed", at(i)) for i in range(5)]
            await seed(pool, api.account_id, profile, rows)
            path = f"/v1/callback-profiles/{profile}/recover"
            first = await api.call("POST", path, json=window())
            assert first.status == 202, first.body
            again = await api.call("POST", path, json=window(status="all"))
            assert again.status == 409, again.body
            assert again.headers["Content-Type"].startswith("application/problem+json")
            assert "running" in again.body["detail"]
            # Another window of the same profile is another recovery.
            other = await api.call("POST", path, json=window(until=at(20).isoformat()))
            assert other.status == 202, other.body
    finally:
        await replica.stop()


async def test_bad_requests_name_the_field_and_other_accounts_see_nothing(
    api: Api, pool: asyncpg.Pool, replica: Replica
) -> None:
    profile = await create_profile(api)
    path = f"/v1/callback-profiles/{profile}/recover"
    cases: list[tuple[dict[str, Any], str]] = [
        (window(since=at(10).isoformat(), until=at(5).isoformat()), "until"),
        (window(until=at(0).isoformat()), "until"),
        (window(since="yesterday"), "since"),
        (window(since=(datetime.now(UTC) - timedelta(days=8)).isoformat()), "since"),
        (window(status="delivered"), "status"),
        ({"until": at(5).isoformat()}, "since"),
        (window(extra=1), "extra"),
    ]
    for body, field in cases:
        reply = await api.call("POST", path, json=body)
        assert reply.status == 422, (body, reply.body)
        assert field in problem_fields(reply.body), (body, reply.body)

    started = await api.call("POST", path, json=window())
    assert started.status == 202
    recovery = f"/v1/recoveries/{started.body['id']}"

    other = await Api(api.base, api.session).new_account()
    assert (await other.call("POST", path, json=window())).status == 404
    assert (await other.call("GET", recovery)).status == 404
    assert (await api.call("GET", "/v1/recoveries/not-a-uuid")).status == 404
    assert (
        await api.call("POST", "/v1/callback-profiles/nope/recover", json=window())
    ).status == 404
    assert (await api.call("GET", recovery, key="cbk_wrong")).status == 401
    assert (await api.call("GET", recovery)).status == 200


async def test_a_stopped_replica_hands_the_recovery_over_and_each_callback_goes_once(
    pool: asyncpg.Pool, recovery_settings: Settings
) -> None:
    """Stop the replica mid-recovery (its runner task is cancelled); another replica
    resumes where it stopped: every callback of the window is requested exactly once."""
    paced = recovery_settings.model_copy(update={"recovery_rate": 20.0})
    first = await Replica.start(paced)
    async with aiohttp.ClientSession() as session:
        api = await Api(first.base, session).new_account()
        assert api.account_id is not None
        profile = await create_profile(api)
        ids = [f"{profile}-{i:02d}" for i in range(50)]
        await seed(pool, api.account_id, profile, [Seeded(d, "failed", at(1)) for d in ids])
        reply = await api.call("POST", f"/v1/callback-profiles/{profile}/recover", json=window())
        assert reply.status == 202, reply.body
        recovery_id = reply.body["id"]

        async def some_done() -> int:
            row = await api.call("GET", f"/v1/recoveries/{recovery_id}")
            done: int = row.body["done"]
            return done if done >= 3 else 0

        await eventually(some_done, what="a few callbacks requested")
        await first.stop()
        row = await pool.fetchrow(
            "SELECT status, done, claimed_by FROM recoveries WHERE id = $1::uuid", recovery_id
        )
        assert row["status"] == "running"
        assert 3 <= row["done"] < 50
        assert row["claimed_by"] is None  # released on stop, not left to expire

        second = await Replica.start(paced)
        try:
            resumed = Api(second.base, session, api.key, api.account_id)
            done = await finished(resumed, recovery_id, timeout_s=20.0)
        finally:
            await second.stop()
    assert (done["done"], done["total"]) == (50, 50)
    counts = collections.Counter(r.delivery_id for r in await redeliver_requests(paced))
    assert counts == dict.fromkeys(ids, 1)
