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
for) the very same thing instead of something recomputed from data that may have moved on.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

import orjson
from redis.asyncio import Redis

from workers import keys
from workers.actions.base import Checkpoint

LEDGER_TTL_S = keys.LEDGER_TTL_S

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


@dataclass(frozen=True)
class Applied:
    """What apply_once did, and the CRM's id of the effect (a row, a note, ...)."""

    outcome: Outcome
    crm_id: str


class Ledger:
    """Effects by key: {"state": "pending", "effect": ...} before the CRM call, {"state": "done", "id": ...} after."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    async def get(self, key: str) -> dict[str, Any] | None:
        raw = await self._redis.get(key)
        if raw is None:
            return None
        entry: dict[str, Any] = orjson.loads(raw)
        return entry

    async def pending(self, key: str, effect: Any) -> None:
        await self._redis.set(key, orjson.dumps({"state": "pending", "effect": effect}), ex=LEDGER_TTL_S)

    async def done(self, key: str, crm_id: str) -> None:
        await self._redis.set(key, orjson.dumps({"state": "done", "id": crm_id}), ex=LEDGER_TTL_S)

    async def apply_once(
        self,
        key: str,
        effect: Any,
        *,
        find_existing: FindExisting,
        write: Write,
        look_first: bool = False,
        checkpoint: Checkpoint = _no_checkpoint,
    ) -> Applied:
        """Apply `effect` (JSON) in the CRM at most once per `key`, however often this is called.

        `find_existing` looks for the effect in the CRM; it is asked after an earlier try left the effect
        pending (its answer may have been lost after the CRM applied it) and, with `look_first`, always
        (e.g. the CRM may apply such effects itself, or the ledger may have forgotten an old one).
        """
        entry = await self.get(key)
        if entry is not None and entry["state"] == "done":
            return Applied("already_logged", _done_id(entry))
        if entry is not None:
            effect = _pending_effect(entry)  # resend exactly what an earlier try may already have written
        else:
            await self.pending(key, effect)
        if entry is not None or look_first:
            found = await find_existing(effect)
            if found is not None:
                await self.done(key, found)
                return Applied("found_in_crm", found)
        await checkpoint("before_crm_write")
        crm_id = await write(effect)
        await checkpoint("after_crm_write")
        await self.done(key, crm_id)
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
