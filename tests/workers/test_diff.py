"""diff(): changes over watched fields, first-seen records, stale reads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from workers.diff import FieldChange, Snapshot, diff, lags_listing, snapshot_of
from workers.record import Record

T0 = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
WATCHED = frozenset({"Appointment_Start_Time", "Status"})


def record(modified: datetime = T0, **fields: Any) -> Record:
    return Record(source="zoho", module="Appointments__s", id="1", modified_time=modified, fields=fields)


def test_changed_field_reports_old_and_new() -> None:
    before = Snapshot(T0, {"Appointment_Start_Time": "2026-11-24T09:00:00+00:00", "Status": "Scheduled"})
    now = record(T0 + timedelta(minutes=1), Appointment_Start_Time="2026-11-25T09:00:00+00:00", Status="Scheduled")

    change = diff(before, now, WATCHED)

    assert change.fields == {
        "Appointment_Start_Time": FieldChange("2026-11-24T09:00:00+00:00", "2026-11-25T09:00:00+00:00")
    }
    assert not change.first_seen
    assert not change.stale


def test_same_instant_in_another_offset_is_no_change() -> None:
    before = Snapshot(T0, {"Appointment_Start_Time": "2026-11-24T09:00:00+00:00"})
    now = record(T0 + timedelta(minutes=1), Appointment_Start_Time="2026-11-24T14:30:00+05:30")

    assert diff(before, now, WATCHED).fields == {}


def test_older_record_is_stale_and_changes_nothing() -> None:
    before = Snapshot(T0, {"Appointment_Start_Time": "2026-11-25T09:00:00+00:00"})
    older = record(T0 - timedelta(seconds=1), Appointment_Start_Time="2026-11-24T09:00:00+00:00")

    change = diff(before, older, WATCHED)

    assert change.stale
    assert change.fields == {}


def test_same_modified_time_is_not_stale() -> None:
    before = Snapshot(T0, {"Status": "Scheduled"})

    assert not diff(before, record(T0, Status="Scheduled"), WATCHED).stale


def test_first_seen_changes_only_what_the_record_itself_tells() -> None:
    now = record(Appointment_Start_Time="2026-11-25T09:00:00+00:00", Status="Scheduled")

    plain = diff(None, now, WATCHED)
    inferred = diff(None, now, WATCHED, inferred_previous={"Appointment_Start_Time": "2026-11-24T09:00:00+00:00"})

    assert plain.first_seen
    assert plain.fields == {}
    assert inferred.fields == {
        "Appointment_Start_Time": FieldChange("2026-11-24T09:00:00+00:00", "2026-11-25T09:00:00+00:00")
    }


def test_field_missing_from_snapshot_is_unknown_not_changed() -> None:
    before = Snapshot(T0, {"Status": "Scheduled"})

    change = diff(before, record(T0, Status="Scheduled", Appointment_Start_Time="x"), WATCHED)

    assert change.fields == {}


def test_snapshot_keeps_only_watched_fields() -> None:
    snap = snapshot_of(record(T0, Status="Scheduled", Location="Here"), WATCHED)

    assert snap == Snapshot(T0, {"Appointment_Start_Time": None, "Status": "Scheduled"})


def test_a_record_older_than_its_listing_lags() -> None:
    listed = T0 + timedelta(seconds=10)

    assert lags_listing(record(T0), listed)
    # Zoho's modified times have whole seconds and its servers' clocks differ slightly: within the margin.
    assert not lags_listing(record(listed - timedelta(seconds=1)), listed)
    assert not lags_listing(record(listed), listed)
