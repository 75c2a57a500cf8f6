"""Building a finished job's event log entry: outcome, actions with the CRM's ids, withheld personal values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from workers.contract import ChangeEvent
from workers.diff import Change, FieldChange
from workers.event_entry import build_entry
from workers.eventlog import EntryField
from workers.job_notes import JobNotes

T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
EVENT = ChangeEvent(
    source="zoho",
    module="Appointments__s",
    record_id="42",
    operation="update",
    changed_fields=("Appointment_Start_Time",),
    notified_at_ms=1_764_493_200_000,
    channel_id="1000",
)


def built(result: dict[str, Any], notes: JobNotes | None = None, event: ChangeEvent = EVENT) -> Any:
    notes = notes or JobNotes(started_at=T0)
    return build_entry(
        job="process_change",
        job_id=event.job_id(),
        event=event,
        result=result,
        notes=notes,
        runs=2,
        received_at=T0 - timedelta(seconds=1),
        finished_at=T0 + timedelta(seconds=1),
    )


def test_a_processed_change_keeps_its_actions_crm_ids_and_only_values_that_are_not_personal() -> None:
    change = Change(
        fields={
            "Appointment_Start_Time": FieldChange("2026-12-01T10:00:00+00:00", "2026-12-02T10:00:00+00:00"),
            "Reschedule_Note": FieldChange(None, "Patient moved to Leeds"),
        }
    )
    notes = JobNotes(started_at=T0, change=change, crm_s=0.25, crm_calls=3)
    actions = [
        {"rule": "r1", "action": "log_reschedule_history", "status": "created", "detail": "777"},
        {"rule": "r2", "action": "create_hubspot_note", "status": "found_in_crm", "detail": "1,2"},
    ]

    entry = built({"status": "processed", "first_seen": False, "actions": actions}, notes)

    assert entry.outcome == "processed"
    assert entry.rules == ("r1", "r2")
    assert [a.crm_ids for a in entry.actions] == [("777",), ("1", "2")]
    assert entry.changes == (
        EntryField(name="Appointment_Start_Time", old="2026-12-01T10:00:00+00:00", new="2026-12-02T10:00:00+00:00"),
        EntryField(name="Reschedule_Note", withheld=True),
    )
    assert "Leeds" not in entry.model_dump_json()
    assert (entry.tries, entry.timings.crm_calls, entry.timings.crm_s) == (2, 3, 0.25)
    assert entry.notified_at == datetime.fromtimestamp(EVENT.notified_at_ms / 1000, UTC)
    assert (entry.announced_fields, entry.channel_id, entry.replay_of) == (("Appointment_Start_Time",), "1000", None)


def test_outcomes() -> None:
    letter = {"status": "dead_lettered", "dead_letter": "abc", "error": "INVALID_TOKEN"}
    assert (built(letter).outcome, built(letter).dead_letters, built(letter).error) == (
        "dead_lettered",
        ("abc",),
        "INVALID_TOKEN",
    )
    refused = {"rule": "r", "action": "a", "status": "dead_lettered", "error": "INVALID_DATA"}
    assert built({"status": "processed", "actions": [refused]}).outcome == "dead_lettered"
    # A missed reschedule's letter, noted while the action itself succeeded.
    created = {"rule": "r", "action": "a", "status": "created", "detail": "9"}
    noted = JobNotes(started_at=T0, dead_letters=["missed"])
    assert built({"status": "processed", "actions": [created]}, noted).outcome == "dead_lettered"
    for nothing in ({"status": "processed", "actions": []}, {"status": "stale"}, {"status": "deleted"}):
        assert built(nothing).outcome == "nothing_to_do"
    assert built({"status": "replayed", "actions": [created]}).outcome == "processed"


def test_a_replay_names_the_letter_it_replays() -> None:
    event = EVENT.model_copy(update={"replay": 5, "replay_of": "0123456789abcdef"})
    assert built({"status": "processed"}, event=event).replay_of == "0123456789abcdef"
