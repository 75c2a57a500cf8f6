"""The worker's Redis connection: how long it waits out a Redis that is away or refusing writes."""

from __future__ import annotations

import time

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from crmflow.embedded_redis import free_port
from workers.main import REDIS_RETRIES, worker_redis_settings


def test_the_retry_budget_is_about_thirty_seconds() -> None:
    # What docs/guarantees.md promises: a Redis restart or failover of up to about 30 s is waited out.
    backoff = worker_redis_settings("redis://127.0.0.1:6379/0").retry
    assert backoff is not None
    waits = [backoff._backoff.compute(failures) for failures in range(1, REDIS_RETRIES + 1)]
    assert 20 <= sum(waits) <= 40


async def test_a_refused_connection_is_retried_not_given_up_at_once() -> None:
    # A new connection to a Redis that is not there (a restart under a busy worker) used to fail at the
    # first refusal: redis-py retries only its own ConnectionError, and wraps the OSError after retrying.
    port = free_port()
    settings = worker_redis_settings(f"redis://127.0.0.1:{port}/0", retries=5)
    client = Redis(host="127.0.0.1", port=port, retry=settings.retry, retry_on_error=settings.retry_on_error)
    began = time.monotonic()
    with pytest.raises(RedisConnectionError):
        await client.get("anything")
    waited_s = time.monotonic() - began
    await client.aclose()

    assert waited_s >= 0.1 + 0.2 + 0.4 + 0.8  # the backoff after each of the first four refusals
