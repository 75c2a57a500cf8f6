"""Own writes: which changed fields are crmflow's own, which entries are consumed, and their life in Redis."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest
from arq.connections import ArqRedis

from workers import keys
from workers.diff import Change, FieldChange, Snapshot
from workers.own_writes import drop_own_writes, entry, forget, load_state, matches, remember, save_state

WHERE = ("zoho", "Appointments__s", "9")
SNAPSHOT = Snapshot(modified_time=datetime(2026, 11, 30, 9, 0, tzinfo=UTC), fields={"Stamp": "old"})
# The change a write was made for (the snapshot it moved away from), and a later one.
WRITTEN_FOR = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
LATER = datetime(2026, 11, 30, 8, 5, tzinfo=UTC)


def _entries(since: datetime | None = WRITTEN_FOR, **values: object) -> dict[str, bytes]:
    return {name: entry(value, since) for name, value in values.items()}


def _change(since: datetime | None = LATER, **moves: tuple[object, object]) -> Change:
    return Change(fields={name: FieldChange(old, new) for name, (old, new) in moves.items()}, since=since)


@pytest.mark.parametrize(
    ("written", "seen", "same"),
    [
        ("a", "a", True),
        ("2027-01-12T10:00:00+00:00", "2027-01-12T11:00:00+01:00", True),
        ("3", 3, True),
        ("true", True, True),
        ("", None, True),
        ("a", "b", False),
        ("3", 4, False),
        ("x", {"id": "x"}, False),
        (None, "", False),
    ],
)
def test_a_written_text_matches_what_the_crm_reads_it_back_as(written: object, seen: object, same: bool) -> None:
    assert matches(written, seen) is same


def test_a_change_made_only_of_own_writes_is_empty_and_its_entry_consumed() -> None:
    change = _change(Stamp=("old", "moved by crmflow"))
    entries = _entries(Stamp="moved by crmflow")

    found = drop_own_writes(change, {"Stamp": "moved by crmflow"}, entries)

    assert (found.change.fields, found.dropped, found.consumed) == ({}, {"Stamp"}, entries)
    assert found.only_own_writes


def test_a_person_writing_another_value_still_changes_the_field_and_supersedes_the_entry() -> None:
    change = _change(Stamp=("moved by crmflow", "moved by Ann"), Status=("Scheduled", "Cancelled"))
    entries = _entries(Stamp="moved by crmflow")

    found = drop_own_writes(change, {"Stamp": "moved by Ann", "Status": "Cancelled"}, entries)

    assert set(found.change.fields) == {"Stamp", "Status"} and found.dropped == set()
    assert found.consumed == entries


def test_other_changes_stay_and_an_entry_the_record_does_not_show_yet_is_kept() -> None:
    change = _change(Status=("Scheduled", "Cancelled"))
    entries = _entries(Stamp="moved by crmflow", Hidden="x")

    found = drop_own_writes(change, {"Status": "Cancelled", "Stamp": "old"}, entries)

    assert set(found.change.fields) == {"Status"} and found.dropped == set() and found.consumed == {}


def test_the_change_a_write_was_for_seen_again_keeps_the_field_when_its_entry_lacks_the_value_before() -> None:
    # Its job was killed before it saved the new state: this job is that change again, under the same keys. An
    # entry written before entries kept the value before the write: the field stays as the diff sees it.
    change = _change(since=WRITTEN_FOR, Stamp=("old", "moved by crmflow"))
    entries = _entries(Stamp="moved by crmflow")

    found = drop_own_writes(change, {"Stamp": "moved by crmflow"}, entries)

    assert (set(found.change.fields), found.dropped, found.consumed) == ({"Stamp"}, set(), entries)


def _again(**values: tuple[object, object]) -> dict[str, bytes]:
    """Entries written for the change that moved away from WRITTEN_FOR: field -> (value written, value before)."""
    return {name: entry(value, WRITTEN_FOR, was) for name, (value, was) in values.items()}


def test_a_retry_of_the_change_a_write_was_for_sees_the_change_as_its_first_try_did() -> None:
    # Ann typed a note and renamed the appointment; crmflow's rule rewrote the note; the job ended before saving.
    change = _change(since=WRITTEN_FOR, Stamp=("old", "checked by crmflow"), Name=("a", "b"))
    entries = _again(Stamp=("checked by crmflow", "typed by Ann"))
    current = {"Stamp": "checked by crmflow", "Name": "b", "Modified_Time": "later"}

    found = drop_own_writes(change, current, entries, before={"Stamp": "old", "Name": "a"})

    assert found.change.fields == {"Name": FieldChange("a", "b"), "Stamp": FieldChange("old", "typed by Ann")}
    assert (found.dropped, found.restored, found.consumed) == (set(), {"Stamp": "typed by Ann"}, entries)
    assert found.record_as_seen(current) == {"Stamp": "typed by Ann", "Name": "b", "Modified_Time": "later"}
    assert not found.only_own_writes


def test_a_retry_leaves_out_a_written_field_that_had_not_changed_before_the_write() -> None:
    # A rule on `when.operation` alone stamped the field: its first try saw no change of it, nor does its retry,
    # and its rules still run (the change is not one made only of own writes: it is the person's change again).
    change = _change(since=WRITTEN_FOR, Stamp=("old", "stamped"), Modified_Time=("t0", "t2"))
    entries = _again(Stamp=("stamped", "old"))

    found = drop_own_writes(
        change, {"Stamp": "stamped"}, entries, before={"Stamp": "old"}, system_fields={"Modified_Time"}
    )

    assert found.change.fields == {"Modified_Time": FieldChange("t0", "t2")}
    assert found.restored == {"Stamp": "old"} and not found.only_own_writes


def test_a_retry_before_the_write_reached_the_crm_sees_the_diff_and_keeps_the_entry() -> None:
    change = _change(since=WRITTEN_FOR, Stamp=("old", "typed by Ann"))
    entries = _again(Stamp=("checked by crmflow", "typed by Ann"))

    found = drop_own_writes(change, {"Stamp": "typed by Ann"}, entries, before={"Stamp": "old"})

    assert found.change.fields == change.fields
    assert (found.restored, found.consumed) == ({"Stamp": "typed by Ann"}, {})


def test_a_retry_that_finds_a_newer_value_by_a_person_sees_their_change() -> None:
    change = _change(since=WRITTEN_FOR, Stamp=("old", "typed by Bob"))
    entries = _again(Stamp=("checked by crmflow", "typed by Ann"))

    found = drop_own_writes(change, {"Stamp": "typed by Bob"}, entries, before={"Stamp": "old"})

    assert found.change.fields == change.fields
    assert (found.dropped, found.restored, found.consumed) == (set(), {}, entries)


def test_what_the_crm_changes_on_any_write_goes_with_crmflows_own_write() -> None:
    change = _change(Stamp=("old", "stamped"), Modified_Time=("t0", "t1"), Modified_By=("Ann", "crmflow"))
    system = {"Modified_Time", "Modified_By"}

    found = drop_own_writes(change, {"Stamp": "stamped"}, _entries(Stamp="stamped"), system_fields=system)

    assert (found.change.fields, found.dropped) == ({}, {"Stamp"}) and found.only_own_writes


def test_a_persons_change_beside_crmflows_write_still_fires() -> None:
    change = _change(Stamp=("old", "stamped"), Modified_Time=("t0", "t1"), Status=("Scheduled", "Cancelled"))

    found = drop_own_writes(change, {"Stamp": "stamped"}, _entries(Stamp="stamped"), system_fields={"Modified_Time"})

    assert found.change.fields == {"Status": FieldChange("Scheduled", "Cancelled")} and not found.only_own_writes


def test_what_the_crm_changes_on_any_write_stays_when_crmflow_wrote_nothing() -> None:
    change = _change(Modified_Time=("t0", "t1"))

    found = drop_own_writes(change, {}, _entries(Stamp="not shown yet"), system_fields={"Modified_Time"})

    assert found.change.fields == change.fields and not found.only_own_writes


def test_a_retry_of_a_first_seen_change_sees_the_record_as_its_first_try_did() -> None:
    # No state was saved: the record is still seen for the first time, and the write was for that change.
    change = Change(fields={}, first_seen=True)
    entries = {"Stamp": entry("welcomed", None, "typed by Ann")}

    found = drop_own_writes(change, {"Stamp": "welcomed"}, entries)

    assert (found.change.fields, found.dropped, found.restored) == ({}, set(), {"Stamp": "typed by Ann"})
    assert found.consumed == entries and not found.only_own_writes


def test_an_entry_keeps_the_value_before_the_write() -> None:
    assert orjson.loads(entry("x", None, "before")) == {"value": "x", "since": None, "was": "before"}


def test_a_write_for_a_first_seen_record_is_dropped_even_before_any_state_was_saved() -> None:
    change = _change(since=None, Stamp=("old", "moved by crmflow"))
    entries = _entries(since=None, Stamp="moved by crmflow")

    assert drop_own_writes(change, {"Stamp": "moved by crmflow"}, entries).dropped == {"Stamp"}


def test_an_entry_keeps_the_value_and_the_change_it_was_written_for() -> None:
    assert orjson.loads(entry("x", datetime(2026, 11, 30, 9, 0, tzinfo=UTC))) == {
        "value": "x",
        "since": "2026-11-30T09:00:00+00:00",
    }


def test_no_entries_leave_the_change_as_it_is() -> None:
    change = _change(Status=("Scheduled", "Cancelled"))

    found = drop_own_writes(change, {}, {})

    assert (found.change, found.dropped, found.restored, found.consumed) == (change, set(), {}, {})


async def test_remembered_values_are_read_with_the_snapshot_and_live_a_day(redis: ArqRedis) -> None:
    await remember(redis, *WHERE, {"Stamp": "moved", "Visits": "3"}, WRITTEN_FOR)

    snapshot, entries = await load_state(redis, *WHERE)

    assert snapshot is None
    assert entries == _entries(Stamp="moved", Visits="3")
    ttl = await redis.ttl(keys.own_writes(*WHERE))
    assert keys.OWN_WRITES_TTL_S - 5 < ttl <= keys.OWN_WRITES_TTL_S


async def test_saving_the_state_deletes_only_consumed_entries_that_still_hold_their_value(redis: ArqRedis) -> None:
    await remember(redis, *WHERE, {"Stamp": "first", "Other": "kept"}, WRITTEN_FOR)
    _, entries = await load_state(redis, *WHERE)
    await remember(redis, *WHERE, {"Other": "written again meanwhile"}, WRITTEN_FOR)

    await save_state(redis, *WHERE, SNAPSHOT, {"Stamp": entries["Stamp"], "Other": entries["Other"]})

    snapshot, left = await load_state(redis, *WHERE)
    assert snapshot == SNAPSHOT
    assert left == _entries(Other="written again meanwhile")


async def test_saving_with_nothing_consumed_only_saves_the_snapshot(redis: ArqRedis) -> None:
    await remember(redis, *WHERE, {"Stamp": "first"}, WRITTEN_FOR)

    await save_state(redis, *WHERE, SNAPSHOT, {})

    assert await load_state(redis, *WHERE) == (SNAPSHOT, _entries(Stamp="first"))


async def test_a_refused_write_is_forgotten_unless_the_entry_names_another_value(redis: ArqRedis) -> None:
    await remember(redis, *WHERE, {"Stamp": "refused", "Other": "newer"}, WRITTEN_FOR)

    await forget(redis, *WHERE, {"Stamp": "refused", "Other": "older"}, WRITTEN_FOR)

    assert (await load_state(redis, *WHERE))[1] == _entries(Other="newer")


async def test_the_value_before_the_write_is_remembered_and_forgotten_with_the_write(redis: ArqRedis) -> None:
    before = {"Stamp": "typed by Ann"}
    await remember(redis, *WHERE, {"Stamp": "checked", "Empty": "x"}, WRITTEN_FOR, before)

    _, entries = await load_state(redis, *WHERE)
    assert entries == {"Stamp": entry("checked", WRITTEN_FOR, "typed by Ann"), "Empty": entry("x", WRITTEN_FOR, None)}

    await forget(redis, *WHERE, {"Stamp": "checked", "Empty": "x"}, WRITTEN_FOR, before)
    assert (await load_state(redis, *WHERE))[1] == {}
