"""Build an appointment for the control API from loose JSON: Zoho defaults plus the given fields. Pure.

Unlike the CRM API this applies no business rules, so tests can create any state (an Overdue appointment,
one already rescheduled three times, ...). It only refuses values the rest of the sandbox could not handle.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sandbox.zoho.appointments import STATUSES
from sandbox.zoho.seed import User, blank_appointment
from sandbox.zoho.time import parse_datetime

DATETIME_FIELDS = frozenset(
    {
        "Appointment_Start_Time",
        "Appointment_End_Time",
        "Rescheduled_From",
        "Rescheduled_To",
        "Rescheduled_Time",
        "Cancelled_Time",
        "Created_Time",
        "Modified_Time",
        "Last_Activity_Time",
    }
)
USER_FIELDS = frozenset({"Owner", "Rescheduled_By", "Cancelled_By", "Created_By", "Modified_By"})
COUNT_FIELDS = {"Duration": 1, "Reschedule_Count": 0}


def _coerce(name: str, value: Any, users: Mapping[str, User]) -> Any:
    if value is None:
        return None
    if name in DATETIME_FIELDS:
        parsed = parse_datetime(value)
        if parsed is None:
            raise ValueError(f"{name}: expected an ISO 8601 datetime with offset, got {value!r}")
        return parsed
    if name in USER_FIELDS:
        user = users.get(str(value.get("id"))) if isinstance(value, dict) else None
        if user is None:
            raise ValueError(f"{name}: expected {{'id': <user id>}} naming one of {sorted(users)}")
        return user.full_ref()
    if name in COUNT_FIELDS and (isinstance(value, bool) or not isinstance(value, int) or value < COUNT_FIELDS[name]):
        raise ValueError(f"{name}: expected an integer >= {COUNT_FIELDS[name]}")
    if name == "Status" and value not in STATUSES:
        raise ValueError(f"Status: expected one of {STATUSES}")
    return value


def build_appointment(
    record_id: str, fields: Mapping[str, Any], users: Mapping[str, User], now: datetime
) -> dict[str, Any]:
    """A full record: defaults, then `fields`; End_Time follows Start_Time + Duration unless given."""
    record = blank_appointment(record_id, now.replace(microsecond=0))
    for name, value in fields.items():
        if name != "id":
            record[name] = _coerce(name, value, users)
    if record["Appointment_Start_Time"] is None or record["Duration"] is None:
        raise ValueError("Appointment_Start_Time and Duration cannot be null")
    if "Appointment_End_Time" not in fields:
        record["Appointment_End_Time"] = record["Appointment_Start_Time"] + timedelta(minutes=record["Duration"])
    return record
