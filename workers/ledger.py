"""Ledger: effects already applied in a CRM, so that no duplicate, retry or replay applies one twice.

Every action that writes to a CRM goes through one protocol, `Ledger.apply_once`:

    done?  ──yes──▶ nothing to do ("already_logged")
      │no
    pending: keep exactly what is about to be written (or, on a retry, take what an earlier try kept)
      │
    look in the CRM (always after an earlier try, or when asked) ──found──▶ done ("found_in_crm")
      │not found
    write ──▶ done ("created")

A pending entry holds exactly what is about to be written, so a retry after a lost answer sends (and looks
for) the very same thing instead of something recomputed from data that may have moved on. When the CRM
refuses the write for good (REFUSED: it answered no, so nothing was written), the pending entry protects
nothing and only holds personal data, so it is removed before the refusal is passed on. Any other pending
entry a failed action leaves behind is named by its dead letter, and removed when the letter is purged
(`forget_pending`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
from redis.asyncio import Redis

from workers import keys
from workers.actions.base import Checkpoint
from workers.diff import FieldChange
from workers.errors import CrmAuthError, CrmNotFoundError, CrmNotSentError, CrmRejectedError
from workers.record import parse_datetime

LEDGER_TTL_S = keys.LEDGER_TTL_S
# The CRM's definite no to a write (refused, not authorised, no such record): proof that nothing was written.
REFUSED = (CrmRejectedError, CrmAuthError, CrmNotFoundError)

# Atomically, for each of KEYS whose entry is still pending (done entries are left as they are): delete it
# when ARGV[1] is "forget", else give it ARGV[1] seconds to live. Returns how many were pending.
_PENDING_ONLY = """
local changed = 0
for _, key in ipairs(KEYS) do
  local raw = redis.call('GET', key)
  if raw then
    local ok, entry = pcall(cjson.decode, raw)
    if ok and type(entry) == 'table' and entry['state'] == 'pending' then
      if ARGV[1] == 'forget' then
        redis.call('DEL', key)
      else
        redis.call('EXPIRE', key, ARGV[1])
      end
      changed = changed + 1
    end
  end
end
return changed
"""

# apply_once's first round trip. KEYS[1]: the effect's entry; KEYS[2], if given: the record's index of keys that
# may be pending. ARGV[1]: the pending entry to write when there is none, ARGV[2]: the TTL (s). Returns the entry
# as it was (nil: none, and the pending one is written now). The key is named in the index (in the same step as
# the pending entry), or dropped from it when its entry is done already.
_BEGIN = """
local raw = redis.call('GET', KEYS[1])
local done = false
if raw then
  local ok, entry = pcall(cjson.decode, raw)
  done = ok and type(entry) == 'table' and entry['state'] == 'done'
end
if KEYS[2] and done then
  redis.call('SREM', KEYS[2], KEYS[1])
elseif KEYS[2] then
  redis.call('SADD', KEYS[2], KEYS[1])
  redis.call('EXPIRE', KEYS[2], ARGV[2])
end
if not raw then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
end
return raw
"""

Outcome = Literal["created", "found_in_crm", "already_logged"]
# Receives the effect, returns the id the CRM gave it (or None: not there).
FindExisting = Callable[[Any], Awaitable[str | None]]
Write = Callable[[Any], Awaitable[str]]


async def _no_checkpoint(point: str) -> None:
    return None


def effect_key(*parts: str) -> str:
    """A stable key for one effect, e.g. (source, module, record id, action, which change it was)."""
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:40]
    return keys.ledger(digest)


def change_key(
    source: str,
    module: str,
    record_id: str,
    rule: str,
    index: int,
    *,
    since: datetime | None,
    operation: str,
    modified_time: datetime,
    changed: Mapping[str, FieldChange] | None = None,
    first_seen: bool | None = None,
) -> str:
    """The ledger key of the effect of one change of one record under one rule's action (its index in the rule).

    The change is known by its operation and the state it moved away from: `since`, the previous snapshot's
    modified time (the diff's Change.since). A retry of the same job after a crash before the snapshot was saved
    diffs against that same snapshot, so it gets the same key even if the record changed again in between; a
    later change moves away from a newer snapshot and gets a key of its own; a delete moving away from the same
    snapshot as an unfinished update is another change.

    A record seen for the first time (`first_seen`, or no `since`) has no snapshot: its change is known by what
    changed (`changed`: each field's old and new value, whatever window a sweep inferred them from), so a retry
    after crmflow's own write to the record (update_record moves its modified time) still finds the same key,
    and by `operation` for an insert, one change however often it is notified. Only a first-seen update with
    nothing known to have changed (which fires just a rule on `when.operation` alone) falls back to the
    record's `modified_time`.
    """
    if first_seen is None:
        first_seen = since is None
    if not first_seen and since is not None:
        change = f"{operation}:since:{_instant(since)}"
    elif changed:
        moved = {name: [_comparable(value.old), _comparable(value.new)] for name, value in changed.items()}
        change = "first:fields:" + hashlib.sha256(orjson.dumps(moved, option=orjson.OPT_SORT_KEYS)).hexdigest()[:32]
    elif operation == "insert":
        change = "first:insert"
    else:
        change = f"first:{operation}:{_instant(modified_time)}"
    return effect_key(source, module, record_id, "rule", rule, str(index), change)


def _comparable(value: Any) -> Any:
    """A date-time as its instant (the same whatever its offset, as the diff compares them); anything else as is."""
    moment = parse_datetime(value)
    return _instant(moment) if moment is not None else value


def _instant(moment: datetime) -> str:
    """The same text for the same instant, whatever its offset."""
    return moment.astimezone(UTC).isoformat()


@dataclass
class Touched:
    """What one run of an action did with the ledger: the keys it used, and the effects it began to apply
    and had not applied when it stopped (by key; the effect actually sent, which on a retry is the pending one).
    """

    keys: list[str] = field(default_factory=list)
    unfinished: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Applied:
    """What apply_once did, and the CRM's id of the effect (a row, a note, ...)."""

    outcome: Outcome
    crm_id: str


class Ledger:
    """Effects by key: {"state": "pending", "effect": ...} before the CRM call, {"state": "done", "id": ...} after."""

    def __init__(self, redis: Redis, *, touched: Touched | None = None) -> None:
        self._redis = redis
        self._touched = touched
        self._pending_only = redis.register_script(_PENDING_ONLY)
        self._begin = redis.register_script(_BEGIN)

    @property
    def redis(self) -> Redis:
        """Where the ledger keeps its entries; an action keeps its other crash-safe notes there too (own_writes)."""
        return self._redis

    def tracing(self, touched: Touched) -> Ledger:
        """This ledger, noting in `touched` every key used and every effect begun but not applied."""
        return Ledger(self._redis, touched=touched)

    async def get(self, key: str) -> dict[str, Any] | None:
        raw = await self._redis.get(key)
        if raw is None:
            return None
        entry: dict[str, Any] = orjson.loads(raw)
        return entry

    async def pending(self, key: str, effect: Any) -> None:
        await self._redis.set(key, orjson.dumps({"state": "pending", "effect": effect}), ex=LEDGER_TTL_S)

    async def done(self, key: str, crm_id: str, *, index: str | None = None) -> None:
        """Mark the effect done; with `index`, drop its key from that index in the same transaction."""
        entry = orjson.dumps({"state": "done", "id": crm_id})
        if index is None:
            await self._redis.set(key, entry, ex=LEDGER_TTL_S)
            return
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(key, entry, ex=LEDGER_TTL_S)
            pipe.srem(index, key)
            await pipe.execute()

    async def pending_among(self, keys: Iterable[str]) -> list[str]:
        """Those of `keys` whose effect is pending (begun, not known to be applied), in the order given."""
        wanted = list(dict.fromkeys(keys))
        entries = await self._redis.mget(wanted) if wanted else []
        states = [orjson.loads(raw).get("state") if raw else None for raw in entries]
        return [key for key, state in zip(wanted, states, strict=True) if state == "pending"]

    async def expire_pending(self, keys: Iterable[str], ttl_s: int) -> int:
        """Give those of `keys` still pending `ttl_s` to live (done entries keep theirs: they stop repeats)."""
        wanted = list(dict.fromkeys(keys))
        return int(await self._pending_only(keys=wanted, args=[ttl_s])) if wanted else 0

    async def forget_pending(self, keys: Iterable[str]) -> int:
        """Delete those of `keys` still pending (done entries stay: they keep effects from repeating); how many."""
        wanted = list(dict.fromkeys(keys))
        return int(await self._pending_only(keys=wanted, args=["forget"])) if wanted else 0

    async def apply_once(
        self,
        key: str,
        effect: Any,
        *,
        find_existing: FindExisting,
        write: Write,
        look_first: bool = False,
        checkpoint: Checkpoint = _no_checkpoint,
        index: str | None = None,
    ) -> Applied:
        """Apply `effect` (JSON) in the CRM at most once per `key`, however often this is called.

        `find_existing` looks for the effect in the CRM; it is asked after an earlier try left the effect
        pending (its answer may have been lost after the CRM applied it) and, with `look_first`, always
        (e.g. the CRM may apply such effects itself, or the ledger may have forgotten an old one).
        `index`: the record's index of keys that may be pending (see `track`): the key is named there in the
        same step that reads the entry and writes it pending, and dropped from it in the one that marks it done.
        One round trip before the CRM is called, one after.
        """
        if self._touched is not None and key not in self._touched.keys:
            self._touched.keys.append(key)
        pending = orjson.dumps({"state": "pending", "effect": effect})
        raw = await self._begin(keys=[key] if index is None else [key, index], args=[pending, LEDGER_TTL_S])
        entry: dict[str, Any] | None = orjson.loads(raw) if raw is not None else None
        if entry is not None and entry["state"] == "done":
            return Applied("already_logged", _done_id(entry))
        if entry is not None:
            effect = _pending_effect(entry)  # resend exactly what an earlier try may already have written
        if self._touched is not None:
            self._touched.unfinished[key] = effect
        earlier_try = entry is not None
        applied = await self._look_then_write(
            key,
            effect,
            earlier_try or look_first,
            find_existing,
            write,
            checkpoint,
            earlier_try=earlier_try,
            index=index,
        )
        if self._touched is not None:
            self._touched.unfinished.pop(key, None)
        return applied

    async def _look_then_write(
        self,
        key: str,
        effect: Any,
        look: bool,
        find_existing: FindExisting,
        write: Write,
        checkpoint: Checkpoint,
        *,
        earlier_try: bool,
        index: str | None,
    ) -> Applied:
        if look:
            found = await find_existing(effect)
            if found is not None:
                await self.done(key, found, index=index)
                return Applied("found_in_crm", found)
        await checkpoint("before_crm_write")
        try:
            crm_id = await write(effect)
        except (*REFUSED, CrmNotSentError):
            # The CRM said no (or the shared limiter never sent the write), so this write did nothing and the
            # entry this call made guards nothing: it goes, with the personal data it holds. Only a refusal
            # proves that (after a timeout or a 5xx the write may have happened), and only for this call's
            # write: an entry an earlier try left may stand for a write whose answer was lost and that the look
            # above did not see yet, so it stays pending and the dead letter names it (a replay looks for the
            # effect before writing it).
            if not earlier_try:
                await self._redis.delete(key)
            raise
        await checkpoint("after_crm_write")
        await self.done(key, crm_id, index=index)
        return Applied("created", crm_id)

    # --- Finding one record's pending entries ------------------------------------------------------------
    # Keys are digests, so a record's entries cannot be found from the record. An action that may need them
    # later names its key in an index (a Redis set per record, keys.pending_effects) before apply_once and
    # drops it once apply_once returns: a key left there belongs to a try that failed before it was done.

    async def track(self, index: str, key: str) -> None:
        """Name `key` in `index` before applying its effect."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.sadd(index, key)
            pipe.expire(index, LEDGER_TTL_S)
            await pipe.execute()

    async def untrack(self, index: str, key: str) -> None:
        """Drop `key` from `index`: its entry is done, or its effect is accounted for elsewhere."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.srem(index, key)
            await pipe.execute()

    async def pending_in(self, index: str) -> dict[str, Any]:
        """The entries `index` names that are still pending, key → the effect each holds.

        Keys whose entry is done, or gone (expired), are dropped from the index on the way.
        """
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.smembers(index)
            (members,) = await pipe.execute()
        pending: dict[str, Any] = {}
        for raw in sorted(members):
            key = raw.decode() if isinstance(raw, bytes) else str(raw)
            entry = await self.get(key)
            if entry is None or entry["state"] == "done":
                await self.untrack(index, key)
            else:
                pending[key] = _pending_effect(entry)
        return pending


# Entries written before apply_once named their fields after the effect (row/row_id for Zoho history rows,
# note/note_id for HubSpot notes); they are read as well, so that an upgrade keeps every entry's meaning.
def _pending_effect(entry: dict[str, Any]) -> Any:
    return entry["effect"] if "effect" in entry else entry.get("row", entry.get("note"))


def _done_id(entry: dict[str, Any]) -> str:
    return str(entry["id"] if "id" in entry else entry.get("row_id", entry.get("note_id", "")))
