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
   (`drop_own_writes`), and so are the fields the CRM itself changes on any write (the module's
   `system_fields`: Zoho's Modified_Time, HubSpot's hs_lastmodifieddate, ...): a change made only of
   crmflow's own writes fires no rule at all, not even one on `when.operation` alone. A person who sets
   the field to any other value, or changes any other watched field, still fires the rules, and that value
   supersedes crmflow's. One exception: while the snapshot is still the one the write's change moved away
   from, the change that caused the write was never finished (its job failed or was killed before saving
   the new state), so this job is that change again. The entry also keeps the field's value before the
   write (`was`), so the change is rebuilt as the first try saw it: the field's new value is `was` (the
   field is left out when `was` is its old value), and the rules see `was` as the record's value
   (`Recognised.restored`). The same rules fire under the same ledger keys, so what was done is not done
   twice, what was not (the rule's later actions) is done now, and no other rule fires on crmflow's write.
   If the field holds neither `was` nor the value written, a person changed it since: the diff's view (a
   change by that person) stands, and update_record's retry leaves their value alone (superseded).
3. An entry has done its work once a snapshot holds the value it names (the record as fetched holds it),
   or once someone changed the field to another value; it is then deleted in the same transaction that
   saves that snapshot (`save_state`), and only if it still names the value read, so that an action of the
   same job writing the field again keeps its own entry. Deleting it earlier could let a crash between the
   two make crmflow's write look like someone else's.

Everything runs under the record's lock (workers/jobs.py), so no two jobs of a record interleave here.
What is left: an entry whose write never reached the CRM (the worker died before the call, or the call
timed out and never applied) lives out its day, and a person setting the field to exactly that value within
the day would be taken for crmflow; the retry of the action writes that value anyway. A job that wrote for a
notification of a record that had not changed (a duplicate notification firing a rule on `when.operation` alone)
saves a snapshot as old as the one before, so the notification of its write looks like a retry of that change:
its rules run again under the same ledger keys and repeat nothing.

Values compare as the diff compares them (workers/diff.py same_value), and a text crmflow wrote also matches
the number, boolean or empty value the CRM may read it back as ("3" and 3, "true" and True, "" and null).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from redis.asyncio import Redis

from workers import keys
from workers.diff import Change, FieldChange, Snapshot, same_value
from workers.snapshots import decode_snapshot, encode_snapshot

# Entries as stored: field -> the JSON of {"value": written, "since": the change's since, "was": the field's value
# before the write} (raw, so that a delete can compare exactly). Entries written before `was` existed lack it.
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
# The same, for a script that saves the state with more (workers/record_lock.py `RecordLock.end`).
DELETE_IF_SAME_SCRIPT = _DELETE_IF_SAME


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


_UNKNOWN = object()


def entry(value: Any, since: datetime | None, was: Any = _UNKNOWN) -> bytes:
    """How one field's entry is stored: the value written, the change it was written for and the field's value
    before the write. Pure."""
    stored = {"value": value, "since": _instant(since)}
    if was is not _UNKNOWN:
        stored["was"] = was
    return orjson.dumps(stored)


@dataclass(frozen=True)
class _Written:
    value: Any
    since: str | None
    was: Any = _UNKNOWN


def _decode(raw: bytes) -> _Written:
    found = orjson.loads(raw)
    if isinstance(found, dict) and "value" in found:
        return _Written(found["value"], found.get("since"), found.get("was", _UNKNOWN))
    return _Written(found, None)


@dataclass(frozen=True)
class Recognised:
    """What drop_own_writes made of a diff: the change rules may fire on, and what crmflow's writes were in it."""

    change: Change
    # Fields whose new value crmflow wrote for an earlier, finished change: no rule may fire on them.
    dropped: set[str]
    # This job is again a change crmflow wrote for (a retry): the fields written, with their values before the
    # write, which the change and the rules see in their place, as on the first try.
    restored: Mapping[str, Any]
    # Entries that have done their work, deleted when the new state is saved (save_state).
    consumed: Entries

    @property
    def only_own_writes(self) -> bool:
        """A change made only of crmflow's own writes (and what the CRM changes on any write): no rule fires."""
        return bool(self.dropped) and not self.restored and not self.change.fields

    def record_as_seen(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        """The record's fields as the rules saw them on the change's first try (restored fields as they were)."""
        return {**fields, **self.restored}


def drop_own_writes(
    change: Change,
    current: Mapping[str, Any],
    entries: Entries,
    *,
    before: Mapping[str, Any] | None = None,
    system_fields: Collection[str] = (),
) -> Recognised:
    """The change without crmflow's own writes, or, on a retry of the change they were written for, as it was. Pure.

    `current` is the record's fields as fetched; `before` the snapshot's (the state the change moved away
    from); `system_fields` those the CRM changes on any write (dropped too once a write of crmflow's is
    recognised). A field written for the very change being diffed again (the same `since`: its job never saved
    the new state) is rebuilt as that change's first try saw it, when the entry knows the value before the write
    and the record holds either it or the value written (entries without `was` keep the field as the diff sees
    it). An entry is consumed when the record holds its value (the write reached the CRM) or when the field
    changed to another value (someone overwrote it).
    """
    if not entries:
        return Recognised(change, set(), {}, {})
    written = {name: _decode(raw) for name, raw in entries.items()}
    # Written for this very change (its job ended before saving the state). A record still seen for the first
    # time with an entry written for a first-seen change is that change again: its job saved no state.
    since = _instant(change.since)
    again = {
        name
        for name, w in written.items()
        if (w.since is not None and w.since == since)
        or (w.since is None and since is None and change.first_seen and w.was is not _UNKNOWN)
    }
    dropped = {
        name
        for name, moved in change.fields.items()
        if name in written and name not in again and matches(written[name].value, moved.new)
    }
    restored = {
        name: written[name].was
        for name in again
        if written[name].was is not _UNKNOWN
        and name in current
        and (matches(written[name].value, current[name]) or same_value(written[name].was, current[name]))
    }
    fields = {name: moved for name, moved in change.fields.items() if name not in dropped and name not in restored}
    known = before or {}
    for name, was in restored.items():
        if name in known and not same_value(known[name], was):
            fields[name] = FieldChange(old=known[name], new=was)
    if dropped and not restored:
        fields = {name: moved for name, moved in fields.items() if name not in system_fields}
    held = {name for name, w in written.items() if name in current and matches(w.value, current[name])}
    overwritten = set(change.fields) - dropped - set(restored)
    consumed = {name: raw for name, raw in entries.items() if name in held or name in overwritten}
    kept = dataclasses.replace(change, fields=dict(sorted(fields.items())))
    return Recognised(kept, dropped, restored, consumed)


def _entry_of(name: str, value: Any, since: datetime | None, was: Mapping[str, Any] | None) -> bytes:
    return entry(value, since) if was is None else entry(value, since, was.get(name))


async def remember(
    redis: Redis,
    source: str,
    module: str,
    record_id: str,
    fields: Mapping[str, Any],
    since: datetime | None,
    was: Mapping[str, Any] | None = None,
) -> None:
    """Record, before writing them, the values crmflow is about to write to the record's fields for the change
    that moved away from `since` (Change.since), with each field's value before the write (`was`: the record
    as fetched; a field missing there counts as empty; None: not known, the entry is kept without it)."""
    if not fields:
        return
    key = keys.own_writes(source, module, record_id)
    async with redis.pipeline(transaction=True) as pipe:
        pipe.hset(key, mapping={name: _entry_of(name, value, since, was) for name, value in fields.items()})
        pipe.expire(key, keys.OWN_WRITES_TTL_S)
        await pipe.execute()


async def forget(
    redis: Redis,
    source: str,
    module: str,
    record_id: str,
    fields: Mapping[str, Any],
    since: datetime | None,
    was: Mapping[str, Any] | None = None,
) -> None:
    """Drop what `remember` recorded for a write the CRM refused (entries naming another value stay)."""
    if not fields:
        return
    pairs = [part for name, value in fields.items() for part in (name, _entry_of(name, value, since, was))]
    await redis.register_script(_DELETE_IF_SAME)(keys=[keys.own_writes(source, module, record_id)], args=pairs)


async def load_state(redis: Redis, source: str, module: str, record_id: str) -> tuple[Snapshot | None, Entries]:
    """The record's snapshot and its own-write entries, in one round trip."""
    async with redis.pipeline(transaction=False) as pipe:
        pipe.get(keys.snapshot(source, module, record_id))
        pipe.hgetall(keys.own_writes(source, module, record_id))
        raw_snapshot, raw_entries = await pipe.execute()
    return decode_state(raw_snapshot, raw_entries)


def decode_state(
    raw_snapshot: bytes | str | None, raw_entries: Mapping[Any, bytes | str] | list[Any]
) -> tuple[Snapshot | None, Entries]:
    """The snapshot and own-write entries as read (the entries as HGETALL answers: a mapping, or the flat list a
    script gets). Pure."""
    if isinstance(raw_entries, list):
        raw_entries = dict(zip(raw_entries[::2], raw_entries[1::2], strict=True))
    entries = {(name.decode() if isinstance(name, bytes) else str(name)): value for name, value in raw_entries.items()}
    return decode_snapshot(raw_snapshot), {name: _raw(value) for name, value in entries.items()}


def _raw(value: bytes | str) -> bytes:
    return value if isinstance(value, bytes) else value.encode()


@dataclass(frozen=True)
class StateSave:
    """The new state, as `save_state` writes it: the snapshot (encoded) and the consumed entries, as flat
    name/value pairs that are deleted only where they still hold the value read (DELETE_IF_SAME_SCRIPT)."""

    snapshot_key: str
    snapshot: bytes
    own_writes_key: str
    pairs: tuple[str | bytes, ...]


def state_save(source: str, module: str, record_id: str, snapshot: Snapshot, consumed: Entries) -> StateSave:
    """What saving the new state writes, for a caller that writes it with more in one round trip. Pure."""
    pairs = tuple(part for name, raw in consumed.items() for part in (name, raw))
    key = keys.snapshot(source, module, record_id)
    return StateSave(key, encode_snapshot(snapshot), keys.own_writes(source, module, record_id), pairs)


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
