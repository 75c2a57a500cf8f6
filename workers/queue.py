"""Enqueue: put ChangeEvents on the arq queue with deterministic job ids, so redeliveries are not queued twice.

The producer side of the queue, used by the receiver, the CLI (dead-letter replay), the demo and the tests;
workers/main.py is the consumer side and workers/contract.py the job format between them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from arq.connections import ArqRedis
from redis.asyncio import ConnectionPool
from redis.exceptions import RedisError

from workers.contract import PROCESS_CHANGE, QUEUE_NAME, ChangeEvent, dumps, loads
from workers.errors import QueueUnavailableError


@dataclass(frozen=True)
class EnqueueResult:
    """How many events became new jobs, and how many were already queued or recently done."""

    queued: int
    duplicates: int


async def enqueue_events(redis: ArqRedis, events: Iterable[ChangeEvent]) -> EnqueueResult:
    """Queue each event; return only once Redis has accepted every one, else raise QueueUnavailableError."""
    queued = duplicates = 0
    try:
        for event in events:
            job = await redis.enqueue_job(
                PROCESS_CHANGE, event.model_dump(mode="json"), _job_id=event.job_id(), _queue_name=QUEUE_NAME
            )
            if job is None:
                duplicates += 1
            else:
                queued += 1
    except (RedisError, OSError) as exc:
        # Jobs queued before the failure stay queued; the sender's retry maps to the same job ids.
        raise QueueUnavailableError(f"Redis did not accept the jobs: {type(exc).__name__}") from exc
    return EnqueueResult(queued=queued, duplicates=duplicates)


def connect_queue(redis_url: str) -> ArqRedis:
    """A lazily connecting arq client: its users start (and answer 503) even while Redis is down."""
    pool = ConnectionPool.from_url(redis_url, socket_connect_timeout=2, socket_timeout=5)
    redis = ArqRedis(connection_pool=pool, job_serializer=dumps, job_deserializer=loads, default_queue_name=QUEUE_NAME)
    redis.auto_close_connection_pool = True  # aclose() also closes the pool this function made
    return redis
