"""Rejections: count a refused webhook (401) per source in Redis, for `crmflow doctor --online`; reject path only.

Called from the receiver's 401 answer (receiver/app.py), so an accepted request pays nothing for this. A
refused one pays one pipelined round trip, bounded by RECORD_TIMEOUT_S: it is answered 401 whether or not
Redis took the record (a failure is logged, not raised). What is kept (workers/keys.py `webhook_rejections`):
the count, the last time and reason (fixed texts, never a value sent or configured), and per setting a
mismatch points at (AuthenticationError.setting) its own last time and count, which the doctor compares
with the source's last accepted notification.
"""

from __future__ import annotations

import asyncio
import logging

from redis.asyncio import Redis
from redis.exceptions import RedisError

from receiver.errors import AuthenticationError
from workers import keys

logger = logging.getLogger("crmflow.receiver")
RECORD_TIMEOUT_S = 1.0


async def record_rejection(redis: Redis, source: str, error: AuthenticationError, now_ms: int) -> None:
    """Add one refused webhook of `source` to its record."""
    key = keys.webhook_rejections(source)
    fields: dict[str, str | int] = {"last_ms": now_ms, "last_reason": error.detail}
    pipe = redis.pipeline(transaction=False)
    if error.setting is not None:
        fields[f"{error.setting}:last_ms"] = now_ms
        pipe.hincrby(key, f"{error.setting}:count", 1)
    pipe.hset(key, mapping=fields)
    pipe.hincrby(key, "count", 1)
    pipe.expire(key, keys.REJECTIONS_TTL_S)
    try:
        await asyncio.wait_for(pipe.execute(), RECORD_TIMEOUT_S)
    except (RedisError, OSError, TimeoutError) as exc:
        logger.warning("could not record a refused %s webhook in Redis (%s)", source, type(exc).__name__)
