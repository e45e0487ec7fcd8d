"""Fault tests: a fleet of three dispatchers loses nothing and repeats almost nothing.

Three ``python -m dispatcher`` processes in one group over 12 partitions deliver a
backlog and then a steady stream to a sink answering in ~100 ms, while members come and
go, one is killed, a Kafka broker is killed, every broker is frozen, or the retry
schedule is shortened under waiting callbacks. Each test prints one line of figures
(``fleet <name> [<broker>]: events=… lost=… duplicates=… recover_s=…``; the harness's
docstring defines them) before it asserts.

Sizes are chosen so that the seven runs stay near five minutes on a 2-core machine,
most of it the 60 s freeze: a backlog of 1,500 events, then 100 events/s while the fault
plays out (2,000 to 4,000 events a test), a 6 s session timeout, and a dropped delay of
15 s rather than a realistic 30 s or more (its length changes nothing but the wait).
"""

from __future__ import annotations

import asyncio
import time

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from callbacks.kafka import ensure_topics
from callbacks_dev.devstack.kafka_cluster import KafkaCluster

from tests.helpers import KAFKA_FACING, KafkaTarget, eventually
from tests.integration.fleet.broker import records_in, retry_topics
from tests.integration.fleet.figures import wait_for
from tests.integration.fleet.harness import (
    COMMITS,
    INTERNAL_ERRORS,
    SESSION_TIMEOUT_S,
    UNCOMMITTED,
    Fleet,
    Member,
)

pytestmark = KAFKA_FACING  # 1 and 2 on both brokers; 3-5 say kafka alone

BACKLOG = 1500
RATE = 100  # events/s of the steady stream
STREAM_S = 9.0  # the stream where the fault is one moment: it outlasts a takeover
CHURN_CYCLES = 2  # two members join, deliver a while, and leave; twice
CHURN_DELIVERIES = 150  # first deliveries made with five members before two leave
SETTLE_S = 45.0  # bound on "every event delivered" after the fault
COMMIT_S = 20.0  # bound on "commits reached the end" after that
PAUSE_S = 60.0  # how long every broker is frozen (the issue asks for 60 s)
POST_FREEZE_STREAM_S = 4.0  # the stream after the freeze: new events flow too
MEMORY_GROWTH_MB = 64.0  # a member's RSS may grow by this much over the outage
LONG_DELAY_S = 15  # the delay the new retry schedule drops
# Refused attempts in a row would open the profile's circuit breaker, which parks
# callbacks on its own schedule; test 5 is about the retry topics alone.
NO_BREAKER = {"CALLBACKS_BREAKER_FAILURE_THRESHOLD": "100000"}


async def _delivered_at_least(fleet: Fleet, count: int, timeout_s: float = 60.0) -> None:
    async def probe() -> bool:
        return len(fleet.sink.first_at) >= count

    await eventually(probe, timeout_s=timeout_s, interval_s=0.05, what=f"{count} delivered")


async def _fleet_of_three(fleet: Fleet) -> list[Member]:
    members = fleet.start(3)
    await fleet.ready(members)
    await fleet.stable(3)
    return members


@pytest.mark.timeout(150)
async def test_members_joining_and_leaving_repeat_almost_nothing(
    fleet: Fleet, kafka: KafkaTarget
) -> None:
    # As autoscaling does it: a pair joins when a backlog arrives, and leaves again
    # under the steady stream that follows; twice. The next pair's processes start
    # while the last one is still in the group (their start-up is the slow part).
    await _fleet_of_three(fleet)
    churned = asyncio.Event()
    streaming: asyncio.Task[int] | None = None
    try:
        joining = fleet.start(2)
        for cycle in range(CHURN_CYCLES):
            extras = joining
            await fleet.ready(extras)
            await fleet.produce(BACKLOG // CHURN_CYCLES)
            if streaming is None:
                streaming = asyncio.create_task(fleet.stream(RATE, seconds=90.0, until=churned))
            await fleet.stable(5)
            await _delivered_at_least(fleet, len(fleet.sink.first_at) + CHURN_DELIVERIES)
            if cycle + 1 < CHURN_CYCLES:
                joining = fleet.start(2)
            await fleet.terminate(extras)
            assert all(m.returncode() == 0 for m in extras), extras[0].log_tail()
        await fleet.stable(3)
        fleet.mark_fault()
    finally:
        churned.set()
        if streaming is not None:
            await streaming
    await fleet.all_delivered(SETTLE_S)
    committed = await fleet.committed_to_end(COMMIT_S)
    figures = fleet.figures(committed=committed)
    print(f"\n{figures.line('join_leave', kafka.kind)}")
    assert figures.lost == 0, fleet.undelivered()[:5]
    assert figures.duplicates <= 0.01 * figures.events


@pytest.mark.timeout(150)
async def test_a_member_killed_repeats_at_most_what_it_had_in_flight(
    fleet: Fleet, kafka: KafkaTarget
) -> None:
    victim, *survivors = await _fleet_of_three(fleet)
    await fleet.produce(BACKLOG)
    streaming = asyncio.create_task(fleet.stream(RATE, seconds=STREAM_S))
    try:
        await _delivered_at_least(fleet, BACKLOG // 3)
        # What it had in flight for the group: every record it took whose offset is not
        # committed (finished ones behind an unfinished one too), the new owner's replay.
        in_flight = await fleet.metric(victim, UNCOMMITTED)
        victim.process.kill()
        fleet.mark_fault()
    finally:
        await streaming
    await fleet.all_delivered(SETTLE_S)
    committed = await fleet.committed_to_end(COMMIT_S)
    figures = fleet.figures(in_flight_at_kill=int(in_flight), committed=committed)
    print(f"\n{figures.line('member_sigkill', kafka.kind)}")
    assert figures.lost == 0, fleet.undelivered()[:5]
    assert figures.duplicates <= in_flight
    assert all(m.alive() for m in survivors)


@pytest.mark.brokers("kafka")
@pytest.mark.timeout(180)
async def test_a_broker_killed_loses_nothing_and_stops_no_member(
    fleet: Fleet, restored_cluster: KafkaCluster, kafka: KafkaTarget
) -> None:
    members = await _fleet_of_three(fleet)
    pids = [m.pid for m in members]
    await fleet.produce(BACKLOG)
    streaming = asyncio.create_task(fleet.stream(RATE, seconds=STREAM_S))
    try:
        await _delivered_at_least(fleet, BACKLOG // 3)
        # The group's coordinator: the broker whose loss costs the fleet the most.
        node = await _coordinator(fleet)
        restored_cluster.kill_node(node)  # started again by the fixture
        fleet.mark_fault()
    finally:
        await streaming
    await fleet.all_delivered(SETTLE_S)
    committed = await fleet.committed_to_end(COMMIT_S)
    figures = fleet.figures(killed_node=node, committed=committed)
    print(f"\n{figures.line('broker_sigkill', kafka.kind)}")
    assert [m.pid for m in fleet.running] == pids, "a member exited"
    assert figures.lost == 0, fleet.undelivered()[:5]
    assert figures.recover_s is not None
    assert figures.recover_s <= SESSION_TIMEOUT_S


async def _coordinator(fleet: Fleet) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=fleet.settings.kafka_bootstrap)
    await admin.start()
    try:
        node: int = await admin.find_coordinator(fleet.group)
        return node
    finally:
        await admin.close()


@pytest.mark.brokers("kafka")
@pytest.mark.timeout(240)
async def test_every_broker_frozen_for_a_minute_the_fleet_recovers_by_itself(
    fleet: Fleet, restored_cluster: KafkaCluster, kafka: KafkaTarget
) -> None:
    members = await _fleet_of_three(fleet)
    pids = [m.pid for m in members]
    await fleet.produce(BACKLOG)
    await _delivered_at_least(fleet, BACKLOG // 3)
    rss_before = {m.name: m.rss_mb() for m in members}
    rss_peak = dict(rss_before)
    said_not_ready: set[str] = set()
    try:
        restored_cluster.pause()
        frozen_at = time.monotonic()
        # The outage lasts PAUSE_S; meanwhile each member's memory and readiness
        # are sampled.
        while time.monotonic() - frozen_at < PAUSE_S:
            for m in members:
                rss_peak[m.name] = max(rss_peak[m.name], m.rss_mb())
            ready_now = await asyncio.gather(*(fleet.is_ready(m) for m in members))
            said_not_ready |= {m.name for m, r in zip(members, ready_now) if not r}
            await asyncio.sleep(1.0)
        commits_frozen = [await fleet.metric(m, COMMITS, result="ok") for m in members]
    finally:
        restored_cluster.resume()
    fleet.mark_fault()
    await fleet.stream(RATE, seconds=POST_FREEZE_STREAM_S)
    await fleet.all_delivered(SETTLE_S)
    committed = await fleet.committed_to_end(COMMIT_S)
    commits_after = [await fleet.metric(m, COMMITS, result="ok") for m in members]

    async def all_ready() -> bool:
        return all([await fleet.is_ready(m) for m in members])

    ready = await wait_for(all_ready, timeout_s=30, what="members ready again")
    dropped = sum([await fleet.metric(m, INTERNAL_ERRORS, stage="record") for m in members])
    for m in members:
        rss_peak[m.name] = max(rss_peak[m.name], m.rss_mb())
    growth = max(rss_peak[n] - rss_before[n] for n in rss_before)
    figures = fleet.figures(
        committed=committed,
        commits_frozen=int(sum(commits_frozen)),
        commits_after=int(sum(commits_after)),
        rss_growth_mb=round(growth, 1),
        not_ready_while_frozen=len(said_not_ready),
        ready_after=ready,
        records_dropped=int(dropped),
    )
    print(f"\n{figures.line('brokers_sigstop', kafka.kind)}")
    assert [m.pid for m in fleet.running] == pids, "a member exited"
    assert figures.lost == 0, fleet.undelivered()[:5]
    assert committed, "the group's commits did not reach the end"
    assert sum(commits_after) > sum(commits_frozen)
    assert len(said_not_ready) == len(members), "a member stayed ready without a broker"
    assert ready, "a member is not ready again"
    assert dropped == 0, "a failed hand-off was dropped instead of retried"
    assert growth <= MEMORY_GROWTH_MB, (rss_before, rss_peak)


@pytest.mark.brokers("kafka")
@pytest.mark.timeout(180)
async def test_a_shortened_retry_schedule_still_delivers_what_waits_in_the_dropped_delay(
    fleet: Fleet, kafka: KafkaTarget
) -> None:
    old = fleet.settings.model_copy(update={"retry_schedule": f"1s,{LONG_DELAY_S}s"})
    new = fleet.settings.model_copy(update={"retry_schedule": "1s,2s"})
    await ensure_topics(old)
    dropped = old.topics.retry_for(LONG_DELAY_S)
    assert dropped not in new.topics.retries
    members = fleet.start(3, retry_schedule=old.retry_schedule, env=NO_BREAKER)
    await fleet.ready(members)
    await fleet.stable(3)
    # Every fifth event fails its first two attempts, so it waits in the dropped topic.
    events = fleet.events(300)
    waiting = [e.event_id for e in events[::5]]
    fleet.sink.refuse(waiting, attempts=2)
    await fleet.send(events)

    async def parked() -> bool:
        return await records_in(old, dropped) >= len(waiting)

    await eventually(parked, timeout_s=60, interval_s=0.2, what="records in the dropped topic")
    await fleet.terminate(members)
    # `python -m callbacks init` with the new schedule: the old topic stays, records too.
    await ensure_topics(new)
    assert dropped in await retry_topics(new)
    assert await records_in(new, dropped) >= len(waiting)
    restarted = fleet.start(3, retry_schedule=new.retry_schedule, env=NO_BREAKER)
    fleet.mark_fault()
    await fleet.ready(restarted)
    await fleet.all_delivered(LONG_DELAY_S + SETTLE_S)
    committed = await fleet.committed_to_end(COMMIT_S)
    figures = fleet.figures(waiting=len(waiting), committed=committed)
    print(f"\n{figures.line('schedule_shortened', kafka.kind)}")
    assert figures.lost == 0, fleet.undelivered()[:5]
