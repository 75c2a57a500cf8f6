"""workers/heartbeat.py: the facts' round trip, which heartbeats are live, and a Heartbeat's key and index on real
Redis."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from arq.connections import ArqRedis

from workers import keys
from workers.heartbeat import HEARTBEAT_TTL_S, Heartbeat, WorkerFacts, live, live_workers

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


def test_live_leaves_out_gone_and_malformed_heartbeats_and_sorts_by_host_and_pid() -> None:
    raw = [
        facts("host-b:7:aa", host="host-b", pid=7).to_json(),
        None,  # expired between reading the index and MGET
        b"{not json",
        b'{"worker_id": "x"}',
        facts("host-a:99:bb", pid=99, age_s=60).to_json(),  # an old beat_at: a writer's clock, not a verdict
        facts("host-a:12:cc", pid=12).to_json(),
    ]

    assert [entry.worker_id for entry in live(raw)] == ["host-a:12:cc", "host-a:99:bb", "host-b:7:aa"]


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


async def until(condition: Callable[[], Awaitable[bool]], what: str, timeout_s: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not await condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


async def test_each_beat_indexes_the_worker_at_redis_time_and_readers_use_the_index_not_the_keyspace(
    redis: ArqRedis,
) -> None:
    heartbeat = Heartbeat(redis, facts(age_s=0), clock=lambda: NOW)
    await heartbeat.beat()
    # A key that looks like a heartbeat but no beat indexed: a reader that scans the keyspace would list it.
    await redis.set(keys.worker_heartbeat("host-z:1:ffff"), facts("host-z:1:ffff", host="host-z", pid=1).to_json())
    seconds, micros = await redis.time()

    [(member, score)] = await redis.zrange(keys.WORKER_HEARTBEATS, 0, -1, withscores=True)
    assert member == b"host-a:41:0a1b2c3d"
    assert abs(score - (seconds * 1000 + micros // 1000)) < 2000
    assert 0 < await redis.pttl(keys.WORKER_HEARTBEATS) <= HEARTBEAT_TTL_S * 1000
    assert [entry.worker_id for entry in await live_workers(redis, NOW)] == ["host-a:41:0a1b2c3d"]


async def test_a_worker_whose_clock_is_off_is_live_while_its_key_lives(redis: ArqRedis) -> None:
    """Liveness is the key's existence on Redis's clock: neither clock's offset matters."""
    behind = Heartbeat(redis, facts(age_s=0), clock=lambda: NOW - timedelta(minutes=10))
    await behind.beat()

    assert [entry.worker_id for entry in await live_workers(redis, NOW)] == ["host-a:41:0a1b2c3d"]
    assert [entry.worker_id for entry in await live_workers(redis, NOW + timedelta(hours=1))] == ["host-a:41:0a1b2c3d"]


async def test_an_expired_heartbeat_is_not_live_and_a_later_beat_drops_it_from_the_index(redis: ArqRedis) -> None:
    dead = Heartbeat(redis, facts("host-a:1:aa", pid=1), clock=lambda: NOW, ttl_s=0.05)
    alive = Heartbeat(redis, facts("host-a:2:bb", pid=2), clock=lambda: NOW, ttl_s=0.5)
    await dead.beat()
    await alive.beat()

    async def dead_gone_from_the_index() -> bool:
        await alive.beat()  # the other worker keeps beating; its beats trim entries older than its lifetime
        members: list[bytes] = await redis.zrange(keys.WORKER_HEARTBEATS, 0, -1)
        return members == [b"host-a:2:bb"]

    await until(dead_gone_from_the_index, "a beat to drop the expired heartbeat from the index")

    assert not await redis.exists(dead.key)
    assert [entry.worker_id for entry in await live_workers(redis, NOW)] == ["host-a:2:bb"]
    await alive.stop()
    assert await redis.zrange(keys.WORKER_HEARTBEATS, 0, -1) == []
    assert await live_workers(redis, NOW) == []


async def test_with_no_beats_the_index_expires_with_the_last_heartbeat(redis: ArqRedis) -> None:
    dead = Heartbeat(redis, facts(), clock=lambda: NOW, ttl_s=0.05)
    await dead.beat()

    async def both_expired() -> bool:
        return not await redis.exists(dead.key, keys.WORKER_HEARTBEATS)

    await until(both_expired, "Redis to expire the heartbeat and the index")

    assert await live_workers(redis, NOW) == []
