"""The Redis probe against real Redis servers: the test one, one that is not there, a read-only replica."""

from __future__ import annotations

from redis.asyncio import Redis

from crmflow.doctor.redis_probe import check_redis
from crmflow.embedded_redis import EmbeddedRedis, free_port
from workers import keys


async def test_a_writable_redis_passes_and_keeps_nothing(redis: Redis) -> None:
    found = await check_redis(redis, "test")

    assert (found.status, found.setting) == ("ok", "REDIS_URL")
    assert await redis.exists(keys.READY_PROBE) == 0


async def test_a_redis_that_is_not_there_is_named() -> None:
    client = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=1.0)
    try:
        found = await check_redis(client, "nowhere")
    finally:
        await client.aclose()

    assert (found.status, found.setting) == ("fail", "REDIS_URL")
    assert found.message.startswith("cannot reach Redis at nowhere")


async def test_a_wrong_password_is_named(redis_url: str) -> None:
    client = Redis.from_url(redis_url.replace("redis://", "redis://:wrong-password@", 1))
    try:
        found = await check_redis(client, "test")
    finally:
        await client.aclose()

    assert (found.status, found.setting) == ("fail", "REDIS_URL")
    assert "credentials" in found.message
    assert "wrong-password" not in repr(found)


async def test_a_read_only_replica_is_named() -> None:
    with EmbeddedRedis() as primary, EmbeddedRedis() as replica:
        client = Redis.from_url(replica.url)
        try:
            await client.replicaof("127.0.0.1", primary.port)
            found = await check_redis(client, "replica")
        finally:
            await client.aclose()

    assert (found.status, found.setting) == ("fail", "REDIS_URL")
    assert "read-only replica" in found.message
