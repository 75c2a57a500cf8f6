"""Metrics scrape: read the shared state (queue, dead letters, channels, duties) from Redis in one round trip.

A scrape sends one pipeline of a few commands (two for the queue, one for the dead letters, two for the Zoho
channels, one HGET per duty and one GET per swept module) through an async client (the receiver) or a
blocking one (a worker's metrics thread); the same commands and the same pure `parse` serve both. Redis not
answering within the timeout gives None: the rest of /metrics is still served, with crmflow_redis_up 0.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis as sync_redis
from redis.asyncio import Redis
from redis.exceptions import RedisError

from workers import keys, sources
from workers.channel_upkeep import DUTY_NAME as CHANNEL_DUTY
from workers.metrics import SharedState
from workers.sweep import swept_modules

logger = logging.getLogger("crmflow.metrics")

# A scrape waits this long for Redis at most.
SCRAPE_TIMEOUT_S = 1.0


@dataclass(frozen=True)
class StateQuery:
    """What a scrape reads besides the queue and dead letters: the duties' names and the swept modules."""

    duties: tuple[str, ...]
    swept: tuple[tuple[str, str], ...]


def state_query() -> StateQuery:
    """The duties and swept modules of every registered source (a key never written reads as absent)."""
    swept = tuple((source.name, module.name) for source in sources.all_sources() for module in swept_modules(source))
    duties = (CHANNEL_DUTY, *sorted({f"sweep:{source}" for source, _ in swept}))
    return StateQuery(duties=duties, swept=swept)


def queue_reads(pipe: Any, query: StateQuery, now_s: float) -> None:
    """Add the scrape's commands to `pipe` (a pipeline of either client), in the order `parse` reads them."""
    pipe.zcard(keys.QUEUE_NAME)
    pipe.zrange(keys.QUEUE_NAME, 0, 0, withscores=True)
    # A letter's key lives DEADLETTER_RETENTION after its last failure; older index entries are being trimmed.
    pipe.zcount(keys.DEADLETTER_INDEX, now_s - keys.DEADLETTER_RETENTION.total_seconds(), "+inf")
    pipe.hgetall(keys.ZOHO_CHANNEL_EXPIRY)
    pipe.hlen(keys.ZOHO_CHANNEL_FAILURES)
    for duty in query.duties:
        pipe.hget(keys.duty_state(duty), "last_ok_at")
    for source, module in query.swept:
        pipe.get(keys.sweep_cursor(source, module))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _number(value: Any) -> float | None:
    try:
        return float(_text(value)) if value is not None else None
    except ValueError:
        return None


def parse(query: StateQuery, results: Sequence[Any]) -> SharedState:
    """The state from the pipeline's answers (`queue_reads` order). Pure; an unreadable value is left out."""
    depth, first, letters, expiry, failures = results[:5]
    duty_values = results[5 : 5 + len(query.duties)]
    cursor_values = results[5 + len(query.duties) :]
    channel_expiry = {_text(k): at for k, v in (expiry or {}).items() if (at := _number(v)) is not None}
    completed = {duty: at for duty, v in zip(query.duties, duty_values, strict=True) if (at := _number(v)) is not None}
    cursors = {
        where: ms / 1000 for where, v in zip(query.swept, cursor_values, strict=True) if (ms := _number(v)) is not None
    }
    return SharedState(
        queue_depth=int(depth),
        # arq's score: when the job is due, epoch milliseconds.
        first_due_s=float(first[0][1]) / 1000 if first else None,
        deadletters=int(letters),
        channel_expiry_s=channel_expiry,
        channel_failures=int(failures),
        duty_completed_s=completed,
        sweep_cursor_s=cursors,
    )


async def read_state(
    redis: Redis, query: StateQuery, now_s: float, timeout_s: float = SCRAPE_TIMEOUT_S
) -> SharedState | None:
    """One pipeline through an async client; None when Redis fails or takes longer than `timeout_s`."""
    try:
        async with asyncio.timeout(timeout_s):
            async with redis.pipeline(transaction=False) as pipe:
                queue_reads(pipe, query, now_s)
                results = await pipe.execute()
    except (RedisError, OSError, TimeoutError) as exc:
        logger.warning("metrics: Redis did not answer the scrape (%s); serving the rest", type(exc).__name__)
        return None
    return parse(query, results)


def read_state_blocking(redis: sync_redis.Redis, query: StateQuery, now_s: float) -> SharedState | None:
    """The same through a blocking client (whose socket timeouts bound the wait); None when Redis fails."""
    try:
        with redis.pipeline(transaction=False) as pipe:
            queue_reads(pipe, query, now_s)
            results = pipe.execute()
    except (RedisError, OSError) as exc:
        logger.warning("metrics: Redis did not answer the scrape (%s); serving the rest", type(exc).__name__)
        return None
    return parse(query, results)


def blocking_client(redis_url: str, timeout_s: float = SCRAPE_TIMEOUT_S) -> sync_redis.Redis:
    """A blocking client for a worker's metrics thread: no retries, short timeouts, one connection at a time."""
    return sync_redis.Redis.from_url(
        redis_url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s, max_connections=2
    )
