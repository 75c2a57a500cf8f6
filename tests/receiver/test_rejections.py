"""record_rejection: what a refused webhook leaves in Redis, and that a failing Redis does not change the 401."""

from __future__ import annotations

from arq.connections import ArqRedis
from redis.asyncio import Redis

from receiver.errors import AuthenticationError
from receiver.rejections import record_rejection
from workers import keys


async def test_each_refusal_is_counted_and_a_mismatch_per_setting(redis: ArqRedis) -> None:
    await record_rejection(redis, "hubspot", AuthenticationError("missing X-HubSpot-Signature-v3"), 1_000)
    mismatch = AuthenticationError("X-HubSpot-Signature-v3 does not match", setting="HUBSPOT_CLIENT_SECRET")
    await record_rejection(redis, "hubspot", mismatch, 2_000)
    await record_rejection(redis, "hubspot", AuthenticationError("missing X-HubSpot-Signature-v3"), 3_000)

    record: dict[bytes, bytes] = await redis.hgetall(  # type: ignore[misc]
        keys.webhook_rejections("hubspot")
    )

    assert record == {
        b"count": b"3",
        b"last_ms": b"3000",
        b"last_reason": b"missing X-HubSpot-Signature-v3",
        b"HUBSPOT_CLIENT_SECRET:last_ms": b"2000",
        b"HUBSPOT_CLIENT_SECRET:count": b"1",
    }
    assert 0 < await redis.ttl(keys.webhook_rejections("hubspot")) <= keys.REJECTIONS_TTL_S


async def test_a_redis_that_does_not_answer_is_logged_not_raised(caplog: object) -> None:
    gone = Redis.from_url("redis://127.0.0.1:9/0", socket_connect_timeout=0.5)
    try:
        await record_rejection(gone, "zoho", AuthenticationError("token does not match"), 1_000)
    finally:
        await gone.aclose()
