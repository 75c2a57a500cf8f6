"""Pure checks for one POST /Appointments_Rescheduled_History__s row (shape, types, the time rule).

Source: Zoho's v7 "Add Appointments Rescheduled History" page. The checks that need the CRM's state
(known appointment and user, NOT_ALLOWED, the 20-row cap) live in the store.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sandbox.zoho.appointments import REASONS
from sandbox.zoho.errors import RecordError, mandatory_not_found, record_invalid, record_not_object
from sandbox.zoho.time import parse_datetime

MANDATORY = ("Appointment_Name", "Rescheduled_Time", "Rescheduled_By", "Rescheduled_From", "Rescheduled_To")
MAX_ROWS_PER_CALL = 100
MAX_ROWS_PER_APPOINTMENT = 20
MAX_NOTE_LENGTH = 2000

FUTURE_TIME = "The Rescheduled_Time key has a time greater than the current time"
INVALID_APPOINTMENT = "The Appointment_Name key has an invalid appointment id"
INVALID_USER = "The Rescheduled_By key has an invalid user id"
NEVER_RESCHEDULED = "You have tried to make an entry without rescheduling the appointment"
ROW_LIMIT = "You have tried to create more than 20 rescheduled history records for an appointment"


@dataclass(frozen=True)
class HistoryDraft:
    """A history row that passed the stateless checks."""

    appointment_id: str
    user_id: str
    rescheduled_from: datetime
    rescheduled_to: datetime
    rescheduled_time: datetime
    reason: str | None
    note: str | None


def _lookup_id(value: Any, index: int, api_name: str) -> str | RecordError:
    if not isinstance(value, dict):
        return record_invalid(index, api_name, expected_data_type="jsonobject")
    record_id = value.get("id")
    if isinstance(record_id, int) and not isinstance(record_id, bool):
        record_id = str(record_id)
    if not isinstance(record_id, str) or not record_id.isdigit():
        return record_invalid(index, api_name)
    return record_id


def _datetimes(item: Mapping[str, Any], index: int) -> dict[str, datetime] | RecordError:
    parsed: dict[str, datetime] = {}
    for name in ("Rescheduled_Time", "Rescheduled_From", "Rescheduled_To"):
        value = parse_datetime(item[name])
        if value is None:
            return record_invalid(index, name, expected_data_type="datetime")
        parsed[name] = value
    return parsed


def _optional_text(item: Mapping[str, Any], index: int) -> RecordError | None:
    reason = item.get("Reschedule_Reason")
    if reason is not None and reason not in REASONS:
        return record_invalid(index, "Reschedule_Reason")
    note = item.get("Reschedule_Note")
    if note is not None and not isinstance(note, str):
        return record_invalid(index, "Reschedule_Note", expected_data_type="text")
    if isinstance(note, str) and len(note) > MAX_NOTE_LENGTH:
        return record_invalid(index, "Reschedule_Note", maximum_length=MAX_NOTE_LENGTH)
    return None


def _build_draft(item: Mapping[str, Any], index: int, now: datetime) -> HistoryDraft | RecordError:
    appointment_id = _lookup_id(item["Appointment_Name"], index, "Appointment_Name")
    if isinstance(appointment_id, RecordError):
        return appointment_id
    user_id = _lookup_id(item["Rescheduled_By"], index, "Rescheduled_By")
    if isinstance(user_id, RecordError):
        return user_id
    times = _datetimes(item, index)
    if isinstance(times, RecordError):
        return times
    error = _optional_text(item, index)
    if error is not None:
        return error
    if times["Rescheduled_Time"] > now:
        return record_invalid(index, "Rescheduled_Time", FUTURE_TIME)
    return HistoryDraft(
        appointment_id=appointment_id,
        user_id=user_id,
        rescheduled_from=times["Rescheduled_From"],
        rescheduled_to=times["Rescheduled_To"],
        rescheduled_time=times["Rescheduled_Time"],
        reason=item.get("Reschedule_Reason"),
        note=item.get("Reschedule_Note"),
    )


def parse_history_item(item: Any, index: int, now: datetime) -> HistoryDraft | RecordError:
    """Mandatory keys, lookups, ISO datetimes, the reason picklist, and Rescheduled_Time not after `now`."""
    if not isinstance(item, dict):
        return record_not_object(index)
    for name in MANDATORY:
        if item.get(name) is None:
            return mandatory_not_found(index, name)
    return _build_draft(item, index, now)
