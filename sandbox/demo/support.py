"""What the demo's stories share: waiting for something to happen, showing JSON, reading a finished job."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from arq.jobs import Job

from workers.contract import loads
from workers.queue import connect_queue

WAIT_S = 15.0


def as_json(data: Any) -> str:
    return orjson.dumps(data, option=orjson.OPT_INDENT_2).decode()


async def until(check: Callable[[], Awaitable[Any]], what: str) -> Any:
    """Poll `check` until it returns something truthy, or fail after WAIT_S."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        value = await check()
        if value:
            return value
        await asyncio.sleep(0.005)
    raise TimeoutError(f"the demo waited {WAIT_S:.0f}s for {what}")


async def finished_job(redis_url: str, job_id: str) -> dict[str, Any]:
    """The job's id, function, try, times and result, once a worker has run it."""
    redis = connect_queue(redis_url)
    try:

        async def finished() -> Any:
            return await Job(job_id, redis, _deserializer=loads).result_info()

        info = await until(finished, f"job {job_id}")
        return {
            "job_id": job_id,
            "function": info.function,
            "try": info.job_try,
            "enqueued": info.enqueue_time.isoformat(timespec="milliseconds"),
            "finished": info.finish_time.isoformat(timespec="milliseconds"),
            "result": info.result,
        }
    finally:
        await redis.aclose()


def fresh_id(prefix: str, digits: int) -> str:
    """A record id not used by an earlier run, so state kept in Redis from it never meets this one."""
    return f"{prefix}{time.time_ns() // 1000 % 10**digits:0{digits}d}"
