"""Record lock: one job at a time per record; taking it is the job's first round trip, and it never spins.

The same script reads, once the lock is taken, what a process_change job needs before it fetches: it claims
the events coalesced into the job (workers/queue.py `claim_coalesced`, the same script) and reads the record's
snapshot and own-write entries (workers/own_writes.py `load_state`). Under the lock nothing else writes them,
so reading them before the fetch is reading them after it. A job that finishes ends in one script as well
(`RecordLock.end`): the record's new state, the lock's release and the job's event log entry.

A job takes its record's lock (keys.lock, a token with a timeout longer than any job may run, so that a lock
held by a killed worker frees itself) in one script that also reads how many of its runs did not count as
tries (keys.rate_limited: waits for a rate limit or for this lock). When the lock is taken, the same script
counts this run as such a wait and notes when the waiting began (keys.lock_wait), and the job is deferred at
once (workers/jobs.py), so that it does not hold one of the worker's slots while another job of the record
runs. The deferral is short at first and grows with the time already waited (`defer_s`), so a record's next
job starts soon after the running one ends, and a lock held for long is polled ever more rarely. The time
waited is counted per holder: only a lock held by one run for longer than its timeout (a stuck lock) makes
the waiting job's further runs tries.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from redis.asyncio import Redis

from workers import keys
from workers.diff import Snapshot
from workers.eventlog import WRITE_SCRIPT, LogWrite
from workers.own_writes import DELETE_IF_SAME_SCRIPT, Entries, StateSave, decode_state
from workers.queue import CLAIM_SCRIPT

# KEYS: the lock, the job's rate-limited counter, its lock-wait key; with reads, also the record's queued marker,
# the job's coalesced key, the record's snapshot and its own-writes hash. ARGV: the token, the lock's timeout
# (ms), now (epoch ms), the counter's and the wait key's TTL (s), the longest wait (ms) that is not a try, "1"
# to read (the job's id in ARGV[7]: "" when its events are never coalesced, so nothing is claimed). A lock that
# already holds this run's token counts as taken (its timeout renewed): a take sent again after its reply was
# lost (workers/main.py's OutageRetry re-sends on a lost connection) must not find its own lock busy. Returns
# {taken (1/0), runs not counted as tries before this one, ms waited for the lock so far (0 when taken)}, and
# when taken with reads, what the claim returned, the snapshot (false: none) and the own-writes entries. A run
# that finds the lock taken is counted as a wait only while the waiting for the same holder (the lock-wait key
# keeps "since:holder's token"; a new holder restarts it) has lasted at most that long: a record busy with one
# job after another never turns a waiting job's runs into tries, a lock stuck with one holder does.
_TAKE = (
    "local function claim(KEYS, ARGV)\n"
    + CLAIM_SCRIPT.strip()
    + """
end
local waited_runs = tonumber(redis.call('GET', KEYS[2]) or '0')
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] or redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  if holder == ARGV[1] then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
  end
  redis.call('DEL', KEYS[3])
  if ARGV[6] ~= '1' then
    return {1, waited_runs, 0}
  end
  local claimed = {}
  if ARGV[7] ~= '' then
    claimed = claim({KEYS[4], KEYS[5]}, {ARGV[7]})
  end
  return {1, waited_runs, 0, claimed, redis.call('GET', KEYS[6]), redis.call('HGETALL', KEYS[7])}
end
local wait = redis.call('GET', KEYS[3]) or ''
local cut = string.find(wait, ':', 1, true)
local since = cut and string.sub(wait, 1, cut - 1)
if not cut or string.sub(wait, cut + 1) ~= holder then
  redis.call('SET', KEYS[3], ARGV[3] .. ':' .. holder, 'EX', ARGV[4])
  since = ARGV[3]
end
local waited = tonumber(ARGV[3]) - tonumber(since)
if waited <= tonumber(ARGV[5]) then
  redis.call('INCR', KEYS[2])
  redis.call('EXPIRE', KEYS[2], ARGV[4])
end
return {0, waited_runs, waited}
"""
)

# KEYS[1]: the lock. ARGV[1]: the token. Deleted only while it is still this job's (it may have timed out and
# been taken by another job since).
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

# A job's last round trip (`RecordLock.end`): the new state, the lock's release and the event log entry, in one
# script, so that the three are written together or not at all. KEYS: the lock, the record's snapshot and
# own-writes hash, the event log and the record's index in it. ARGV: the token, "1" to save the state, the
# snapshot, its TTL (s), the number n of own-write name/value pairs to delete where unchanged, the n pairs, then
# "1" to write the entry and the event log script's three arguments. Returns {released (1/0), the entry's id or
# false}. Only a run that still holds the lock writes anything: one whose lock timed out may have been followed
# by another job that saved a newer state, and a script sent again after its reply was lost (workers/main.py's
# OutageRetry) finds its lock already released by its first run, which wrote everything once. Such a run
# saves nothing (the ledger keeps its actions from repeating; the record's next job diffs from the last state
# saved) and logs no entry.
_END = (
    "local function delete_if_same(KEYS, ARGV)\n"
    + DELETE_IF_SAME_SCRIPT.strip()
    + "\nend\nlocal function log(KEYS, ARGV)\n"
    + WRITE_SCRIPT.strip()
    + """
end
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return {0, false}
end
local n = tonumber(ARGV[5])
if ARGV[2] == '1' then
  redis.call('SET', KEYS[2], ARGV[3], 'EX', ARGV[4])
  if n > 0 then delete_if_same({KEYS[3]}, {unpack(ARGV, 6, 5 + n)}) end
end
local released = 0
if redis.call('GET', KEYS[1]) == ARGV[1] then released = redis.call('DEL', KEYS[1]) end
local at = 6 + n
local id = false
if ARGV[at] == '1' then id = log({KEYS[4], KEYS[5]}, {ARGV[at + 1], ARGV[at + 2], ARGV[at + 3]}) end
return {released, id}
"""
)

# The first deferral, and the most any one may last; in between, a fraction of the time already waited.
FIRST_DEFER_S = 0.02
MAX_DEFER_S = 1.0
DEFER_SHARE = 0.5


@dataclass(frozen=True)
class StateReads:
    """What a process_change job reads with its lock: its coalesced events (the record's queued marker and the
    job's coalesced key, workers/queue.py; None: its events are never coalesced), and the record's state."""

    job_id: str
    claim: tuple[str, str] | None
    snapshot_key: str
    own_writes_key: str


@dataclass(frozen=True)
class State:
    """What the reads found, as read: the claim's answer (a flat HGETALL list), the snapshot (None: none) and the
    own-write entries (a flat HGETALL list). Decoded by the job (`decoded`), where a corrupt value is the job's
    failure like any other."""

    claimed: list[bytes | str]
    raw_snapshot: bytes | None
    raw_own_writes: list[bytes | str]

    def decoded(self) -> tuple[Snapshot | None, Entries]:
        """The snapshot and the own-write entries."""
        return decode_state(self.raw_snapshot, self.raw_own_writes)


@dataclass(frozen=True)
class Taken:
    """What trying to take the lock found: whether this job has it, the job's runs that were not tries before
    this one, and how long (s) it has waited for the lock so far."""

    taken: bool
    waited_runs: int
    waiting_s: float
    # With reads, when taken.
    state: State | None = None

    def counted_as_wait(self, max_wait_s: float) -> bool:
        """Whether this run (which found the lock taken) was counted as a wait, not a try."""
        return not self.taken and self.waiting_s <= max_wait_s


def defer_s(waiting_s: float, jitter: float) -> float:
    """How long to defer a job that found its record's lock taken, having waited `waiting_s`. Pure.

    `jitter` in [0, 1) adds up to 10 %, so that jobs waiting together do not all come back at once.
    """
    base = min(MAX_DEFER_S, max(FIRST_DEFER_S, waiting_s * DEFER_SHARE))
    return base * (1 + 0.1 * jitter)


class RecordLock:
    """The record's lock for one run of one job (a fresh token per run)."""

    def __init__(self, redis: Redis, key: str, job_id: str, *, timeout_s: float, max_wait_s: float) -> None:
        self._redis = redis
        self.max_wait_s = max_wait_s
        self.key = key
        self._job_id = job_id
        self._timeout_ms = int(timeout_s * 1000)
        self.token = uuid.uuid4().hex
        self._take = redis.register_script(_TAKE)
        self._release = redis.register_script(_RELEASE)
        self._end = redis.register_script(_END)

    async def take(self, now_ms: int, reads: StateReads | None = None) -> Taken:
        """Take the lock if it is free, in one round trip with what the job's waits so far were and, when
        taken, what `reads` names."""
        names = [self.key, keys.rate_limited(self._job_id), keys.lock_wait(self._job_id)]
        args: list[str | int] = [self.token, self._timeout_ms, now_ms, keys.RATE_LIMITED_TTL_S]
        args.append(int(self.max_wait_s * 1000))
        if reads is not None:
            marker, coalesced = reads.claim or ("", "")
            names += [marker or self.key, coalesced or self.key, reads.snapshot_key, reads.own_writes_key]
            args += ["1", reads.job_id if reads.claim is not None else ""]
        found = await self._take(keys=names, args=args)
        taken, waited_runs, waited_ms = (int(value) for value in found[:3])
        state = None
        if taken == 1 and reads is not None:
            claimed, raw_snapshot, raw_entries = found[3:6]
            state = State(list(claimed), raw_snapshot, list(raw_entries))
        return Taken(taken == 1, waited_runs, max(waited_ms, 0) / 1000, state)

    async def release(self) -> bool:
        """Let the lock go, if it is still this run's; whether it was."""
        return bool(await self._release(keys=[self.key], args=[self.token]))

    async def end(self, save: StateSave | None, entry: LogWrite | None) -> bool:
        """Save the new state (if any), let the lock go and write the event log entry (if any), in one round trip,
        only while the lock is still this run's; whether it was (if not, nothing was written)."""
        names = [self.key, self.key, self.key, self.key, self.key]
        args: list[str | int | bytes] = [self.token]
        if save is not None:
            names[1:3] = [save.snapshot_key, save.own_writes_key]
            args += ["1", save.snapshot, keys.SNAPSHOT_TTL_S, len(save.pairs), *save.pairs]
        else:
            args += ["0", "", 0, 0]
        if entry is not None:
            names[3:5] = list(entry.keys)
            args += ["1", *entry.args]
        else:
            args.append("0")
        released, _ = await self._end(keys=names, args=args)
        return bool(released)
