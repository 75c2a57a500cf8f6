"""Pending ledger entries (they hold the row or note: personal data) never outlive what they protect or their letter.

On real Redis: a write the CRM refuses drops its pending entry, any other failure keeps it; a dead letter
names the entries its action left pending, they expire with it and go when it is purged; done entries stay.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from arq.connections import ArqRedis

from tests.test_dlq import refused
from tests.workers.test_ledger import FakeCrm
from workers.deadletters import DeadLetters
from workers.errors import CrmAuthError, CrmError, CrmNotFoundError, CrmRejectedError, CrmTransientError
from workers.ledger import Ledger, Touched, effect_key

KEY = effect_key("zoho", "Appointments__s", "1", "log_reschedule_history", "a", "b", "1")
OTHER = effect_key("zoho", "Appointments__s", "1", "log_reschedule_history", "b", "c", "2")


class Refusing(FakeCrm):
    """A CRM whose next write fails with `error` (and writes nothing)."""

    def __init__(self, error: CrmError) -> None:
        super().__init__()
        self.error: CrmError | None = error

    async def write(self, effect: Any) -> str:
        if self.error is not None:
            error, self.error = self.error, None
            raise error
        return await super().write(effect)


@pytest.mark.parametrize(
    "error",
    [
        CrmRejectedError("invalid data", code="INVALID_DATA"),
        CrmAuthError("no scope", code="MISSING_SCOPES"),
        CrmNotFoundError("gone", code="OBJECT_NOT_FOUND"),
    ],
    ids=["rejected", "auth", "not-found"],
)
async def test_a_refused_write_leaves_no_pending_entry(redis: ArqRedis, error: CrmError) -> None:
    crm, ledger = Refusing(error), Ledger(redis)

    with pytest.raises(type(error)):
        await ledger.apply_once(KEY, {"row": 1}, find_existing=crm.find, write=crm.write)

    assert await ledger.get(KEY) is None
    # Nothing is lost: the next try starts afresh and writes once.
    assert (await ledger.apply_once(KEY, {"row": 1}, find_existing=crm.find, write=crm.write)).outcome == "created"
    assert crm.writes == 1


async def test_a_write_that_may_have_happened_keeps_its_pending_entry(redis: ArqRedis) -> None:
    # A timeout or 5xx proves nothing: the CRM may have applied the write, so the next try must look first.
    crm, ledger = Refusing(CrmTransientError("timed out", code="TIMEOUT")), Ledger(redis)

    with pytest.raises(CrmTransientError):
        await ledger.apply_once(KEY, {"row": 1}, find_existing=crm.find, write=crm.write)

    assert await ledger.get(KEY) == {"state": "pending", "effect": {"row": 1}}


async def test_a_refusal_after_a_lost_answer_keeps_the_earlier_tries_entry(redis: ArqRedis) -> None:
    # Try 1 is applied but its answer is lost; try 2 does not see it yet (the CRM's lists lag) and its own
    # write is refused. The entry still stands for try 1's write: dropping it would let a replay write twice.
    crm, ledger = FakeCrm(), Ledger(redis)
    crm.lose_answers = 1
    with pytest.raises(CrmTransientError):
        await ledger.apply_once(KEY, {"row": 1}, find_existing=crm.find, write=crm.write)

    async def lagging(effect: Any) -> str | None:
        return None

    refusing = Refusing(CrmRejectedError("invalid data", code="INVALID_DATA"))
    with pytest.raises(CrmRejectedError):
        await ledger.apply_once(KEY, {"row": 1}, find_existing=lagging, write=refusing.write)
    replayed = await ledger.apply_once(KEY, {"row": 1}, find_existing=crm.find, write=crm.write)

    assert (replayed.outcome, replayed.crm_id) == ("found_in_crm", "id-1")
    assert crm.writes == 1


async def test_a_traced_ledger_notes_its_keys_and_what_it_had_not_applied(redis: ArqRedis) -> None:
    crm, touched = Refusing(CrmTransientError("timed out", code="TIMEOUT")), Touched()
    ledger = Ledger(redis).tracing(touched)
    crm.error = None

    await ledger.apply_once(OTHER, {"row": 2}, find_existing=crm.find, write=crm.write)
    crm.error = CrmRejectedError("invalid data", code="INVALID_DATA")
    with pytest.raises(CrmRejectedError):
        await ledger.apply_once(KEY, {"row": 1}, find_existing=crm.find, write=crm.write)

    assert touched.keys == [OTHER, KEY]
    assert touched.unfinished == {KEY: {"row": 1}}


async def test_pending_among_and_forget_pending_leave_done_entries_alone(redis: ArqRedis) -> None:
    ledger = Ledger(redis)
    await ledger.pending(KEY, {"row": 1})
    await ledger.done(OTHER, "row-2")
    await redis.set(effect_key("legacy"), b'{"state": "pending", "row": {"x": 1}}')

    assert await ledger.pending_among([OTHER, KEY, effect_key("none")]) == [KEY]
    assert await ledger.forget_pending([KEY, OTHER, effect_key("legacy"), effect_key("none")]) == 2
    assert await ledger.get(KEY) is None
    assert await ledger.get(OTHER) == {"state": "done", "id": "row-2"}


async def test_a_letters_pending_entries_expire_with_it_and_go_when_it_is_purged(redis: ArqRedis) -> None:
    ledger, store = Ledger(redis), DeadLetters(redis)
    await ledger.pending(KEY, {"row": 1})
    await ledger.done(OTHER, "row-2")
    old = refused("old", failed_ago=timedelta(days=3), ledger_keys=(KEY, OTHER))
    await store.add(old)

    ttl_s = await redis.ttl(KEY)
    done_ttl_s = await redis.ttl(OTHER)
    kept = await store.purge(datetime.now(UTC) - timedelta(days=4))
    purged = await store.purge(datetime.now(UTC) - timedelta(days=2))

    assert (kept, purged) == (0, 1)
    # 14 days after its last failure, and a day more for a replay queued as the letter expires.
    assert timedelta(days=11) < timedelta(seconds=ttl_s) <= timedelta(days=12)
    assert done_ttl_s > timedelta(days=29).total_seconds()  # a done entry keeps the ledger's 30 days
    assert await ledger.get(KEY) is None
    assert await ledger.get(OTHER) == {"state": "done", "id": "row-2"}  # done entries keep effects from repeating


async def test_replaying_a_letter_keeps_its_pending_entries(redis: ArqRedis) -> None:
    # The replayed action needs them: after a lost answer it must look for (and resend) the very same effect.
    ledger, store = Ledger(redis), DeadLetters(redis)
    await ledger.pending(KEY, {"row": 1})
    letter = refused(ledger_keys=(KEY,))
    await store.add(letter)

    assert await store.delete(letter.id)
    assert await ledger.get(KEY) == {"state": "pending", "effect": {"row": 1}}


async def test_discarding_chosen_letters_removes_them_and_their_pending_entries(redis: ArqRedis) -> None:
    # The console's purge of one or many letters by id: as `purge`, only of the letters chosen.
    ledger, store = Ledger(redis), DeadLetters(redis)
    await ledger.pending(KEY, {"row": 1})
    await ledger.pending(OTHER, {"row": 2})
    chosen, spared = refused("1", ledger_keys=(KEY,)), refused("2", ledger_keys=(OTHER,))
    await store.add(chosen)
    await store.add(spared)

    removed = await store.discard([chosen.id, chosen.id, "no-such-letter"])

    assert removed == [chosen.id]
    assert [letter.id for letter in await store.all()] == [spared.id]
    assert await ledger.get(KEY) is None
    assert await ledger.get(OTHER) == {"state": "pending", "effect": {"row": 2}}
