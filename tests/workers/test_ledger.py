"""Ledger.apply_once on real Redis: done → nothing; pending → look, then the same effect again; write → done."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from arq.connections import ArqRedis

from workers.diff import FieldChange
from workers.errors import CrmNotSentError, CrmTransientError
from workers.ledger import Ledger, change_key, effect_key


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


# --- change_key: one change of one record under one rule's action -------------------------------------------

SINCE = datetime(2027, 1, 11, 9, 0, tzinfo=UTC)
MODIFIED = datetime(2027, 1, 11, 9, 30, tzinfo=UTC)


def key(**overrides: Any) -> str:
    values: dict[str, Any] = {
        "source": "zoho",
        "module": "Appointments__s",
        "record_id": "1",
        "rule": "late-moves",
        "index": 0,
        "since": SINCE,
        "operation": "update",
        "modified_time": MODIFIED,
    } | overrides
    return change_key(
        values.pop("source"),
        values.pop("module"),
        values.pop("record_id"),
        values.pop("rule"),
        values.pop("index"),
        **values,
    )


def test_a_change_is_known_by_the_state_it_moved_away_from() -> None:
    # A retry after a crash before the snapshot was saved diffs against the same snapshot: the same key, even
    # if the record changed again meanwhile (a newer modified time), and whatever the offset the time came with.
    assert key() == key(modified_time=MODIFIED + timedelta(minutes=5))
    assert key() == key(since=SINCE.astimezone(timezone(timedelta(hours=2))))
    assert key().startswith("crmflow:ledger:")
    # The next change moves away from a newer snapshot.
    assert key() != key(since=MODIFIED)


def test_a_delete_from_the_same_snapshot_as_an_unfinished_update_is_another_change() -> None:
    # An update whose job failed after its notify leaves the snapshot where it was; the delete that follows moves
    # away from that same snapshot and must still be delivered, with a body of its own.
    assert key(operation="delete") != key(operation="update")


@pytest.mark.parametrize(
    "other",
    [{"source": "hubspot"}, {"module": "Other"}, {"record_id": "2"}, {"rule": "other"}, {"index": 1}],
)
def test_each_record_rule_and_action_has_its_own_key(other: dict[str, Any]) -> None:
    assert key() != key(**other)


def test_without_a_known_earlier_state_the_change_is_its_operation_and_modified_time() -> None:
    first_seen = key(since=None)

    assert first_seen == key(since=None, modified_time=MODIFIED.astimezone(timezone(timedelta(hours=-5))))
    assert first_seen != key(since=None, modified_time=MODIFIED + timedelta(seconds=1))
    assert first_seen != key(since=None, operation="delete")
    assert first_seen != key()


def test_a_first_seen_change_is_its_operation_and_what_changed() -> None:
    # update_record moves the record's modified time: a retry after a crash past that write must find the key of
    # the change it was acting on, so a first-seen change with known old values is keyed by them.
    moved = {"Appointment_Start_Time": FieldChange(old="2027-01-12T09:00:00+00:00", new="2027-01-13T09:00:00+00:00")}
    first = key(since=None, changed=moved)

    assert first == key(since=None, changed=moved, modified_time=MODIFIED + timedelta(minutes=1))
    # The same instants written with another offset are the same change, as the diff sees them.
    shifted = {"Appointment_Start_Time": FieldChange(old="2027-01-12T11:00:00+02:00", new="2027-01-13T09:00:00Z")}
    assert first == key(since=None, changed=shifted)
    other = {"Appointment_Start_Time": FieldChange(old="2027-01-12T09:00:00+00:00", new="2027-01-14T09:00:00+00:00")}
    assert first != key(since=None, changed=other)
    # A sweep that finds the record first infers its old values from its window (since = the window's start):
    # the same change as the notification's job that failed before saving a snapshot.
    assert first == key(since=SINCE, first_seen=True, changed=moved)
    # Once a snapshot is known, the state moved away from decides, as before.
    assert key(changed=moved) == key()


def test_an_insert_is_one_change_however_often_it_is_notified() -> None:
    assert key(since=None, operation="insert") == key(
        since=None, operation="insert", modified_time=MODIFIED + timedelta(hours=1)
    )
