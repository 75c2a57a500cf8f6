"""Enqueue: put ChangeEvents on the arq queue with deterministic job ids, so redeliveries are not queued twice.

The producer side of the queue, used by the receiver, the CLI (dead-letter replay), the demo and the tests;
workers/main.py is the consumer side and workers/contract.py the job format between them.

Jobs are written in arq's own format and with arq's own rule (a job id that is queued, or whose result is
still kept, is not queued again), but by one Lua script per chunk of up to ENQUEUE_CHUNK events instead of
arq's several round trips per job: a callback naming 50,000 records costs fifty round trips, not hundreds of
thousands, and the event loop gets control back between chunks.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from typing import Any

from arq.connections import ArqRedis
from arq.jobs import serialize_job
from redis.asyncio import ConnectionPool
from redis.exceptions import RedisError

from workers import keys
from workers.contract import PROCESS_CHANGE, QUEUE_NAME, ChangeEvent, dumps, loads
from workers.errors import QueueUnavailableError

ENQUEUE_CHUNK = 1000  # well under Lua's limit of about 8,000 values unpacked into one ZADD
# arq's default: a job not started within a day of being due is dropped (workers give up well before).
JOB_EXPIRY_MS = 86_400_000

# KEYS[1]: the queue. ARGV: job key prefix, result key prefix, expiry (ms), score (ms), then id, job pairs.
# For each job, as arq's enqueue_job does: skip it when its result is still kept or it is already queued
# (SET NX), else write it; then add the new ids to the queue in one ZADD. One script, so all of it at once.
# Returns one flag per job: 1 queued, 0 duplicate.
_ENQUEUE = """
local queued, flags = {}, {}
for i = 5, #ARGV, 2 do
  local id = ARGV[i]
  local kept = redis.call('EXISTS', ARGV[2] .. id) == 1
  if not kept and redis.call('SET', ARGV[1] .. id, ARGV[i + 1], 'PX', ARGV[3], 'NX') then
    queued[#queued + 1] = ARGV[4]
    queued[#queued + 1] = id
    flags[#flags + 1] = 1
  else
    flags[#flags + 1] = 0
  end
end
if #queued > 0 then
  redis.call('ZADD', KEYS[1], unpack(queued))
end
return flags
"""


@dataclass(frozen=True)
class EnqueueResult:
    """How many events became new jobs, and how many were already queued or recently done."""

    queued: int
    duplicates: int


@dataclass(frozen=True)
class Job:
    """One arq job to queue: its id, the function that runs it and its (JSON) arguments."""

    id: str
    function: str
    args: tuple[Any, ...]


def _chunks(jobs: Iterable[Job], size: int) -> Iterator[list[Job]]:
    iterator = iter(jobs)
    while chunk := list(islice(iterator, size)):
        yield chunk


def job_arguments(jobs: list[Job], now_ms: int) -> list[str | bytes | int]:
    """The script's ARGV for `jobs`: each job id and the job exactly as arq's enqueue_job would write it."""
    args: list[str | bytes | int] = [keys.ARQ_JOB_PREFIX, keys.ARQ_RESULT_PREFIX, JOB_EXPIRY_MS, now_ms]
    for job in jobs:
        args += [job.id, serialize_job(job.function, job.args, {}, None, now_ms, serializer=dumps)]
    return args


async def enqueue_jobs(redis: ArqRedis, jobs: Iterable[Job]) -> EnqueueResult:
    """Queue each job; return only once Redis has accepted every one, else raise QueueUnavailableError.

    A job whose id is queued already, or whose result arq still keeps, is a duplicate and not queued again.
    """
    queued = duplicates = 0
    script = redis.register_script(_ENQUEUE)
    try:
        for chunk in _chunks(jobs, ENQUEUE_CHUNK):
            flags = await script(keys=[QUEUE_NAME], args=job_arguments(chunk, int(time.time() * 1000)))
            queued += sum(flags)
            duplicates += len(chunk) - sum(flags)
    except (RedisError, OSError) as exc:
        # Jobs queued before the failure stay queued; the sender's retry maps to the same job ids.
        raise QueueUnavailableError(f"Redis did not accept the jobs: {type(exc).__name__}") from exc
    return EnqueueResult(queued=queued, duplicates=duplicates)


async def enqueue_events(redis: ArqRedis, events: Iterable[ChangeEvent]) -> EnqueueResult:
    """Queue a process_change job for each event, under its deterministic id (see enqueue_jobs)."""
    # The python-mode dump serializes to the same JSON as mode="json" (its values are strings, numbers and
    # tuples, which orjson writes as arrays) in half the time.
    return await enqueue_jobs(redis, (Job(event.job_id(), PROCESS_CHANGE, (event.model_dump(),)) for event in events))


def connect_queue(redis_url: str) -> ArqRedis:
    """A lazily connecting arq client: its users start (and answer 503) even while Redis is down."""
    pool = ConnectionPool.from_url(redis_url, socket_connect_timeout=2, socket_timeout=5)
    redis = ArqRedis(connection_pool=pool, job_serializer=dumps, job_deserializer=loads, default_queue_name=QUEUE_NAME)
    redis.auto_close_connection_pool = True  # aclose() also closes the pool this function made
    return redis
