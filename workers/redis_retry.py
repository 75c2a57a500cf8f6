"""Redis retries for workers: wait out a Redis outage (restart, failover, maxmemory) for a bounded time in all.

redis-py's own Retry counts tries per call, and calls nest (a command's retry reconnects, and connecting
retries too), so 30 tries of about a second each could become 30 x 30; and every connection has a copy of
its own, so commands queued for the pool's lock each waited a whole budget. OutageRetry measures time:

* a call and every call nested in it (a reconnect) give up together, `budget_s` after the first failure;
* while Redis cannot be reached at all, one clock serves the whole process, so commands queued behind one
  another give up together too. (A Redis that refuses writes still answers reads; those do not end the
  outage of the writes that fail meanwhile, because each failing call keeps its own clock as well.)
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any, TypeVar

from redis.asyncio.retry import Retry
from redis.backoff import AbstractBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

T = TypeVar("T")

# When the calls running in this task (a call, and a reconnect inside it) began to fail.
_failing_since: ContextVar[float | None] = ContextVar("crmflow_redis_failing_since", default=None)
# Failures that mean Redis cannot be reached at all (as opposed to refusing a command).
_UNREACHABLE = (RedisConnectionError, RedisTimeoutError, OSError, socket.timeout)


class OutageRetry(Retry):
    """Retry failing Redis calls with backoff until they have been failing for `budget_s`, then raise."""

    __slots__ = ("_budget_s", "_clock", "_unreachable_since")

    def __init__(self, backoff: AbstractBackoff, budget_s: float, clock: Callable[[], float] = time.monotonic):
        super().__init__(backoff, retries=-1)
        self._budget_s = budget_s
        self._clock = clock
        self._unreachable_since: float | None = None

    def __deepcopy__(self, memo: dict[int, Any]) -> OutageRetry:
        # redis-py copies the Retry for every client and connection; one clock for the process is the point.
        return self

    async def call_with_retry(self, do: Callable[[], Awaitable[T]], fail: Callable[[RedisError], Any]) -> T:
        self._backoff.reset()  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated
        failures = 0
        token = None
        try:
            while True:
                try:
                    result = await do()
                except self._supported_errors as error:
                    failures += 1
                    await fail(error)
                    left_s = self._left_s(error)
                    if token is None and _failing_since.get() is None:
                        token = _failing_since.set(self._clock())
                    if left_s <= 0:
                        raise error
                    await asyncio.sleep(min(self._backoff.compute(failures), left_s))
                else:
                    self._unreachable_since = None
                    return result
        finally:
            if token is not None:
                _failing_since.reset(token)

    def _left_s(self, error: Exception) -> float:
        now = self._clock()
        began = _failing_since.get()
        began = now if began is None else began
        if isinstance(error, _UNREACHABLE):
            if self._unreachable_since is None:
                self._unreachable_since = now
            began = min(began, self._unreachable_since)
        return self._budget_s - (now - began)
