"""Worker heartbeat: each worker process keeps a short-lived key saying it is alive; `live_workers` lists them.

arq writes one health key per queue, shared by every worker and kept for an hour, so it cannot tell which
worker is alive nor notice a killed one for an hour. crmflow's heartbeat is one key per worker process
(keys.worker_heartbeat), rewritten every HEARTBEAT_INTERVAL_S with a lifetime of HEARTBEAT_TTL_S: a process
that dies stops rewriting it, and it is gone within HEARTBEAT_TTL_S; a clean stop deletes it at once. The key
holds the worker's facts as JSON (`WorkerFacts`, with the time of the last beat), so that `crmflow health
worker` (crmflow/health.py) and a status view can say who is alive, where, since when and with which CRMs.

Liveness is Redis's own: a heartbeat is live while its key exists, and Redis expires it on its own clock, so
no worker's clock is compared with a reader's (`beat_at` is for display). Readers find the keys through an
index, keys.WORKER_HEARTBEATS (worker ids by the Redis time of their last beat), written in the same round
trip as the key and trimmed to the last HEARTBEAT_TTL_S by every beat: a check reads the index and the keys
(two round trips), never the keyspace.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError

from workers import keys

logger = logging.getLogger("crmflow.heartbeat")

# How often a worker rewrites its key, and how long the key outlives the last rewrite: a dead worker's key
# is gone at most HEARTBEAT_TTL_S after its last beat (a few missed beats are tolerated before that).
HEARTBEAT_INTERVAL_S = 1.0
HEARTBEAT_TTL_S = 5.0


@dataclass(frozen=True)
class WorkerFacts:
    """What a worker's heartbeat says about it; `beat_at` is when the key was last written."""

    worker_id: str
    host: str
    pid: int
    started_at: datetime
    version: str
    sources: tuple[str, ...]
    beat_at: datetime

    def to_json(self) -> bytes:
        facts = asdict(self) | {"started_at": self.started_at.isoformat(), "beat_at": self.beat_at.isoformat()}
        return orjson.dumps(facts | {"sources": list(self.sources)})

    @classmethod
    def from_json(cls, raw: bytes | str) -> WorkerFacts:
        """Parse a heartbeat's value; ValueError when it is not one."""
        try:
            data: Any = orjson.loads(raw)
            return cls(
                worker_id=str(data["worker_id"]),
                host=str(data["host"]),
                pid=int(data["pid"]),
                started_at=datetime.fromisoformat(data["started_at"]),
                version=str(data["version"]),
                sources=tuple(str(source) for source in data["sources"]),
                beat_at=datetime.fromisoformat(data["beat_at"]),
            )
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a worker heartbeat: {exc}") from exc


def live(heartbeats: Sequence[bytes | str | None]) -> list[WorkerFacts]:
    """The workers among raw heartbeat values (gone or malformed ones left out), by host then pid. Pure."""
    found: list[WorkerFacts] = []
    for raw in heartbeats:
        if raw is None:
            continue
        try:
            found.append(WorkerFacts.from_json(raw))
        except ValueError:
            continue
    return sorted(found, key=lambda facts: (facts.host, facts.pid, facts.worker_id))


async def live_workers(redis: Redis, now: datetime) -> list[WorkerFacts]:
    """Every worker process whose heartbeat is live, by host then pid (RedisError passes through).

    Live means its key exists: Redis expires it HEARTBEAT_TTL_S after the last beat, on Redis's clock. `now`
    (the caller's clock) decides nothing, so a worker whose clock is off is still seen; it is kept for callers.
    """
    del now
    worker_ids: list[bytes | str] = await redis.zrange(keys.WORKER_HEARTBEATS, 0, -1)
    if not worker_ids:
        return []
    names = [keys.worker_heartbeat(wid.decode() if isinstance(wid, bytes) else wid) for wid in worker_ids]
    values: list[bytes | str | None] = await redis.mget(names)
    return live(values)


# One round trip per beat: the key with its lifetime, the index entry at Redis's time, the index trimmed to
# the entries of the last lifetime (older ones' keys have expired) and kept at least as long as this beat's key.
_BEAT = """
local time = redis.call('TIME')
local now_ms = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local ttl_ms = tonumber(ARGV[2])
redis.call('SET', KEYS[1], ARGV[1], 'PX', ttl_ms)
redis.call('ZADD', KEYS[2], now_ms, ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now_ms - ttl_ms - 1)
if redis.call('PTTL', KEYS[2]) < ttl_ms then
  redis.call('PEXPIRE', KEYS[2], ttl_ms)
end
return now_ms
"""


class Heartbeat:
    """Keeps one worker's heartbeat key: `start` writes it and keeps rewriting it, `stop` ends that and deletes it."""

    def __init__(
        self,
        redis: Redis,
        facts: WorkerFacts,
        *,
        clock: Callable[[], datetime],
        interval_s: float = HEARTBEAT_INTERVAL_S,
        ttl_s: float = HEARTBEAT_TTL_S,
    ) -> None:
        self._redis = redis
        self._facts = facts
        self._clock = clock
        self._interval_s = interval_s
        self._ttl_ms = max(int(ttl_s * 1000), 1)
        self._key = keys.worker_heartbeat(facts.worker_id)
        self._beat = redis.register_script(_BEAT)
        self._task: asyncio.Task[None] | None = None

    @property
    def key(self) -> str:
        return self._key

    async def beat(self) -> None:
        """Write the key once, with the current time as `beat_at`."""
        facts = WorkerFacts(**(asdict(self._facts) | {"beat_at": self._clock()}))
        index = keys.WORKER_HEARTBEATS
        await self._beat(keys=[self._key, index], args=[facts.to_json(), self._ttl_ms, facts.worker_id])

    def start(self) -> None:
        """Start beating (call from inside the worker's event loop)."""
        self._task = asyncio.create_task(self._loop(), name="heartbeat")

    async def _loop(self) -> None:
        failing = False
        while True:
            try:
                await self.beat()
                if failing:
                    logger.info("heartbeat: written again")
                failing = False
            except (RedisError, OSError) as exc:
                if not failing:
                    logger.warning("heartbeat: Redis failed (%s: %s); trying again", type(exc).__name__, exc)
                failing = True
            await asyncio.sleep(self._interval_s)

    async def cancel(self) -> None:
        """Stop beating, leaving the key to expire (for when Redis may be gone)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def stop(self) -> None:
        """Stop beating and delete the key and its index entry: this worker is no longer live (a Redis failure
        leaves them to expire)."""
        await self.cancel()
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.delete(self._key)
                pipe.zrem(keys.WORKER_HEARTBEATS, self._facts.worker_id)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            logger.warning("heartbeat: could not delete %s (%s); it expires by itself", self._key, exc)
