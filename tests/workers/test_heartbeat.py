"""workers/heartbeat.py: the facts' round trip, which heartbeats are live, and a Heartbeat's key on real Redis."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from arq.connections import ArqRedis

from workers import keys
from workers.heartbeat import HEARTBEAT_TTL_S, Heartbeat, WorkerFacts, is_live, live, live_workers

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def facts(
    worker_id: str = "host-a:41:0a1b2c3d", *, host: str = "host-a", pid: int = 41, age_s: float = 0.5
) -> WorkerFacts:
    return WorkerFacts(
        worker_id=worker_id,
        host=host,
        pid=pid,
        started_at=NOW - timedelta(hours=1),
        version="0.1.0",
        sources=("zoho", "hubspot"),
        beat_at=NOW - timedelta(seconds=age_s),
    )


def test_the_facts_survive_their_json() -> None:
    assert WorkerFacts.from_json(facts().to_json()) == facts()


def test_a_heartbeat_is_live_until_its_lifetime_has_passed() -> None:
    assert is_live(facts(age_s=HEARTBEAT_TTL_S), NOW)
    assert not is_live(facts(age_s=HEARTBEAT_TTL_S + 0.1), NOW)


def test_live_leaves_out_stale_gone_and_malformed_heartbeats_and_sorts_by_host_and_pid() -> None:
    raw = [
        facts("host-b:7:aa", host="host-b", pid=7).to_json(),
        None,  # expired between SCAN and MGET
        b"{not json",
        b'{"worker_id": "x"}',
        facts("host-a:99:bb", pid=99, age_s=60).to_json(),
        facts("host-a:12:cc", pid=12).to_json(),
    ]

    assert [entry.worker_id for entry in live(raw, NOW)] == ["host-a:12:cc", "host-b:7:aa"]


async def test_a_heartbeat_keeps_its_short_lived_key_and_deletes_it_when_stopped(redis: ArqRedis) -> None:
    clock = [NOW]
    heartbeat = Heartbeat(redis, facts(age_s=0), clock=lambda: clock[0], interval_s=0.01)
    heartbeat.start()
    try:
        for _ in range(500):
            if await redis.exists(heartbeat.key):
                break
            await asyncio.sleep(0.01)
        ttl_ms = await redis.pttl(heartbeat.key)
        listed = await live_workers(redis, NOW)
        clock[0] = NOW + timedelta(seconds=1)
        for _ in range(500):
            if [entry.beat_at for entry in await live_workers(redis, clock[0])] == [clock[0]]:
                break
            await asyncio.sleep(0.01)
        else:
            raise AssertionError("the heartbeat was not rewritten")
    finally:
        await heartbeat.stop()

    assert heartbeat.key == keys.worker_heartbeat("host-a:41:0a1b2c3d")
    assert 0 < ttl_ms <= HEARTBEAT_TTL_S * 1000
    assert listed == [facts(age_s=0)]
    assert not await redis.exists(heartbeat.key)
    assert await live_workers(redis, NOW) == []
