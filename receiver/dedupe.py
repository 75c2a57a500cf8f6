"""Dedupe: remember which webhook events were already queued, so a redelivered batch makes no new work."""

from __future__ import annotations

from collections.abc import Collection

from redis.asyncio import Redis
from redis.exceptions import RedisError

from workers import keys as redis_keys
from workers.errors import QueueUnavailableError


async def unseen(redis: Redis, source: str, keys: Collection[str]) -> set[str]:
    """Those of `keys` not yet remembered."""
    if not keys:
        return set()
    ordered = list(keys)
    try:
        async with redis.pipeline(transaction=False) as pipe:
            for key in ordered:
                pipe.exists(redis_keys.seen(source, key))
            found = await pipe.execute()
    except (RedisError, OSError) as exc:
        raise QueueUnavailableError(f"Redis did not answer: {type(exc).__name__}") from exc
    return {key for key, exists in zip(ordered, found, strict=True) if not exists}


async def remember(redis: Redis, source: str, keys: Collection[str]) -> None:
    """Mark `keys` as queued; call only after the jobs they became were accepted by Redis."""
    if not keys:
        return
    try:
        async with redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.set(redis_keys.seen(source, key), b"1", ex=redis_keys.SEEN_TTL_S)
            await pipe.execute()
    except (RedisError, OSError) as exc:
        # The jobs are queued; not remembering only means a redelivery would queue them again (harmless).
        raise QueueUnavailableError(f"Redis did not answer: {type(exc).__name__}") from exc
