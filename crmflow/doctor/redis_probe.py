"""Online Redis check: Redis at REDIS_URL accepts a write, gives it back and deletes it. I/O at the edge.

It writes the key /readyz writes (workers/keys.py READY_PROBE, with its expiry), so it leaves nothing behind.
"""

from __future__ import annotations

import secrets

from redis.asyncio import Redis
from redis.exceptions import AuthenticationError, ReadOnlyError, RedisError, ResponseError

from crmflow.doctor.findings import Finding, fail, ok
from workers import keys

CHECK = "redis"


async def check_redis(redis: Redis, where: str) -> Finding:
    """`where`: host, port and database, fit to print (no password)."""
    value = secrets.token_hex(8).encode()
    try:
        await redis.set(keys.READY_PROBE, value, ex=keys.READY_PROBE_TTL_S)
        read = await redis.get(keys.READY_PROBE)
        await redis.delete(keys.READY_PROBE)
    except ReadOnlyError:
        message = f"Redis at {where} is a read-only replica: it refuses writes"
        return fail(CHECK, message, setting="REDIS_URL", fix="point REDIS_URL at the primary")
    except AuthenticationError:
        message = f"Redis at {where} refused the credentials (or needs some)"
        fix = "put the user and password in REDIS_URL (redis://user:password@host:port/db)"
        return fail(CHECK, message, setting="REDIS_URL", fix=fix)
    except ResponseError as exc:
        kind = str(exc).split(" ", 1)[0]
        message = f"Redis at {where} refused a write ({kind})"
        fix = "free memory or raise maxmemory" if kind == "OOM" else "check the Redis server's log"
        return fail(CHECK, message, setting="REDIS_URL", fix=fix)
    except (RedisError, OSError) as exc:
        message = f"cannot reach Redis at {where} ({type(exc).__name__})"
        return fail(CHECK, message, setting="REDIS_URL", fix="check REDIS_URL and that Redis runs")
    if read is None:
        message = f"Redis at {where} lost a key just written"
        return fail(CHECK, message, setting="REDIS_URL", fix="check the Redis server (maxmemory policy, eviction)")
    return ok(CHECK, f"Redis at {where} accepts writes", setting="REDIS_URL")
