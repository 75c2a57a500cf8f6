"""Finding one record's pending ledger entries: the index an action keeps around Ledger.apply_once."""

from __future__ import annotations

from typing import Any

import pytest
from arq.connections import ArqRedis

from workers import keys
from workers.errors import CrmTransientError
from workers.ledger import Ledger, effect_key

INDEX = keys.pending_effects("zoho", "Appointments__s", "1")


def key(n: int) -> str:
    return effect_key("zoho", "Appointments__s", "1", "log_reschedule_history", str(n))


async def lost(effect: Any) -> str:
    raise CrmTransientError("answer lost", code="TIMEOUT")


async def nowhere(effect: Any) -> str | None:
    return None


async def test_a_key_left_by_a_try_that_failed_is_found_with_its_effect(redis: ArqRedis) -> None:
    ledger = Ledger(redis)
    await ledger.track(INDEX, key(1))
    with pytest.raises(CrmTransientError):
        await ledger.apply_once(key(1), {"row": 1}, find_existing=nowhere, write=lost)

    assert await ledger.pending_in(INDEX) == {key(1): {"row": 1}}
    assert 0 < await redis.ttl(INDEX) <= keys.LEDGER_TTL_S


async def test_keys_of_done_or_forgotten_entries_are_dropped(redis: ArqRedis) -> None:
    ledger = Ledger(redis)
    for n in (1, 2, 3):
        await ledger.track(INDEX, key(n))
    await ledger.pending(key(1), {"row": 1})
    await ledger.done(key(2), "row-2")  # key(3) has no entry at all: never written, or expired

    assert await ledger.pending_in(INDEX) == {key(1): {"row": 1}}
    async with redis.pipeline(transaction=False) as pipe:
        pipe.smembers(INDEX)
        (members,) = await pipe.execute()
    assert members == {key(1).encode()}  # the others' keys are dropped


async def test_untrack_forgets_a_key(redis: ArqRedis) -> None:
    ledger = Ledger(redis)
    await ledger.track(INDEX, key(1))
    await ledger.pending(key(1), {"row": 1})

    await ledger.untrack(INDEX, key(1))

    assert await ledger.pending_in(INDEX) == {}
    assert await ledger.get(key(1)) == {"state": "pending", "effect": {"row": 1}}
