"""Dead letters: work that failed for good, kept in Redis with its reason for inspection and replay.

A letter about one failed action (it names a rule and an action) also carries an ActionReplay: the rule's
action as it was, the change and the record's fields the action read, so that the action can be run again
however far the record and the rules have moved on (workers/replay.py). It names the ledger entries the
failed action left pending; they live no longer than the letter, and purging the letter removes them.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict
from redis.asyncio import Redis

from workers import keys
from workers.diff import Change
from workers.ledger import Ledger
from workers.record import HistoryEntry

logger = logging.getLogger("crmflow.deadletters")
V = TypeVar("V")

INDEX_KEY = keys.DEADLETTER_INDEX  # sorted set: id -> last failure, epoch seconds
LETTER_KEY_PREFIX = keys.DEADLETTER_PREFIX

# Retention: a letter is kept this long after its last failure (its key's TTL), and at most this many
# letters are kept (the oldest last failures go first).
RETENTION = keys.DEADLETTER_RETENTION
MAX_LETTERS = keys.DEADLETTER_MAX

# Error codes of letters the worker writes about a job as a whole rather than a CRM answer.
MISSED_RESCHEDULE = "MISSED_RESCHEDULE"  # a reschedule hidden between two fetches, kept for logging by hand
MALFORMED_JOB = "MALFORMED_JOB"  # job arguments that are not a ChangeEvent
# Letters read or removed per round trip.
_READ_BATCH = 500
# Index entries removed per trim at most, so that one trim never holds Redis for long.
_TRIM_BATCH = 1000

# Atomically: drop index entries whose last failure is at or before ARGV[1], then the oldest beyond
# ARGV[2] entries; delete the letters they point to. Returns {expired, dropped}.
_TRIM = """
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[4]))
for _, id in ipairs(expired) do
  redis.call('ZREM', KEYS[1], id)
  redis.call('DEL', ARGV[3] .. id)
end
local excess = math.min(redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[2]), tonumber(ARGV[4]))
local dropped = {}
if excess > 0 then
  dropped = redis.call('ZRANGE', KEYS[1], 0, excess - 1)
  for _, id in ipairs(dropped) do
    redis.call('ZREM', KEYS[1], id)
    redis.call('DEL', ARGV[3] .. id)
  end
end
return {#expired, #dropped}
"""

# Atomically: delete each letter in ARGV[3..] whose last failure is still at or before ARGV[1] (a letter
# that failed again meanwhile is kept). Returns the ids deleted.
_REMOVE = """
local removed = {}
for i = 3, #ARGV do
  local score = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if score and (ARGV[1] == '+inf' or tonumber(score) <= tonumber(ARGV[1])) then
    redis.call('ZREM', KEYS[1], ARGV[i])
    redis.call('DEL', ARGV[2] .. ARGV[i])
    table.insert(removed, ARGV[i])
  end
end
return removed
"""


def _letter_key(letter_id: str) -> str:
    return keys.deadletter(letter_id)


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Kept(BaseModel, Generic[V]):
    """What an action read of one of a record's mappings (its fields, or their histories), and nothing else."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # The names it read, with their values; `absent`: names it looked for that the record lacked.
    values: dict[str, V] = {}
    absent: tuple[str, ...] = ()
    # True when it went through the whole mapping: then every name is kept, and only then may a replay do so.
    complete: bool = False


class ReplayRecord(BaseModel):
    """The part of a record one action read: its identity and time, and the fields and histories it looked at."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    source: str
    module: str
    id: str
    modified_time: datetime
    fields: Kept[Any] = Kept[Any]()
    # Past values of fields (HubSpot's propertiesWithHistory), oldest first.
    history: Kept[tuple[HistoryEntry, ...]] = Kept[tuple[HistoryEntry, ...]]()


class ActionReplay(BaseModel):
    """What running one failed action again takes: the action as its rule had it, and its inputs as they were.

    JSON throughout. `params` are the action's parameters as validated when the rules were loaded; `now` is
    the time the action first ran, which it may have used (Zoho: no Rescheduled_Time after it).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    rule: str
    index: int
    type: str
    params: dict[str, Any]
    change: Change
    record: ReplayRecord
    now: datetime
    # The change's operation, and the values from before it that the action's templates read
    # (RuleContext.known_previous); letters of older workers have neither: an update, previous values unknown.
    operation: Literal["insert", "update", "delete"] = "update"
    previous: Kept[Any] = Kept[Any]()
    # When the change was made (RuleContext.now, which reschedule.notice_hours counts from); None: the record's
    # modified time.
    changed_at: datetime | None = None


class DeadLetter(BaseModel):
    """One failed piece of work: the event, where it failed, why, and when."""

    id: str
    source: str
    module: str
    record_id: str
    event: dict[str, Any]
    rule: str | None = None
    action: str | None = None
    error_class: str
    error_code: str
    message: str
    # What the failed work was about (e.g. the change's old and new values), kept for inspection.
    context: dict[str, Any] = {}
    # A failed action: everything needed to run it again (None for jobs, and for letters of older workers).
    action_replay: ActionReplay | None = None
    # Ledger entries the failed work left pending (keys); removed with the letter when it is purged.
    ledger_keys: tuple[str, ...] = ()
    tries: int
    first_failed_at: datetime
    last_failed_at: datetime


def dead_letter_id(job_id: str, rule: str | None, action: str | None) -> str:
    return hashlib.sha256(f"{job_id}|{rule}|{action}".encode()).hexdigest()[:16]


@dataclass(frozen=True)
class LetterFilter:
    """Which letters to read: by source, error code, and last failure (at or before / strictly after)."""

    source: str | None = None
    error_code: str | None = None
    failed_before: datetime | None = None
    failed_after: datetime | None = None

    def matches(self, letter: DeadLetter) -> bool:
        return (self.source is None or letter.source == self.source) and (
            self.error_code is None or letter.error_code == self.error_code
        )


class DeadLetters:
    """Dead letters by id, indexed by last failure time; failing again updates the same entry.

    Retention is bounded by age and by count: every letter's key expires `retention` after its last
    failure, and the index is trimmed of expired entries and of the oldest beyond `max_letters` whenever a
    letter is added or letters are read.
    """

    def __init__(
        self,
        redis: Redis,
        *,
        retention: timedelta = RETENTION,
        max_letters: int = MAX_LETTERS,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self._redis = redis
        self._retention = retention
        self._max_letters = max_letters
        self._clock = clock
        self._trim_script = redis.register_script(_TRIM)
        self._remove_script = redis.register_script(_REMOVE)

    async def add(self, letter: DeadLetter) -> DeadLetter:
        existing = await self.get(letter.id)
        if existing is not None:
            letter = letter.model_copy(update={"first_failed_at": existing.first_failed_at})
        ttl_s = self._ttl_s(letter)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(_letter_key(letter.id), letter.model_dump_json(), ex=ttl_s)
            pipe.zadd(INDEX_KEY, {letter.id: letter.last_failed_at.timestamp()})
            await pipe.execute()
        # A pending effect (personal data) lives as long as its letter, and a day more, so that a replay
        # queued as the letter expires still finds it (and looks in the CRM before writing again).
        await Ledger(self._redis).expire_pending(letter.ledger_keys, ttl_s + 86_400)
        await self.trim()
        return letter

    async def get(self, letter_id: str) -> DeadLetter | None:
        raw = await self._redis.get(_letter_key(letter_id))
        return None if raw is None else DeadLetter.model_validate_json(raw)

    async def all(self) -> list[DeadLetter]:
        """Every dead letter, oldest failure first."""
        return await self.find(LetterFilter())

    async def find(self, where: LetterFilter) -> list[DeadLetter]:
        """The letters `where` selects, oldest failure first."""
        await self.trim()
        cutoff = self._clock() - self._retention
        after = max(where.failed_after, cutoff) if where.failed_after is not None else cutoff
        high = "+inf" if where.failed_before is None else where.failed_before.timestamp()
        ids = [raw.decode() for raw in await self._redis.zrangebyscore(INDEX_KEY, f"({after.timestamp()}", high)]
        return [letter for letter in await self._read(ids) if where.matches(letter)]

    async def delete(self, letter_id: str) -> bool:
        """Remove one letter; False if there was none."""
        return bool(await self._remove([letter_id], failed_before=None))

    async def purge(self, older_than: datetime, where: LetterFilter | None = None) -> int:
        """Remove the letters `where` selects whose last failure is at or before `older_than`; how many.

        A letter that fails again while the purge runs is kept: it is no longer older than `older_than`. The
        ledger entries a removed letter left pending go with it (done entries stay, and keep effects from
        being repeated).
        """
        selected = LetterFilter() if where is None else where
        bound = older_than if selected.failed_before is None else min(older_than, selected.failed_before)
        letters = await self.find(LetterFilter(selected.source, selected.error_code, bound, selected.failed_after))
        removed = set(await self._remove([letter.id for letter in letters], failed_before=bound))
        left = [key for letter in letters if letter.id in removed for key in letter.ledger_keys]
        await Ledger(self._redis).forget_pending(left)
        return len(removed)

    async def discard(self, ids: Iterable[str]) -> list[str]:
        """Remove these letters, as `purge` does (with the ledger entries they left pending); the ids removed."""
        letters = await self._read(list(dict.fromkeys(ids)))
        removed = set(await self._remove([letter.id for letter in letters], failed_before=None))
        left = [key for letter in letters if letter.id in removed for key in letter.ledger_keys]
        await Ledger(self._redis).forget_pending(left)
        return [letter.id for letter in letters if letter.id in removed]

    async def trim(self) -> tuple[int, int]:
        """Apply retention: remove expired letters, then the oldest beyond the cap; how many of each."""
        cutoff = (self._clock() - self._retention).timestamp()
        args: list[str | float] = [cutoff, self._max_letters, LETTER_KEY_PREFIX, _TRIM_BATCH]
        expired, dropped = await self._trim_script(keys=[INDEX_KEY], args=args)
        if dropped:
            logger.warning("dead letters: over %d kept, dropped the %d oldest", self._max_letters, dropped)
        return int(expired), int(dropped)

    def _ttl_s(self, letter: DeadLetter) -> int:
        remaining = (letter.last_failed_at + self._retention - self._clock()).total_seconds()
        return max(1, math.ceil(remaining))

    async def _read(self, ids: list[str]) -> list[DeadLetter]:
        letters: list[DeadLetter] = []
        for start in range(0, len(ids), _READ_BATCH):
            raw = await self._redis.mget([_letter_key(i) for i in ids[start : start + _READ_BATCH]])
            letters.extend(DeadLetter.model_validate_json(item) for item in raw if item is not None)
        return letters

    async def _remove(self, ids: Iterable[str], *, failed_before: datetime | None) -> list[str]:
        bound = "+inf" if failed_before is None else repr(failed_before.timestamp())
        wanted = list(ids)
        removed: list[str] = []
        for start in range(0, len(wanted), _READ_BATCH):  # in batches, so that one call never holds Redis long
            batch = wanted[start : start + _READ_BATCH]
            done = await self._remove_script(keys=[INDEX_KEY], args=[bound, LETTER_KEY_PREFIX, *batch])
            removed.extend(raw.decode() for raw in done)
        return removed
