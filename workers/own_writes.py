"""Own writes: what crmflow itself wrote to a record, so that the change its write causes fires no rule again.

An update_record action writes fields of the record it acts on. The CRM then notifies that change like any
other, and without this a rule whose `when.changed` names such a field would fire again, for ever. So:

1. Before the CRM call, the action records each field and the value it is about to write in the record's
   entry (a Redis hash, keys.own_writes, one day to live, refreshed by every write), with the change it
   writes for (Change.since: the state that change moved away from, as in the ledger's change_key).
   Before, not after: a worker killed between the CRM's answer and its next step would otherwise leave a
   write nobody recognises when its notification comes, and the job of that notification may run before
   the killed one's retry. A write the CRM refuses for good is forgotten again at once (`forget`); one
   that timed out is kept, since it may have happened.
2. Each job reads the entry together with the record's snapshot, in one round trip (`load_state`). After
   the diff, a changed field whose new value is one crmflow wrote is dropped from the change
   (`drop_own_writes`): a change made only of crmflow's own writes fires no rule at all. A person who sets
   the field to any other value still fires the rules, and that value supersedes crmflow's. One exception:
   while the snapshot is still the one the write's change moved away from, the change that caused the
   write was never finished (its job was killed before saving the new state), so this job is that change
   again and keeps the field: its rules fire again under the same ledger keys, so what was done is not
   done twice and what was not (the rule's other actions, other rules) is done now.
3. An entry has done its work once a snapshot holds the value it names (the record as fetched holds it),
   or once someone changed the field to another value; it is then deleted in the same transaction that
   saves that snapshot (`save_state`), and only if it still names the value read, so that an action of the
   same job writing the field again keeps its own entry. Deleting it earlier could let a crash between the
   two make crmflow's write look like someone else's.

Everything runs under the record's lock (workers/jobs.py), so no two jobs of a record interleave here.
What is left: an entry whose write never reached the CRM (the worker died before the call, or the call
timed out and never applied) lives out its day, and a person setting the field to exactly that value within
the day would be taken for crmflow; the retry of the action writes that value anyway.

Values compare as the diff compares them (workers/diff.py same_value), and a text crmflow wrote also matches
the number, boolean or empty value the CRM may read it back as ("3" and 3, "true" and True, "" and null).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson
from redis.asyncio import Redis

from workers import keys
from workers.diff import Change, Snapshot, same_value
from workers.snapshots import decode_snapshot, encode_snapshot

# Entries as stored: field -> the JSON of {"value": written, "since": the change's since} (raw, so that a delete
# can compare exactly).
Entries = Mapping[str, bytes]

# For each (field, value) pair in ARGV: delete the hash's field if it still holds exactly that value.
_DELETE_IF_SAME = """
local deleted = 0
for i = 1, #ARGV, 2 do
  if redis.call('HGET', KEYS[1], ARGV[i]) == ARGV[i + 1] then
    deleted = deleted + redis.call('HDEL', KEYS[1], ARGV[i])
  end
end
return deleted
"""


def _text(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return str(value)
    return None


def matches(written: Any, seen: Any) -> bool:
    """Whether the CRM's value `seen` is the value crmflow `written`. Pure."""
    if same_value(written, seen):
        return True
    if isinstance(written, str):
        return (written == "" and seen is None) or (seen is not None and written == _text(seen))
    return False


def _instant(since: datetime | None) -> str | None:
    return since.astimezone(UTC).isoformat() if since is not None else None


def entry(value: Any, since: datetime | None) -> bytes:
    """How one field's entry is stored: the value written, and the change it was written for. Pure."""
    return orjson.dumps({"value": value, "since": _instant(since)})


def _decode(raw: bytes) -> tuple[Any, str | None]:
    found = orjson.loads(raw)
    if isinstance(found, dict) and "value" in found:
        return found["value"], found.get("since")
    return found, None


def drop_own_writes(change: Change, current: Mapping[str, Any], entries: Entries) -> tuple[Change, set[str], Entries]:
    """The change without the fields whose new value crmflow wrote; their names; the entries consumed. Pure.

    `current` is the record's fields as fetched. A field written for the very change being diffed again (the
    same `since`: its job never saved the new state) is kept, so that the change's rules run again under
    the same ledger keys. An entry is consumed when the record holds its
    value (the write reached the CRM) or when the field changed to another value (someone overwrote it).
    """
    if not entries:
        return change, set(), {}
    written = {name: _decode(raw) for name, raw in entries.items()}
    # Written for this very change (its job was killed before saving the state): never for a first-seen record,
    # whose change is known by its modified time, which crmflow's write moved.
    again = {name for name, (_, since) in written.items() if since is not None and since == _instant(change.since)}
    dropped = {
        name
        for name, moved in change.fields.items()
        if name in written and name not in again and matches(written[name][0], moved.new)
    }
    kept = {name: moved for name, moved in change.fields.items() if name not in dropped}
    held = {name for name, (value, _) in written.items() if name in current and matches(value, current[name])}
    overwritten = set(change.fields) - dropped
    consumed = {name: raw for name, raw in entries.items() if name in held or name in overwritten}
    return dataclasses.replace(change, fields=kept), dropped, consumed


async def remember(
    redis: Redis, source: str, module: str, record_id: str, fields: Mapping[str, Any], since: datetime | None
) -> None:
    """Record, before writing them, the values crmflow is about to write to the record's fields for the change
    that moved away from `since` (Change.since)."""
    if not fields:
        return
    key = keys.own_writes(source, module, record_id)
    async with redis.pipeline(transaction=True) as pipe:
        pipe.hset(key, mapping={name: entry(value, since) for name, value in fields.items()})
        pipe.expire(key, keys.OWN_WRITES_TTL_S)
        await pipe.execute()


async def forget(
    redis: Redis, source: str, module: str, record_id: str, fields: Mapping[str, Any], since: datetime | None
) -> None:
    """Drop what `remember` recorded for a write the CRM refused (entries naming another value stay)."""
    if not fields:
        return
    pairs = [part for name, value in fields.items() for part in (name, entry(value, since))]
    await redis.register_script(_DELETE_IF_SAME)(keys=[keys.own_writes(source, module, record_id)], args=pairs)


async def load_state(redis: Redis, source: str, module: str, record_id: str) -> tuple[Snapshot | None, Entries]:
    """The record's snapshot and its own-write entries, in one round trip."""
    async with redis.pipeline(transaction=False) as pipe:
        pipe.get(keys.snapshot(source, module, record_id))
        pipe.hgetall(keys.own_writes(source, module, record_id))
        raw_snapshot, raw_entries = await pipe.execute()
    entries = {(name.decode() if isinstance(name, bytes) else str(name)): value for name, value in raw_entries.items()}
    return decode_snapshot(raw_snapshot), {name: _raw(value) for name, value in entries.items()}


def _raw(value: bytes | str) -> bytes:
    return value if isinstance(value, bytes) else value.encode()


async def save_state(
    redis: Redis, source: str, module: str, record_id: str, snapshot: Snapshot, consumed: Entries
) -> None:
    """Save the snapshot and delete the consumed entries that still hold the value read, in one transaction."""
    snapshot_key = keys.snapshot(source, module, record_id)
    if not consumed:
        await redis.set(snapshot_key, encode_snapshot(snapshot), ex=keys.SNAPSHOT_TTL_S)
        return
    delete_if_same = redis.register_script(_DELETE_IF_SAME)
    pairs = [part for name, raw in consumed.items() for part in (name, raw)]
    async with redis.pipeline(transaction=True) as pipe:
        pipe.set(snapshot_key, encode_snapshot(snapshot), ex=keys.SNAPSHOT_TTL_S)
        await delete_if_same(keys=[keys.own_writes(source, module, record_id)], args=pairs, client=pipe)
        await pipe.execute()
