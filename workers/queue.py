"""Enqueue: put ChangeEvents on the arq queue with deterministic job ids, so redeliveries are not queued twice.

The producer side of the queue, used by the receiver, the CLI (dead-letter replay), the sweep, the demo and
the tests; workers/main.py is the consumer side and workers/contract.py the job format between them.

Jobs are written in arq's own format and with arq's own rule (a job id that is queued, or whose result is
still kept, is not queued again), but by one Lua script per chunk of up to ENQUEUE_CHUNK events instead of
arq's several round trips per job: a callback naming 50,000 records costs fifty round trips, not hundreds of
thousands, and the event loop gets control back between chunks. The receiver goes one step further: the
jobs of the requests that arrive together share one call of the script (receiver/batch.py `EnqueueBatch`,
which keeps to ENQUEUE_CHUNK jobs per call), each request getting back the outcome of each of its jobs
(`run_enqueue`). When Redis refuses writes (over maxmemory, a read-only replica) it refuses the script at its
first write, so such a failed call wrote nothing. A call whose reply was lost (a timeout), or a script stopped
by an error halfway (a corrupt key), may have written some of its jobs: each is written whole (its job key
and its place in the queue together), so the sender's retry finds those as duplicates and queues the rest.

HubSpot redeliveries (receiver/dedupe.py). A job may carry delivery keys (keys.seen): the webhook events it
was made of. The script skips a job all of whose events were seen (SEEN), returns which were seen and does
nothing else when only some were (the receiver makes the job again from the others, as if only they had been
sent), and otherwise marks them seen for SEEN_TTL_S in the same call that queues the job, folds it or finds
its duplicate: an event is never marked seen without its job, nor its job queued twice.

Coalescing (a burst of notifications for one record costs one fetch). While a process_change job for a
record is queued and not yet started, a new event for the same record is not queued again: the same script
folds it into the queued job instead (counted as `coalesced` in the day's CRM call counts). The record's
marker (keys.queued_marker) names that job; the job takes the marker when it starts, before it fetches
(`claim_coalesced`), so a change notified after the fetch began always gets a job of its own, and every
event folded in was notified before the fetch, which therefore sees its change. What a job takes from its
event beyond the record, and how a folded event keeps it:

- changed_fields and notified_at_ms feed the lagging-read check (workers/diff.py `looks_lagging`): the
  marker keeps the union of the folded events' fields and the latest notified_at_ms, and the job checks
  with those, which flags every read that any one of the events would have flagged. The job's own
  arguments stay as queued (arq's format untouched); the additions move to keys.coalesced(job id) when it
  starts, so a retry of the job uses them too.
- operation: insert and update are handled alike (fetch, diff); a delete is never folded, nor folded into,
  and sets no marker: it deletes the snapshot, whatever else is queued.
- channel_id only travels into dead letters; the queued job keeps its own.
- replays (`replay` > 0, `crmflow dlq replay`) are never folded and set no marker: the operator asked for
  that very job.
- sweep events (`origin` "sweep") are never folded and set no marker: their job checks the fetched record
  against the modified time the CRM listed, and reads a first-seen record against the sweep's window
  (`since_ms`), which a notification's job does not; a sweep event for a record whose notification job is
  queued simply gets its own job, which finds nothing left to do or does what the other did not.
- A job that has started but not yet claimed its marker (it waits for the record's lock) keeps what was
  folded into it: a new job for the record moves the marker's additions to the started job's coalesced key
  before taking the marker over.
- A marker whose job has started (arq's in-progress key), or is gone, is replaced by the new job's.

What folding cannot cover is a CRM whose reads lag behind its notifications and return a state between the
snapshot and the latest change: the check above flags a read no newer than the snapshot, as it does without
folding; a read that is newer but not the newest is caught by the next change or the sweep.

The receiver's last notification per source (`crmflow status`): `notified_by` makes the same script record
the time in keys.last_notification (one key per source in the call, several when requests of several sources
share it), so an accepted request costs no round trip more for it. A request with nothing to queue (every
event ignored) runs the script for that write alone, or shares a call with others.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from arq.connections import ArqRedis
from arq.jobs import serialize_job
from redis.asyncio import ConnectionPool, Redis
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError

from workers import keys
from workers.contract import PROCESS_CHANGE, QUEUE_NAME, ChangeEvent, dumps, loads
from workers.crm.limits import day_of
from workers.errors import QueueUnavailableError

ENQUEUE_CHUNK = 1000  # jobs per script call: a call's arguments stay small, the loop gets control between calls
# arq's default: a job not started within a day of being due is dropped (workers give up well before).
JOB_EXPIRY_MS = 86_400_000

# KEYS[1]: the queue. ARGV[1..11]: job key prefix, result key prefix, expiry (ms), score (ms), in-progress key
# prefix, counts TTL (s), coalesced key prefix, how many last-notification keys follow the header (n), their
# lifetime (s), when the notification came (ms; each key keeps the latest, whatever order receivers write in),
# the seen keys' lifetime (s); ARGV[12..11+n]: the last-notification keys. Then per job: id, job, marker ("" =
# never coalesced), notified_at_ms, changed fields (a JSON array), counts key, how many delivery keys follow
# (k), then its k delivery keys (crmflow:seen:…; a webhook's events the job was made of, k = 0 for others).
#
# For each job: with delivery keys, skip it when every one of them is seen already (flag 3), and touch nothing
# and return which are seen (a list: 1 seen, 0 not) when only some are (the caller builds the job again from
# the others); then, as arq's enqueue_job does, skip it when its result is still kept or it is already queued
# (flag 0); else fold it into the record's queued job when the marker names one that has not started (flag
# 2); else write it (flag 1; with a marker, make it the record's queued job: what was folded into a job that
# has started but not yet claimed its marker moves to that job's coalesced key, where its claim finds it).
# Flags 0, 1 and 2 mark the job's delivery keys seen, in the same script. Each new id goes to the queue right
# after its job key, so a script stopped by an error halfway leaves no job key without its place in the queue
# (which arq's rule would then take for a queued job forever). One script, so all of it at once; a later job
# of the same call sees what an earlier one wrote (two requests redelivering one change in one call: the
# second is a duplicate).
_ENQUEUE = """
local flags = {}
local notified, at_ms = tonumber(ARGV[8]), tonumber(ARGV[10])
for k = 12, 11 + notified do
  if at_ms > tonumber(redis.call('GET', ARGV[k]) or '0') then
    redis.call('SET', ARGV[k], ARGV[10], 'EX', ARGV[9])
  end
end
local i = 12 + notified
while i <= #ARGV do
  local id, job, marker, at, fields, counts = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], ARGV[i + 5]
  local first, last = i + 7, i + 6 + tonumber(ARGV[i + 6])
  i = last + 1
  local seen, fresh = {}, 0
  for s = first, last do
    seen[#seen + 1] = redis.call('EXISTS', ARGV[s])
    if seen[#seen] == 0 then fresh = fresh + 1 end
  end
  local flag = 0
  if last >= first and fresh == 0 then
    flag = 3
  elseif fresh < #seen then
    flag = seen
  else
    if redis.call('EXISTS', ARGV[2] .. id) == 0 and redis.call('EXISTS', ARGV[1] .. id) == 0 then
      local into = marker ~= '' and redis.call('HGET', marker, 'job')
      if into and redis.call('EXISTS', ARGV[1] .. into) == 1 and redis.call('EXISTS', ARGV[5] .. into) == 0 then
        if tonumber(at) > tonumber(redis.call('HGET', marker, 'at')) then
          redis.call('HSET', marker, 'at', at)
        end
        for _, name in ipairs(cjson.decode(fields)) do
          redis.call('HSET', marker, 'field:' .. name, '1')
        end
        redis.call('HINCRBY', marker, 'coalesced', 1)
        redis.call('HINCRBY', counts, 'coalesced', 1)
        redis.call('EXPIRE', counts, ARGV[6])
        flag = 2
      else
        redis.call('SET', ARGV[1] .. id, job, 'PX', ARGV[3])
        redis.call('ZADD', KEYS[1], ARGV[4], id)
        if marker ~= '' then
          local started = into and redis.call('EXISTS', ARGV[5] .. into) == 1
          if started and redis.call('HEXISTS', marker, 'coalesced') == 1 then
            local target, folded = ARGV[7] .. into, redis.call('HGETALL', marker)
            for j = 1, #folded, 2 do
              local name, value = folded[j], folded[j + 1]
              if name == 'at' then
                if tonumber(value) > tonumber(redis.call('HGET', target, 'at') or '0') then
                  redis.call('HSET', target, 'at', value)
                end
              elseif name == 'coalesced' then
                redis.call('HINCRBY', target, 'coalesced', value)
              elseif name ~= 'job' then
                redis.call('HSET', target, name, value)
              end
            end
            redis.call('PEXPIRE', target, ARGV[3])
          end
          redis.call('DEL', marker)
          redis.call('HSET', marker, 'job', id, 'at', at)
          redis.call('PEXPIRE', marker, ARGV[3])
        end
        flag = 1
      end
    end
    for s = first, last do
      redis.call('SET', ARGV[s], '1', 'EX', ARGV[11])
    end
  end
  flags[#flags + 1] = flag
end
return flags
"""

# KEYS: the record's marker, the job's coalesced key. ARGV: the job's id. When the marker names this job,
# it becomes the job's (renamed, keeping its expiry) if events were folded in, else it simply goes. Returns
# what was folded into the job (by this run or an earlier one of it), as HGETALL does.
_CLAIM = """
if redis.call('HGET', KEYS[1], 'job') == ARGV[1] then
  if redis.call('HEXISTS', KEYS[1], 'coalesced') == 1 then
    redis.call('RENAME', KEYS[1], KEYS[2])
  else
    redis.call('DEL', KEYS[1])
  end
end
return redis.call('HGETALL', KEYS[2])
"""
# The same, for a job that runs it within its own first script (workers/record_lock.py).
CLAIM_SCRIPT = _CLAIM


@dataclass(frozen=True)
class EnqueueResult:
    """How many events became new jobs, how many were already queued or recently done, and how many were
    folded into a record's job still waiting in the queue (accepted: the job will fetch their change)."""

    queued: int
    duplicates: int
    coalesced: int = 0


@dataclass(frozen=True)
class Coalesce:
    """How a job may take in later events for its record: the record's marker and what the event adds."""

    marker: str
    notified_at_ms: int
    changed_fields: tuple[str, ...]
    counts_key: str


@dataclass(frozen=True)
class Job:
    """One arq job to queue: its id, the function that runs it and its (JSON) arguments; `seen`: the delivery
    keys (keys.seen) of the webhook events it was made of, which the script checks and marks in its round trip."""

    id: str
    function: str
    args: tuple[Any, ...]
    coalesce: Coalesce | None = None
    seen: tuple[str, ...] = ()


# The script's answer per job: queued, a duplicate (its id queued or done), coalesced, every delivery seen
# already; or, for a job only some of whose deliveries were seen, which ones (1 seen, 0 not): nothing was done.
QUEUED, DUPLICATE, COALESCED, SEEN = 1, 0, 2, 3
Outcome = int | list[int]


def coalescing(event: ChangeEvent, now_ms: int) -> Coalesce | None:
    """How `event` may be folded into a queued job for its record (None: never; deletes, replays and sweeps). Pure."""
    if event.operation == "delete" or event.replay or event.origin == "sweep":
        return None
    return Coalesce(
        marker=keys.queued_marker(event.source, event.module, event.record_id),
        notified_at_ms=event.notified_at_ms,
        changed_fields=event.changed_fields,
        counts_key=keys.crm_calls(event.source, day_of(now_ms / 1000)),
    )


def _chunks(jobs: Iterable[Job], size: int) -> Iterator[list[Job]]:
    iterator = iter(jobs)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


def event_job(event: ChangeEvent, now_ms: int, seen: tuple[str, ...] = ()) -> Job:
    """The process_change job for `event`, under its deterministic id. Pure."""
    # The python-mode dump serializes to the same JSON as mode="json" (its values are strings, numbers and
    # tuples, which orjson writes as arrays) in half the time.
    return Job(event.job_id(), PROCESS_CHANGE, (event.model_dump(),), coalescing(event, now_ms), seen)


def job_arguments(jobs: Iterable[Job], now_ms: int, notified_by: Collection[str] = ()) -> list[str | bytes | int]:
    """The script's ARGV for `jobs`: each job id and the job exactly as arq's enqueue_job would write it, and its
    delivery keys; the last notification of each source in `notified_by` is recorded as `now_ms`. Pure."""
    args: list[str | bytes | int] = [
        keys.ARQ_JOB_PREFIX,
        keys.ARQ_RESULT_PREFIX,
        JOB_EXPIRY_MS,
        now_ms,
        keys.ARQ_IN_PROGRESS_PREFIX,
        keys.CRM_CALLS_TTL_S,
        keys.coalesced(""),
        len(notified_by),
        keys.LAST_NOTIFICATION_TTL_S,
        now_ms,
        keys.SEEN_TTL_S,
        *(keys.last_notification(source) for source in notified_by),
    ]
    for job in jobs:
        args += [job.id, serialize_job(job.function, job.args, {}, None, now_ms, serializer=dumps)]
        merge = job.coalesce
        if merge is None:
            args += ["", 0, b"[]", ""]
        else:
            args += [merge.marker, merge.notified_at_ms, dumps(list(merge.changed_fields)), merge.counts_key]
        args.append(len(job.seen))
        args += job.seen
    return args


def enqueue_script(redis: ArqRedis) -> AsyncScript:
    """The enqueue script, registered on `redis` (EVALSHA, loaded again when Redis lost it)."""
    return redis.register_script(_ENQUEUE)


async def run_enqueue(script: AsyncScript, jobs: Sequence[Job], *, notified_by: Collection[str] = ()) -> list[Outcome]:
    """One call of the enqueue script (one round trip, all of it at once): one Outcome per job, in order.

    Raises QueueUnavailableError when Redis does not answer or refuses: then the script did nothing (Redis
    refuses a script's writes at its first one, when over maxmemory, and never after: see the module's docstring).
    """
    try:
        answer: list[Outcome] = await script(keys=[QUEUE_NAME], args=job_arguments(jobs, _now_ms(), notified_by))
    except (RedisError, OSError) as exc:
        raise QueueUnavailableError(f"Redis did not accept the jobs: {type(exc).__name__}") from exc
    return answer


def _now_ms() -> int:
    return int(time.time() * 1000)


async def enqueue_jobs(redis: ArqRedis, jobs: Iterable[Job], *, notified_by: str | None = None) -> EnqueueResult:
    """Queue each job; return only once Redis has accepted every one, else raise QueueUnavailableError.

    A job whose id is queued already, or whose result arq still keeps, is a duplicate and not queued again; a
    job that may coalesce and whose record has a job queued and not started is folded into that job.

    `notified_by`: the jobs come from a notification of that source, whose time the first chunk's script
    records (keys.last_notification) at no extra round trip; with no job at all, the script runs for it alone.
    Jobs queued by chunks before a failure stay queued; the sender's retry maps to the same job ids.
    """
    queued = duplicates = coalesced = 0
    script = enqueue_script(redis)
    chunks = _chunks(jobs, ENQUEUE_CHUNK)
    first = next(chunks, [])
    for chunk in itertools.chain([first] if first or notified_by is not None else [], chunks):
        sources = (notified_by,) if notified_by is not None and chunk is first else ()
        flags = await run_enqueue(script, chunk, notified_by=sources)
        queued += flags.count(QUEUED)
        duplicates += flags.count(DUPLICATE) + flags.count(SEEN)
        coalesced += flags.count(COALESCED)
    return EnqueueResult(queued=queued, duplicates=duplicates, coalesced=coalesced)


async def enqueue_events(
    redis: ArqRedis, events: Iterable[ChangeEvent], *, notified_by: str | None = None
) -> EnqueueResult:
    """Queue a process_change job for each event, under its deterministic id, or fold it into its record's
    queued job (see enqueue_jobs and the module's docstring); `notified_by`: the receiver's source, whose last
    notification is recorded in the same round trip."""
    now_ms = _now_ms()
    jobs = (event_job(event, now_ms) for event in events)
    return await enqueue_jobs(redis, jobs, notified_by=notified_by)


async def claim_coalesced(redis: Redis, event: ChangeEvent, job_id: str) -> ChangeEvent:
    """Called by the job when it starts, before it fetches: take the record's marker if it names this job,
    and return the event with what the events folded into the job added (the latest notified_at_ms, every
    changed field). Every run of the job gets the same answer, until the job's key expires with the job."""
    if coalescing(event, 0) is None:
        return event
    marker = keys.queued_marker(event.source, event.module, event.record_id)
    raw = await redis.register_script(_CLAIM)(keys=[marker, keys.coalesced(job_id)], args=[job_id])
    return merged(event, raw)


def merged(event: ChangeEvent, claimed: list[bytes | str]) -> ChangeEvent:
    """`event` with the additions a claim returned (a flat HGETALL list). Pure."""
    pairs = [item.decode() if isinstance(item, bytes) else str(item) for item in claimed]
    found = dict(zip(pairs[::2], pairs[1::2], strict=True))
    if "coalesced" not in found:
        return event
    fields = [name.removeprefix("field:") for name in found if name.startswith("field:")]
    changed = tuple(dict.fromkeys([*event.changed_fields, *fields]))
    latest = max(event.notified_at_ms, int(found.get("at", 0)))
    return event.model_copy(update={"changed_fields": changed, "notified_at_ms": latest})


def connect_queue(redis_url: str) -> ArqRedis:
    """A lazily connecting arq client: its users start (and answer 503) even while Redis is down."""
    pool = ConnectionPool.from_url(redis_url, socket_connect_timeout=2, socket_timeout=5)
    redis = ArqRedis(connection_pool=pool, job_serializer=dumps, job_deserializer=loads, default_queue_name=QUEUE_NAME)
    redis.auto_close_connection_pool = True  # aclose() also closes the pool this function made
    return redis
