"""Status: what crmflow is doing right now, read from Redis (`collect_status`), for `crmflow status` and the console.

Read-only: nothing here writes, trims or claims anything, so a status view can run as often as it likes next
to the workers. Every part comes from what the other parts already record:

- the queue: arq's sorted set (keys.QUEUE_NAME), scored by when each job is due, in epoch ms; a job stays in it
  while it runs, so `depth` counts jobs waiting, deferred (a retry's back-off) and running, and the oldest
  due job's age says how far behind the workers are;
- workers alive: crmflow's own heartbeats (workers/heartbeat.py), gone within HEARTBEAT_TTL_S of a death;
- dead letters: counted by error code, server-side, so that a large store costs no transfer (workers/
  deadletters.py keeps them);
- the last notification the receiver accepted per source (keys.last_notification, written by the enqueue
  script in workers/queue.py);
- the duties' last runs (workers/duties.py): the Zoho channel upkeep ("zoho-channels", with the channels that
  could not be kept, workers/channel_upkeep.py) and each source's sweep ("sweep:<source>", with its modules'
  cursors, workers/sweep.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from redis.asyncio import Redis

from workers import keys
from workers.channel_upkeep import DUTY_NAME as CHANNEL_DUTY
from workers.channel_upkeep import ChannelFailures, Failure
from workers.deadletters import RETENTION as DEADLETTER_RETENTION
from workers.duties import duty_state
from workers.heartbeat import WorkerFacts, live_workers

SWEEP_DUTY_PREFIX = "sweep:"
# Letters counted per script call: each call holds Redis for a few milliseconds at most.
_COUNT_BATCH = 500
# ARGV: the letter key prefix, then letter ids. Returns a flat list: error code, count, ... for the letters that
# still exist ("?" for one that cannot be read as a letter).
_COUNT_BY_ERROR = """
local counts, order = {}, {}
for i = 2, #ARGV do
  local raw = redis.call('GET', ARGV[1] .. ARGV[i])
  if raw then
    local ok, letter = pcall(cjson.decode, raw)
    local code = '?'
    if ok and type(letter) == 'table' and type(letter['error_code']) == 'string' then code = letter['error_code'] end
    if counts[code] == nil then
      counts[code] = 0
      order[#order + 1] = code
    end
    counts[code] = counts[code] + 1
  end
end
local flat = {}
for _, code in ipairs(order) do
  flat[#flat + 1] = code
  flat[#flat + 1] = counts[code]
end
return flat
"""


@dataclass(frozen=True)
class QueueState:
    """The job queue: how many jobs it holds, how many of those are due, and how long the oldest due one waited."""

    depth: int
    due: int
    # None when no job is due (an empty queue, or only retries waiting out their back-off).
    oldest_age_s: float | None


@dataclass(frozen=True)
class DutyRun:
    """A duty's last run as workers/duties.py recorded it; `state` is running, ok, failed or interrupted."""

    name: str
    state: str
    owner: str
    started_at: datetime | None
    finished_at: datetime | None
    summary: str
    error: str


@dataclass(frozen=True)
class ChannelState:
    """Zoho's watch channels: the upkeep duty's last run (None: never ran) and the channels that could not be kept."""

    upkeep: DutyRun | None
    failures: Mapping[str, Failure]


@dataclass(frozen=True)
class SweepState:
    """One source's sweeps: the duty's last run (None: never ran) and each module's cursor."""

    source: str
    last_run: DutyRun | None
    # Module -> every record modified before this time has been queued.
    cursors: Mapping[str, datetime]


@dataclass(frozen=True)
class Status:
    """Everything `crmflow status` shows, as of `at`."""

    at: datetime
    queue: QueueState
    workers: tuple[WorkerFacts, ...]
    # Error code -> letters kept with it, most first.
    deadletters: Mapping[str, int]
    # Source -> when the receiver last accepted one of its notifications (None: not within the key's lifetime).
    last_notifications: Mapping[str, datetime | None]
    channels: ChannelState
    sweeps: tuple[SweepState, ...] = field(default=())

    @property
    def deadletters_total(self) -> int:
        return sum(self.deadletters.values())

    def to_json(self) -> dict[str, Any]:
        """The status as JSON-ready values (times as ISO 8601 in UTC). Pure."""
        return {
            "at": _iso(self.at),
            "queue": {"depth": self.queue.depth, "due": self.queue.due, "oldest_age_s": self.queue.oldest_age_s},
            "workers": [
                {
                    "worker_id": w.worker_id,
                    "host": w.host,
                    "pid": w.pid,
                    "started_at": _iso(w.started_at),
                    "version": w.version,
                    "sources": list(w.sources),
                    "beat_at": _iso(w.beat_at),
                }
                for w in self.workers
            ],
            "deadletters": {"total": self.deadletters_total, "by_error": dict(self.deadletters)},
            "last_notifications": {s: _iso(at) for s, at in self.last_notifications.items()},
            "channels": {
                "upkeep": _run_json(self.channels.upkeep),
                "failures": {
                    cid: {"reason": f.reason, "at": f.at, "by": f.by} for cid, f in self.channels.failures.items()
                },
            },
            "sweeps": [
                {
                    "source": s.source,
                    "last_run": _run_json(s.last_run),
                    "cursors": {module: _iso(at) for module, at in s.cursors.items()},
                }
                for s in self.sweeps
            ],
        }


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat()


def _run_json(run: DutyRun | None) -> dict[str, Any] | None:
    if run is None:
        return None
    return {
        "name": run.name,
        "state": run.state,
        "owner": run.owner,
        "started_at": _iso(run.started_at),
        "finished_at": _iso(run.finished_at),
        "summary": run.summary,
        "error": run.error,
    }


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _epoch_s(value: str | None) -> datetime | None:
    """A duty's recorded time (str() of epoch seconds) as a datetime; None when absent or unreadable."""
    try:
        return datetime.fromtimestamp(float(value), UTC) if value else None
    except (ValueError, OverflowError, OSError):
        return None


def _epoch_ms(value: bytes | str | None) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(value) / 1000, UTC) if value is not None else None
    except (ValueError, OverflowError, OSError):
        return None


def duty_run(name: str, recorded: Mapping[str, str]) -> DutyRun | None:
    """A duty's last run from its state hash (None when it never ran). Pure."""
    if not recorded:
        return None
    return DutyRun(
        name=name,
        state=recorded.get("state", "unknown"),
        owner=recorded.get("owner", ""),
        started_at=_epoch_s(recorded.get("started_at")),
        finished_at=_epoch_s(recorded.get("finished_at")),
        summary=recorded.get("summary", ""),
        error=recorded.get("error", ""),
    )


def queue_state(depth: int, due: int, oldest_score_ms: float | None, now: datetime) -> QueueState:
    """The queue's state from its size, its due jobs and the lowest score (when due, epoch ms). Pure."""
    now_ms = now.timestamp() * 1000
    oldest = None if oldest_score_ms is None or oldest_score_ms > now_ms or due == 0 else (now_ms - oldest_score_ms)
    return QueueState(depth=depth, due=due, oldest_age_s=None if oldest is None else round(oldest / 1000, 3))


def by_count(counts: Iterable[tuple[str, int]]) -> dict[str, int]:
    """Counts summed per key, most first (then by key). Pure."""
    total: dict[str, int] = {}
    for code, count in counts:
        total[code] = total.get(code, 0) + count
    return dict(sorted(total.items(), key=lambda item: (-item[1], item[0])))


def _between(key: str, prefix: str, suffix: str) -> str:
    return key[len(prefix) : len(key) - len(suffix)] if key.startswith(prefix) and key.endswith(suffix) else ""


async def _scan(redis: Redis, pattern: str) -> list[str]:
    return sorted({_text(name) async for name in redis.scan_iter(match=pattern, count=500)})


async def read_queue(redis: Redis, now: datetime) -> QueueState:
    """The queue's depth, due jobs and oldest due job (one round trip)."""
    async with redis.pipeline(transaction=False) as pipe:
        pipe.zcard(keys.QUEUE_NAME)
        pipe.zcount(keys.QUEUE_NAME, "-inf", int(now.timestamp() * 1000))
        pipe.zrange(keys.QUEUE_NAME, 0, 0, withscores=True)
        depth, due, lowest = await pipe.execute()
    return queue_state(int(depth), int(due), float(lowest[0][1]) if lowest else None, now)


async def count_deadletters(redis: Redis, now: datetime) -> dict[str, int]:
    """Dead letters kept (last failure within the retention), by error code, most first."""
    cutoff = (now - DEADLETTER_RETENTION).timestamp()
    ids = [_text(raw) for raw in await redis.zrangebyscore(keys.DEADLETTER_INDEX, f"({cutoff}", "+inf")]
    script = redis.register_script(_COUNT_BY_ERROR)
    counts: list[tuple[str, int]] = []
    for start in range(0, len(ids), _COUNT_BATCH):
        flat = await script(args=[keys.DEADLETTER_PREFIX, *ids[start : start + _COUNT_BATCH]])
        counts += [(_text(flat[i]), int(flat[i + 1])) for i in range(0, len(flat), 2)]
    return by_count(counts)


async def read_last_notifications(redis: Redis, sources: Iterable[str]) -> dict[str, datetime | None]:
    """When the receiver last accepted a notification from each of `sources` and any other source seen."""
    found = await _scan(redis, keys.LAST_NOTIFICATION_PATTERN)
    names = sorted(set(sources) | {name.removeprefix(keys.LAST_NOTIFICATION_PREFIX) for name in found})
    if not names:
        return {}
    values = await redis.mget([keys.last_notification(name) for name in names])
    return {name: _epoch_ms(value) for name, value in zip(names, values, strict=True)}


async def read_duties(redis: Redis) -> dict[str, DutyRun]:
    """Every duty's last run, by name."""
    found = await _scan(redis, keys.DUTY_STATE_PATTERN)
    names = [_between(key, keys.DUTY_PREFIX, keys.DUTY_STATE_SUFFIX) for key in found]
    runs: dict[str, DutyRun] = {}
    for name in filter(None, names):
        run = duty_run(name, await duty_state(redis, name))
        if run is not None:
            runs[name] = run
    return runs


async def read_cursors(redis: Redis) -> dict[str, dict[str, datetime]]:
    """Every sweep cursor: source -> module -> time."""
    names = await _scan(redis, keys.SWEEP_CURSOR_PATTERN)
    if not names:
        return {}
    values = await redis.mget(names)
    cursors: dict[str, dict[str, datetime]] = {}
    for name, value in zip(names, values, strict=True):
        source, _, module = _between(name, keys.SWEEP_PREFIX, keys.SWEEP_CURSOR_SUFFIX).partition(":")
        at = _epoch_ms(value)
        if source and module and at is not None:
            cursors.setdefault(source, {})[module] = at
    return cursors


def sweep_states(runs: Mapping[str, DutyRun], cursors: Mapping[str, Mapping[str, datetime]]) -> tuple[SweepState, ...]:
    """One SweepState per source that has a sweep duty's run or a cursor, by source. Pure."""
    sources = {name.removeprefix(SWEEP_DUTY_PREFIX) for name in runs if name.startswith(SWEEP_DUTY_PREFIX)}
    return tuple(
        SweepState(source, runs.get(f"{SWEEP_DUTY_PREFIX}{source}"), dict(sorted(cursors.get(source, {}).items())))
        for source in sorted(sources | set(cursors))
    )


async def collect_status(redis: Redis, now: datetime, sources: Iterable[str] = ()) -> Status:
    """Everything `crmflow status` shows, read from Redis as of `now` (RedisError passes through).

    `sources`: the sources to report a last notification for even when none came (those seen are always there).
    """
    runs = await read_duties(redis)
    return Status(
        at=now,
        queue=await read_queue(redis, now),
        workers=tuple(await live_workers(redis, now)),
        deadletters=await count_deadletters(redis, now),
        last_notifications=await read_last_notifications(redis, sources),
        channels=ChannelState(upkeep=runs.get(CHANNEL_DUTY), failures=await ChannelFailures(redis).all()),
        sweeps=sweep_states(runs, await read_cursors(redis)),
    )


def age(moment: datetime | None, now: datetime) -> timedelta | None:
    """How long before `now` `moment` was (None stays None). Pure."""
    return None if moment is None else now - moment
