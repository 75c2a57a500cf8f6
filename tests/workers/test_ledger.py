"""Ledger.apply_once on real Redis: done → nothing; pending → look, then the same effect again; write → done."""

from __future__ import annotations

from typing import Any

import pytest
from arq.connections import ArqRedis

from workers.errors import CrmNotSentError, CrmTransientError
from workers.ledger import Ledger, effect_key


class FakeCrm:
    """Effects by id; `lose_answers` writes but raises, as a timeout after the CRM applied the write."""

    def __init__(self) -> None:
        self.effects: dict[str, Any] = {}
        self.writes = 0
        self.looks = 0
        self.lose_answers = 0

    async def find(self, effect: Any) -> str | None:
        self.looks += 1
        return next((crm_id for crm_id, found in self.effects.items() if found == effect), None)

    async def write(self, effect: Any) -> str:
        self.writes += 1
        crm_id = f"id-{self.writes}"
        self.effects[crm_id] = effect
        if self.lose_answers:
            self.lose_answers -= 1
            raise CrmTransientError("answer lost", code="TIMEOUT")
        return crm_id


KEY = effect_key("zoho", "Appointments__s", "1", "log_reschedule_history", "a", "b", "1")


async def test_a_new_effect_is_written_once_without_looking(redis: ArqRedis) -> None:
    crm, ledger = FakeCrm(), Ledger(redis)

    first = await ledger.apply_once(KEY, {"row": 1}, find_existing=crm.find, write=crm.write)
    again = await ledger.apply_once(KEY, {"row": 1}, find_existing=crm.find, write=crm.write)

    assert (first.outcome, first.crm_id) == ("created", "id-1")
    assert (again.outcome, again.crm_id) == ("already_logged", "id-1")
    assert (crm.writes, crm.looks) == (1, 0)
    assert await ledger.get(KEY) == {"state": "done", "id": "id-1"}


async def test_after_a_lost_answer_the_retry_finds_the_pending_effect_instead_of_writing_it_again(
    redis: ArqRedis,
) -> None:
    crm, ledger = FakeCrm(), Ledger(redis)
    crm.lose_answers = 1

    with pytest.raises(CrmTransientError):
        await ledger.apply_once(KEY, {"row": 1}, find_existing=crm.find, write=crm.write)
    # The data moved on meanwhile: the retry still looks for (and would send) exactly what was pending.
    retried = await ledger.apply_once(KEY, {"row": 2}, find_existing=crm.find, write=crm.write)

    assert (retried.outcome, retried.crm_id) == ("found_in_crm", "id-1")
    assert crm.writes == 1


async def test_a_pending_effect_not_in_the_crm_is_written_as_it_was_kept(redis: ArqRedis) -> None:
    crm, ledger = FakeCrm(), Ledger(redis)
    await ledger.pending(KEY, {"row": 1})

    applied = await ledger.apply_once(KEY, {"row": 2}, find_existing=crm.find, write=crm.write)

    assert applied.outcome == "created"
    assert crm.effects == {"id-1": {"row": 1}}


async def test_look_first_adopts_an_effect_the_crm_already_has(redis: ArqRedis) -> None:
    crm, ledger = FakeCrm(), Ledger(redis)
    crm.effects["id-9"] = {"row": 1}  # e.g. written by the CRM itself, or before the ledger forgot it

    applied = await ledger.apply_once(KEY, {"row": 1}, find_existing=crm.find, write=crm.write, look_first=True)

    assert (applied.outcome, applied.crm_id) == ("found_in_crm", "id-9")
    assert crm.writes == 0


async def test_checkpoints_surround_the_write(redis: ArqRedis) -> None:
    crm, ledger, reached = FakeCrm(), Ledger(redis), []

    async def checkpoint(point: str) -> None:
        reached.append((point, crm.writes))

    await ledger.apply_once(KEY, {"row": 1}, find_existing=crm.find, write=crm.write, checkpoint=checkpoint)

    assert reached == [("before_crm_write", 0), ("after_crm_write", 1)]


@pytest.mark.parametrize(
    ("entry", "outcome", "crm_id"),
    [
        (b'{"state": "done", "row_id": "r7"}', "already_logged", "r7"),
        (b'{"state": "done", "note_id": "n7"}', "already_logged", "n7"),
        (b'{"state": "pending", "row": {"row": 1}}', "found_in_crm", "id-3"),
        (b'{"state": "pending", "note": {"row": 1}}', "found_in_crm", "id-3"),
    ],
)
async def test_entries_written_before_apply_once_keep_their_meaning(
    redis: ArqRedis, entry: bytes, outcome: str, crm_id: str
) -> None:
    crm, ledger = FakeCrm(), Ledger(redis)
    crm.effects["id-3"] = {"row": 1}
    await redis.set(KEY, entry)

    applied = await ledger.apply_once(KEY, {"row": 2}, find_existing=crm.find, write=crm.write)

    assert (applied.outcome, applied.crm_id) == (outcome, crm_id)
    assert crm.writes == 0


async def test_a_write_the_shared_limiter_never_sent_leaves_nothing_pending(redis: ArqRedis) -> None:
    crm, ledger = FakeCrm(), Ledger(redis)

    async def not_sent(effect: Any) -> str:
        raise CrmNotSentError("zoho: the account's shared limiter is at its limit", code="LIMITER_FULL")

    with pytest.raises(CrmNotSentError):
        await ledger.apply_once(KEY, {"row": 1}, find_existing=crm.find, write=not_sent)
    retried = await ledger.apply_once(KEY, {"row": 1}, find_existing=crm.find, write=crm.write)

    # Nothing was sent, so the retry writes at once instead of looking in the CRM first.
    assert (retried.outcome, crm.looks, crm.writes) == ("created", 0, 1)
