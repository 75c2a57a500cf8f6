"""Duties: the workers' periodic chores (channel upkeep, sweeps), each run by one worker at a time across all.

Every worker process runs a `DutyRunner`, but a duty's run belongs to whichever worker first claims its lease
in Redis (`SET NX` with the duty's interval as its lifetime), so across any number of processes a duty runs
at most once per interval. While a run lasts, its owner holds a running lock that it keeps renewing, so a run
longer than the interval never overlaps the next one. A worker that dies mid-run stops renewing: its lock
expires within RUNNING_TTL_S, and another worker takes the duty once the lease has run out. A worker stopped
mid-run (SIGTERM) gives up both at once, so the next worker need not wait for the interval.

Each run's outcome is kept in a hash (started, finished, ok, summary or error) for `crmflow status`-style
reports. A failed run (one that raises, e.g. `DutyIncomplete` for a chore done only in part) is logged at
error level and tried again after RETRY_AFTER_FAILURE_S instead of a whole interval later.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from workers import keys
from workers.cancellation import raise_if_cancelled

logger = logging.getLogger("crmflow.duties")

# The running lock's lifetime; renewed every third of it while the run lasts.
RUNNING_TTL_S = 30.0
# Longest sleep between two claims, whatever the interval: a worker notices a lease given up promptly.
MAX_NAP_S = 60.0
# Wait after Redis failed while claiming, before trying again.
REDIS_NAP_S = 5.0
# A failed run is tried again this soon (or after the interval, when that is shorter), not a whole interval later.
RETRY_AFTER_FAILURE_S = 60.0

# Deletes KEYS[1] only when it still holds ARGV[1] (our own lease or lock, not a successor's).
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
# Extends KEYS[1] to ARGV[2] ms only when it still holds ARGV[1].
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""


class DutyIncomplete(Exception):
    """A run did part of its chore: recorded as failed (its message as the error) and tried again soon."""


@dataclass(frozen=True)
class Duty:
    """A chore run every `interval_s` seconds by one worker; `run` returns a one-line summary of what it did."""

    name: str
    interval_s: float
    run: Callable[[], Awaitable[str]]


class DutyRunner:
    """Runs its duties, each when this worker wins its lease; `start` spawns the loops, `stop` ends them."""

    def __init__(
        self,
        redis: Redis,
        duties: Sequence[Duty],
        *,
        owner: str,
        clock: Callable[[], float] = time.time,
        running_ttl_s: float = RUNNING_TTL_S,
        retry_after_failure_s: float = RETRY_AFTER_FAILURE_S,
    ) -> None:
        self._redis = redis
        self._duties = [duty for duty in duties if duty.interval_s > 0]
        self._owner = owner
        self._clock = clock
        self._running_ttl_ms = max(int(running_ttl_s * 1000), 1)
        self._retry_ms = max(int(retry_after_failure_s * 1000), 1)
        self._tasks: list[asyncio.Task[None]] = []
        self._release = redis.register_script(_RELEASE)
        self._renew = redis.register_script(_RENEW)

    @property
    def names(self) -> list[str]:
        return [duty.name for duty in self._duties]

    def start(self) -> None:
        """Start one loop per duty (call from inside the worker's event loop)."""
        self._tasks = [asyncio.create_task(self._loop(duty), name=f"duty:{duty.name}") for duty in self._duties]

    async def stop(self) -> None:
        """Cancel the loops; a run in progress gives up its lease and lock so that another worker takes over."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    async def _loop(self, duty: Duty) -> None:
        while True:
            try:
                ran = await self.run_once(duty)
                nap_s = duty.interval_s if ran else await self._until_due(duty)
            except (RedisError, OSError) as exc:
                logger.warning("duty %s: Redis failed (%s: %s); trying again", duty.name, type(exc).__name__, exc)
                nap_s = REDIS_NAP_S
            except Exception:  # the loop must outlive anything unforeseen; the next attempt may do better
                logger.exception("duty %s: unexpected failure; trying again", duty.name)
                nap_s = REDIS_NAP_S
            raise_if_cancelled()
            # A little jitter, so that workers started together do not all ask at the same moment.
            await asyncio.sleep(min(nap_s, MAX_NAP_S) + random.uniform(0, min(0.5, duty.interval_s / 10)))

    async def _until_due(self, duty: Duty) -> float:
        lease = keys.duty_lease(duty.name)
        remaining_ms = await self._redis.pttl(lease)
        interval_ms = max(int(duty.interval_s * 1000), 1)
        if remaining_ms > interval_ms:
            # Claimed under a longer interval (before a restart with a shorter one): the new interval rules.
            await self._redis.pexpire(lease, interval_ms)
            remaining_ms = interval_ms
        return max(remaining_ms, 0) / 1000 if remaining_ms > 0 else 0.05

    async def run_once(self, duty: Duty) -> bool:
        """Claim the duty's lease and, when won and no run is under way, run it once; True when it ran."""
        lease, running = keys.duty_lease(duty.name), keys.duty_running(duty.name)
        interval_ms = max(int(duty.interval_s * 1000), 1)
        if not await self._redis.set(lease, self._owner, nx=True, px=interval_ms):
            return False
        if not await self._redis.set(running, self._owner, nx=True, px=self._running_ttl_ms):
            # A run that began in an earlier interval is still going; this interval's run is skipped.
            logger.info("duty %s: the previous run is still going; skipping this one", duty.name)
            return True
        finished = succeeded = False
        try:
            succeeded = await self._run(duty)
            finished = True
        finally:
            with contextlib.suppress(RedisError, OSError):
                await self._release(keys=[running], args=[self._owner])
                if not finished:
                    await self._release(keys=[lease], args=[self._owner])
                elif not succeeded and self._retry_ms < interval_ms:
                    await self._renew(keys=[lease], args=[self._owner, self._retry_ms])
        return True

    async def _run(self, duty: Duty) -> bool:
        """Run the duty once and record how it went; True when it succeeded."""
        started = self._clock()
        await self._record(duty, {"started_at": started, "owner": self._owner, "state": "running"})
        renewer = asyncio.create_task(self._keep_running(duty))
        try:
            summary = await duty.run()
        except asyncio.CancelledError:
            await self._record(duty, {"state": "interrupted", "finished_at": self._clock()})
            raise
        except Exception as exc:  # any failure of a chore is logged and tried again after the interval
            logger.error("duty %s failed: %s: %s", duty.name, type(exc).__name__, exc)
            await self._record(duty, {"state": "failed", "finished_at": self._clock(), "error": _one_line(exc)})
            return False
        else:
            took = self._clock() - started
            logger.info("duty %s done in %.1fs: %s", duty.name, took, summary)
            finished = self._clock()
            # last_ok_at outlives failed runs: crmflow_duty_last_completed_timestamp_seconds (workers/metrics.py).
            fields = {"state": "ok", "finished_at": finished, "last_ok_at": finished, "summary": summary, "error": ""}
            await self._record(duty, fields)
            return True
        finally:
            renewer.cancel()
            # asyncio.wait, not `await renewer` under suppress(CancelledError): a cancellation of this run's own
            # task arriving here (the worker stopping) must go on up, not be taken for the renewer's and
            # swallowed, which left the duty's loop running and the worker's stop waiting for it for ever.
            await asyncio.wait({renewer})

    async def _keep_running(self, duty: Duty) -> None:
        running = keys.duty_running(duty.name)
        while True:
            await asyncio.sleep(self._running_ttl_ms / 3000)
            with contextlib.suppress(RedisError, OSError):
                if not await self._renew(keys=[running], args=[self._owner, self._running_ttl_ms]):
                    logger.warning("duty %s: its running lock expired under this run; another may start", duty.name)

    async def _record(self, duty: Duty, fields: dict[str, Any]) -> None:
        with contextlib.suppress(RedisError, OSError):
            mapping: dict[str | bytes, str | bytes | int | float] = {k: str(v) for k, v in fields.items()}
            await self._redis.hset(keys.duty_state(duty.name), mapping=mapping)  # type: ignore[misc]


async def duty_state(redis: Redis, name: str) -> dict[str, str]:
    """The last run of duty `name` as recorded (empty when it never ran): state, started_at, finished_at, ..."""
    raw: dict[bytes | str, bytes | str] = await redis.hgetall(keys.duty_state(name))  # type: ignore[misc]
    return {_text(k): _text(v) for k, v in raw.items()}


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _one_line(exc: BaseException) -> str:
    return " ".join(f"{type(exc).__name__}: {exc}".split())[:500]
