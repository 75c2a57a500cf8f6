"""Notify body: the default JSON document, with reschedule and text only when there is one. Pure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import orjson

from workers.diff import FieldChange
from workers.notify.body import encode, notify_body

MODIFIED = datetime(2026, 11, 30, 12, 0, 5, tzinfo=UTC)
IST = timezone(timedelta(hours=5, minutes=30))


def test_a_change_without_a_reschedule_or_text() -> None:
    body = notify_body(
        source="hubspot",
        module="appointments",
        record_id="512",
        operation="update",
        rule="note-cancellations",
        modified_time=MODIFIED,
        changed={"hs_appointment_status": FieldChange("SCHEDULED", "CANCELED")},
        reschedule=None,
        text=None,
    )

    assert body == {
        "type": "crmflow.change",
        "source": "hubspot",
        "module": "appointments",
        "record_id": "512",
        "operation": "update",
        "rule": "note-cancellations",
        "modified_time": "2026-11-30T12:00:05+00:00",
        "changed": {"hs_appointment_status": {"old": "SCHEDULED", "new": "CANCELED"}},
    }


def test_a_reschedule_and_a_text_are_added() -> None:
    old, new = datetime(2026, 12, 1, 9, tzinfo=IST), datetime(2026, 12, 1, 15, tzinfo=IST)

    body = notify_body(
        source="zoho",
        module="Appointments__s",
        record_id="1",
        operation="update",
        rule="late-moves",
        modified_time=MODIFIED,
        changed={"Appointment_Start_Time": FieldChange(old.isoformat(), new.isoformat())},
        reschedule={"old_start": old, "new_start": new, "notice_hours": 15.5},
        text="moved: été",
    )

    assert body["reschedule"] == {
        "old_start": "2026-12-01T09:00:00+05:30",
        "new_start": "2026-12-01T15:00:00+05:30",
        "notice_hours": 15.5,
    }
    assert body["text"] == "moved: été"
    assert orjson.loads(encode(body)) == body


def test_the_encoding_is_compact_utf8_and_takes_any_crm_value() -> None:
    body = {"text": "été", "changed": {"When": {"old": None, "new": datetime(2026, 1, 1, tzinfo=UTC)}}}

    assert encode(body) == '{"text":"été","changed":{"When":{"old":null,"new":"2026-01-01T00:00:00+00:00"}}}'.encode()
