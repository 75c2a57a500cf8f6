"""Event log: one entry per change a job finished with, kept in a bounded Redis stream; written and read here.

Storage (workers/keys.py): the stream keys.EVENT_LOG holds one entry per finished job, its Redis-made id
(`<epoch ms>-<seq>`, the Redis server's time of writing) being the entry's id, so newest first and time
ranges are plain XREVRANGE reads. keys.event_log_record(record_id) is a sorted set of the ids of one record's
entries (score: the id's ms), so that filtering by record id reads only that record's entries. Both bounds
are applied by the one script that writes an entry, atomically and in one round trip: entries older than
`max_age_s` and the oldest beyond `max_entries` are trimmed from the stream; a record's index drops ids older
than `max_age_s` and expires `max_age_s` after its last entry; the stream itself expires `max_age_s` after
the last entry written, so a log nobody writes to still ages out. A record's index may name an entry the
count bound trimmed away: readers skip it.

An entry keeps no secrets and no personal values: the ChangeEvent's identifying fields (no tokens), field
names always, old and new values only of the fields workers/event_fields.py names as not personal, the CRM's
ids of what actions wrote, error codes (not messages, which may quote a record).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError
from redis.asyncio import Redis

from workers import keys

# Defaults of EVENT_LOG_MAX_AGE_S and EVENT_LOG_MAX_ENTRIES.
DEFAULT_MAX_AGE_S = 7 * keys.DAY_S
DEFAULT_MAX_ENTRIES = 100_000
# Entries read per round trip when scanning the log for a filtered page, and how many one page may scan
# at most before it returns what it found with a cursor to go on from.
_SCAN_BATCH = 200
_SCAN_BUDGET = 5_000

# What a job's end says about the change: it did something in the CRM (or found it done), it kept a dead
# letter, or there was nothing to do (a deletion, a record gone, a stale read, no rule matched).
Outcome = Literal["processed", "dead_lettered", "nothing_to_do"]
OUTCOMES: tuple[str, ...] = ("processed", "dead_lettered", "nothing_to_do")
# The earliest time a filter means: the log holds nothing older, and stream ids are never negative.
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# The arq job that wrote the entry: a change (notification, sweep, a replayed job letter) or one action run
# again from its dead letter.
JobKind = Literal["process_change", "replay_action"]


class EntryField(BaseModel):
    """One watched field that changed; `old`/`new` only for fields that are not personal (else `withheld`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    old: Any = None
    new: Any = None
    withheld: bool = False


class EntryAction(BaseModel):
    """One action the job ran: its rule, type, outcome, and the CRM's ids of what it wrote or found."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rule: str
    action: str
    # created, already_logged, found_in_crm, ... or dead_lettered.
    status: str
    crm_ids: tuple[str, ...] = ()
    error: str | None = None


class EntryTimings(BaseModel):
    """When the change was queued (received), when the final try started and finished, and its CRM time."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    received_at: datetime | None = None
    started_at: datetime
    finished_at: datetime
    # Seconds the final try spent waiting on CRM calls, and how many it made.
    crm_s: float = 0.0
    crm_calls: int = 0


class EventEntry(BaseModel):
    """One change a job finished with: what came in, what the job decided and did, the outcome and the timings."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # The stream id, `<epoch ms>-<seq>`: set when the entry is read back ("" before it is written).
    id: str = ""
    job_id: str
    job: JobKind = "process_change"
    # What came in: the ChangeEvent's identifying fields.
    source: str
    module: str
    record_id: str
    operation: str
    origin: str
    notified_at: datetime
    announced_fields: tuple[str, ...] = ()
    channel_id: str | None = None
    replay: int = 0
    # The dead letter this job replays, when it is a replay.
    replay_of: str | None = None
    # What the job decided.
    outcome: Outcome
    # The job's own status: processed, deleted, gone, stale, replayed or dead_lettered.
    status: str
    # How often arq ran the job before this end (retries, and waits for a rate limit, included).
    tries: int = 1
    first_seen: bool | None = None
    changes: tuple[EntryField, ...] = ()
    rules: tuple[str, ...] = ()
    actions: tuple[EntryAction, ...] = ()
    dead_letters: tuple[str, ...] = ()
    error: str | None = None
    timings: EntryTimings

    @property
    def written_at(self) -> datetime:
        """When the entry was written (its id's time); the time filters compare this."""
        return datetime.fromtimestamp(_id_key(self.id)[0] / 1000, UTC)


@dataclass(frozen=True)
class EventFilter:
    """Which entries to read: by source, record id, outcome and the time they were written ([since, until))."""

    source: str | None = None
    record_id: str | None = None
    outcome: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def matches(self, entry: EventEntry) -> bool:
        return (
            (self.source is None or entry.source == self.source)
            and (self.record_id is None or entry.record_id == self.record_id)
            and (self.outcome is None or entry.outcome == self.outcome)
        )


@dataclass(frozen=True)
class EventPage:
    """Entries newest first; `next_before` is the `before` cursor of the next page, None at the end of the log.

    With filters, the next page may still turn out empty: only the entries read so far were checked.
    """

    entries: list[EventEntry] = field(default_factory=list)
    next_before: str | None = None

    def as_json(self) -> dict[str, Any]:
        """The page as JSON-ready data: {"events": [entry, ...], "next_before": cursor or None}."""
        return {"events": [entry.model_dump(mode="json") for entry in self.entries], "next_before": self.next_before}


class BadEventId(ValueError):
    """An event id (or cursor) that is not a stream id `<epoch ms>-<seq>`."""


def _id_key(event_id: str) -> tuple[int, int]:
    ms, _, seq = event_id.partition("-")
    if not (ms.isdigit() and seq.isdigit()):
        raise BadEventId(f"not an event id: {event_id!r} (expected <epoch ms>-<seq>)")
    return int(ms), int(seq)


def check_event_id(event_id: str) -> str:
    """`event_id` if it is a stream id; BadEventId otherwise."""
    _id_key(event_id)
    return event_id


def _text(raw: bytes | str) -> str:
    return raw.decode() if isinstance(raw, bytes) else raw


def _parse(event_id: bytes | str, fields: dict[Any, Any]) -> EventEntry | None:
    raw = fields.get(b"e", fields.get("e"))
    if raw is None:
        return None
    try:
        return EventEntry.model_validate_json(raw).model_copy(update={"id": _text(event_id)})
    except ValidationError:
        return None  # written by another version of crmflow that this one cannot read


def back_from(now: datetime, age: timedelta) -> datetime:
    """`now - age` for a filter, never before EPOCH (an age of 100 000 weeks means "everything")."""
    try:
        return max(now - age, EPOCH)
    except OverflowError:
        return EPOCH


def _ms(moment: datetime) -> int:
    """Epoch milliseconds, at least 0: the log holds nothing older, and a negative stream id is an error in Redis."""
    return max(0, int(moment.timestamp() * 1000))


async def get_event(redis: Redis, event_id: str) -> EventEntry | None:
    """The entry with this id, or None (trimmed, or never written). BadEventId for an id of the wrong shape."""
    check_event_id(event_id)
    found = await redis.xrange(keys.EVENT_LOG, min=event_id, max=event_id, count=1)
    return _parse(*found[0]) if found else None


async def list_events(
    redis: Redis, filters: EventFilter | None = None, limit: int = 50, before: str | None = None
) -> EventPage:
    """Up to `limit` entries that `filters` selects, newest first, written before the entry `before` (a cursor).

    A record filter reads only that record's entries. Other filters scan the log newest first, at most a few
    thousand entries per call: a page may then hold fewer than `limit` entries and still have a cursor.
    """
    where = filters or EventFilter()
    if limit < 1:
        raise ValueError("limit must be at least 1")
    if before is not None:
        check_event_id(before)
    if where.record_id is not None:
        return await _list_record(redis, where, limit, before)
    return await _scan(redis, where, limit, before)


async def _scan(redis: Redis, where: EventFilter, limit: int, before: str | None) -> EventPage:
    # Exclusive upper bound: the cursor, or the end of the time range, whichever comes first.
    uppers = [_id_key(before)] if before is not None else []
    uppers += [(_ms(where.until), 0)] if where.until is not None else []
    if uppers and min(uppers) == (0, 0):
        return EventPage()  # nothing is older than the first id (and Redis refuses "(0-0")
    high = "({}-{}".format(*min(uppers)) if uppers else "+"
    low = f"{_ms(where.since)}-0" if where.since is not None else "-"
    entries: list[EventEntry] = []
    scanned = 0
    while True:
        batch = await redis.xrevrange(keys.EVENT_LOG, max=high, min=low, count=_SCAN_BATCH)
        for position, (raw_id, fields) in enumerate(batch, 1):
            scanned += 1
            entry = _parse(raw_id, fields)
            if entry is not None and where.matches(entry):
                entries.append(entry)
                if len(entries) == limit:
                    # Older entries remain unless this was the log's (or the range's) last one.
                    more = position < len(batch) or len(batch) == _SCAN_BATCH
                    return EventPage(entries, entry.id if more else None)
        if len(batch) < _SCAN_BATCH:
            return EventPage(entries, None)
        last = _text(batch[-1][0])
        if scanned >= _SCAN_BUDGET:
            return EventPage(entries, last)
        high = f"({last}"


async def _list_record(redis: Redis, where: EventFilter, limit: int, before: str | None) -> EventPage:
    assert where.record_id is not None
    high = "+inf" if where.until is None else f"({_ms(where.until)}"
    low = "-inf" if where.since is None else _ms(where.since)
    members = await redis.zrevrangebyscore(keys.event_log_record(where.record_id), high, low)
    ids = sorted((_text(member) for member in members), key=_id_key, reverse=True)
    if before is not None:
        ids = [event_id for event_id in ids if _id_key(event_id) < _id_key(before)]
    entries: list[EventEntry] = []
    for start in range(0, len(ids), _SCAN_BATCH):
        chunk = ids[start : start + _SCAN_BATCH]
        async with redis.pipeline(transaction=False) as pipe:
            for event_id in chunk:
                pipe.xrange(keys.EVENT_LOG, min=event_id, max=event_id, count=1)
            found: Sequence[Any] = await pipe.execute()
        for rows in found:
            entry = _parse(*rows[0]) if rows else None
            if entry is not None and where.matches(entry):
                entries.append(entry)
                if len(entries) == limit:
                    more = entry.id != ids[-1]
                    return EventPage(entries, entry.id if more else None)
    return EventPage(entries, None)


# Atomically: add the entry (ARGV[1]) to the stream keeping at most ARGV[2] entries, drop entries older than
# ARGV[3] ms (from the new entry's time), index it under the record, keep the record's index and the stream
# alive for ARGV[3] ms more. Returns the new entry's id.
_WRITE = """
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '=', ARGV[2], '*', 'e', ARGV[1])
local ms = tonumber(string.match(id, '^(%d+)-'))
local oldest = ms - tonumber(ARGV[3])
if oldest > 0 then
  redis.call('XTRIM', KEYS[1], 'MINID', '=', oldest .. '-0')
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. oldest)
end
redis.call('ZADD', KEYS[2], ms, id)
redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -1 - tonumber(ARGV[2]))
redis.call('PEXPIRE', KEYS[2], ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return id
"""


# The same script, for one that writes an entry with more (workers/record_lock.py `RecordLock.end`).
WRITE_SCRIPT = _WRITE


@dataclass(frozen=True)
class LogWrite:
    """One entry's write: WRITE_SCRIPT's keys (the stream, the record's index) and arguments."""

    keys: tuple[str, str]
    args: tuple[str | int, ...]


@dataclass(frozen=True)
class EventLogBounds:
    """How long entries are kept and how many at most (EVENT_LOG_MAX_AGE_S, EVENT_LOG_MAX_ENTRIES)."""

    max_age_s: float = DEFAULT_MAX_AGE_S
    max_entries: int = DEFAULT_MAX_ENTRIES

    def __post_init__(self) -> None:
        if self.max_age_s <= 0 or self.max_entries < 1:
            raise ValueError("the event log's bounds must be positive")


class EventLog:
    """Writes entries, each in one round trip (a script), applying the bounds as it goes."""

    def __init__(self, redis: Redis, bounds: EventLogBounds | None = None) -> None:
        self._redis = redis
        self._bounds = bounds or EventLogBounds()
        self._write = redis.register_script(_WRITE)

    async def prepare(self) -> None:
        """Load the script into Redis (at start-up), so that even the first write is one round trip."""
        await self._redis.script_load(_WRITE)

    def writing(self, entry: EventEntry) -> LogWrite:
        """What writing `entry` takes (WRITE_SCRIPT's keys and arguments), for a caller that writes it with more
        in one round trip (workers/record_lock.py `RecordLock.end`)."""
        # Defaults are left out (about 1 KB an entry remains); reading fills them in again.
        body = entry.model_dump_json(exclude={"id"}, exclude_defaults=True)
        args: tuple[str | int, ...] = (body, self._bounds.max_entries, int(self._bounds.max_age_s * 1000))
        return LogWrite((keys.EVENT_LOG, keys.event_log_record(entry.record_id)), args)

    async def write(self, entry: EventEntry) -> str:
        """Add `entry` (its `id` is ignored); the id it was given."""
        writing = self.writing(entry)
        written = await self._write(keys=list(writing.keys), args=list(writing.args))
        return _text(written)
