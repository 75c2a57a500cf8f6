"""Pure rules for one record of PUT /Appointments__s: field checks, reschedule and status rules, derived fields.

Sources: Zoho's v7 update-appointments page (via docs/zoho-crm.md, "Appointments API") and the error examples of
Zoho's OpenAPI repo (zoho/crm-oas v8.0 appointments). Keys of the module's standard fields that the sandbox does
not model as writable (system fields such as Created_Time, Reschedule_Count, Rescheduled_To,
Appointment_End_Time) and meta keys (`$...`) are ignored, as Zoho's own sample PUT bodies carry them. Any other
key is taken for one of the org's custom fields (crmflow's update_record writes them): a text, number, boolean
or null value is stored as given, anything else is INVALID_DATA. Which custom fields an org has, and their
types, is the org's own: the sandbox checks only that the value is a plain JSON value.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sandbox.zoho.errors import RecordError, dependent, mandatory_not_found, not_allowed, record_invalid
from sandbox.zoho.seed import User, blank_appointment
from sandbox.zoho.time import parse_datetime

REASONS = ("By Customer", "By Team")
STATUSES = ("Scheduled", "Overdue", "Completed", "Cancelled")
LOCATIONS = ("Client Address", "Business Address")
CLOSED_STATUSES = ("Completed", "Cancelled")
RESCHEDULE_INPUTS = ("Rescheduled_From", "Reschedule_Reason", "Reschedule_Note")
CANCELLATION_INPUTS = ("Cancellation_Reason", "Cancellation_Note")
MAX_DURATION_MINUTES = 24 * 60
# Zoho's longest text field (multi-line, "large"): the limit the sandbox applies to a custom field's text.
MAX_CUSTOM_TEXT = 32000

RESCHEDULE_ONLY = (
    "You can update the Reschedule_Reason and Reschedule_Note keys only when you reschedule the appointment"
)
SAME_TIME = "Reschedule_From and Appointment_Start_Time cannot be same"
PAST_DATE = "Appointment cannot be scheduled for past dates"
CANCELLATION_ONLY = "To Update the fields of Cancellation Information Section, value of Status should be Cancelled"
_STATUS_BEFORE_END = {
    "Completed": "Appointment cannot be marked as completed before the appointment ends",
    "Overdue": "Appointment cannot be marked as overdue before the appointment ends",
}


class _Invalid(Exception):
    def __init__(self, **details: Any) -> None:
        super().__init__("invalid")
        self.details = details


class _Missing(Exception):
    pass


Parser = Callable[[Any], Any]


def _datetime(*, required: bool) -> Parser:
    def parse(value: Any) -> Any:
        if value is None:
            if required:
                raise _Missing
            return None
        parsed = parse_datetime(value)
        if parsed is None:
            raise _Invalid(expected_data_type="datetime")
        return parsed

    return parse


def _picklist(options: tuple[str, ...], *, required: bool = False) -> Parser:
    def parse(value: Any) -> Any:
        if value is None:
            if required:
                raise _Missing
            return None
        if value not in options:
            raise _Invalid()
        return value

    return parse


def _text(limit: int, *, required: bool = False) -> Parser:
    def parse(value: Any) -> Any:
        if value is None:
            if required:
                raise _Missing
            return None
        if not isinstance(value, str):
            raise _Invalid(expected_data_type="text")
        if len(value) > limit:
            raise _Invalid(maximum_length=limit)
        return value

    return parse


def _duration(value: Any) -> Any:
    if value is None:
        raise _Missing
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_DURATION_MINUTES:
        raise _Invalid(expected_data_type="integer")
    return value


def _lookup(value: Any) -> Any:
    if value is None:
        raise _Missing
    if not isinstance(value, dict):
        raise _Invalid(expected_data_type="jsonobject")
    record_id = value.get("id")
    if isinstance(record_id, int) and not isinstance(record_id, bool):
        record_id = str(record_id)
    if not isinstance(record_id, str) or not record_id.isdigit():
        raise _Invalid()
    return {**value, "id": record_id}


PARSERS: dict[str, Parser] = {
    "Appointment_Start_Time": _datetime(required=True),
    "Rescheduled_From": _datetime(required=False),
    "Reschedule_Reason": _picklist(REASONS),
    "Reschedule_Note": _text(2000),
    "Status": _picklist(STATUSES, required=True),
    "Cancellation_Reason": _picklist(REASONS),
    "Cancellation_Note": _text(2000),
    "Appointment_Name": _text(255, required=True),
    "Location": _picklist(LOCATIONS),
    "Address": _text(255),
    "Additional_Information": _text(32000),
    "Duration": _duration,
    "Owner": _lookup,
    "Service_Name": _lookup,
    "Appointment_For": _lookup,
}


# The module's standard fields (and meta keys): a PUT key that is none of these is a custom field.
STANDARD_FIELDS = frozenset(blank_appointment("0", datetime(2000, 1, 1, tzinfo=UTC))) | {"Contact_Name__s"}


def _custom(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float):
        return value
    if not isinstance(value, str):
        raise _Invalid()
    if len(value) > MAX_CUSTOM_TEXT:
        raise _Invalid(maximum_length=MAX_CUSTOM_TEXT)
    return value


def is_custom_field(name: str) -> bool:
    """Whether a PUT key names one of the org's custom fields (not a standard field, not `id`, not a `$` key)."""
    return name not in STANDARD_FIELDS and not name.startswith("$")


@dataclass(frozen=True)
class UpdatePlan:
    """The validated changes for one appointment (internal values: datetimes stay datetimes)."""

    changes: dict[str, Any]
    rescheduled: bool


def parse_fields(item: Mapping[str, Any], index: int) -> dict[str, Any] | RecordError:
    """Check every writable field present in the item, custom ones included; the first bad one is the record's error."""
    parsed: dict[str, Any] = {}
    wanted = [(name, parser) for name, parser in PARSERS.items() if name in item]
    wanted += [(name, _custom) for name in item if is_custom_field(name)]
    for name, parser in wanted:
        try:
            parsed[name] = parser(item[name])
        except _Missing:
            return mandatory_not_found(index, name)
        except _Invalid as exc:
            return record_invalid(index, name, **exc.details)
    return parsed


def _resolve_owner(fields: dict[str, Any], users: Mapping[str, User], index: int) -> RecordError | None:
    if "Owner" not in fields:
        return None
    owner = users.get(fields["Owner"]["id"])
    if owner is None:
        return record_invalid(index, "Owner")
    fields["Owner"] = owner.full_ref()
    return None


def _reschedule_error(
    record: Mapping[str, Any], fields: Mapping[str, Any], index: int, now: datetime
) -> RecordError | None:
    if "Appointment_Start_Time" not in fields:
        for name in RESCHEDULE_INPUTS:
            if name in fields:
                return dependent("DEPENDENT_FIELD_MISSING", index, "Appointment_Start_Time", name, RESCHEDULE_ONLY)
        return None
    if record["Status"] in CLOSED_STATUSES:
        message = f"{record['Status']} appointments cannot be rescheduled"
        return not_allowed(index, "Appointment_Start_Time", message)
    new_start: datetime = fields["Appointment_Start_Time"]
    if new_start == (fields.get("Rescheduled_From") or record["Appointment_Start_Time"]):
        return dependent("DEPENDENT_FIELD_UNCHANGED", index, "Rescheduled_From", "Appointment_Start_Time", SAME_TIME)
    if new_start < now:
        return dependent("DEPENDENT_MISMATCH", index, "Status", "Appointment_Start_Time", PAST_DATE)
    return None


def _status_error(
    record: Mapping[str, Any], fields: Mapping[str, Any], index: int, now: datetime
) -> RecordError | None:
    status = fields.get("Status", record["Status"])
    for name in CANCELLATION_INPUTS:
        if fields.get(name) is not None and status != "Cancelled":
            return dependent("DEPENDENT_FIELD_MISSING", index, "Status", name, CANCELLATION_ONLY)
    if "Status" not in fields or status == record["Status"]:
        return None
    start: datetime = fields.get("Appointment_Start_Time", record["Appointment_Start_Time"])
    end = start + timedelta(minutes=fields.get("Duration", record["Duration"]))
    if status in _STATUS_BEFORE_END and end > now:
        return dependent("DEPENDENT_MISMATCH", index, "Status", "Appointment_Start_Time", _STATUS_BEFORE_END[status])
    if status == "Scheduled" and start < now:
        return dependent("DEPENDENT_MISMATCH", index, "Status", "Appointment_Start_Time", PAST_DATE)
    return None


def _reschedule_changes(
    record: Mapping[str, Any], fields: Mapping[str, Any], user: User, now: datetime
) -> dict[str, Any]:
    new_start = fields["Appointment_Start_Time"]
    changes: dict[str, Any] = {
        "Appointment_Start_Time": new_start,
        "Rescheduled_From": fields.get("Rescheduled_From") or record["Appointment_Start_Time"],
        "Rescheduled_To": new_start,
        "Rescheduled_Time": now,
        "Rescheduled_By": user.full_ref(),
        "Reschedule_Count": int(record["Reschedule_Count"] or 0) + 1,
        # Reason and note describe the latest reschedule: absent means none was given this time.
        "Reschedule_Reason": fields.get("Reschedule_Reason"),
        "Reschedule_Note": fields.get("Reschedule_Note"),
    }
    if record["Status"] == "Overdue" and "Status" not in fields:
        changes["Status"] = "Scheduled"
    return changes


def _derived_changes(record: Mapping[str, Any], fields: Mapping[str, Any], user: User, now: datetime) -> dict[str, Any]:
    changes = {name: value for name, value in fields.items() if name not in RESCHEDULE_INPUTS}
    if "Appointment_Start_Time" in fields:
        changes.update(_reschedule_changes(record, fields, user, now))
    start = changes.get("Appointment_Start_Time", record["Appointment_Start_Time"])
    changes["Appointment_End_Time"] = start + timedelta(minutes=changes.get("Duration", record["Duration"]))
    if changes.get("Status") == "Cancelled" and record["Status"] != "Cancelled":
        changes["Cancelled_Time"] = now
        changes["Cancelled_By"] = user.full_ref()
    return changes


def plan_update(
    record: Mapping[str, Any],
    item: Mapping[str, Any],
    index: int,
    *,
    user: User,
    users: Mapping[str, User],
    now: datetime,
) -> UpdatePlan | RecordError:
    """Validate one PUT record against the stored appointment and compute every field it changes."""
    fields = parse_fields(item, index)
    if isinstance(fields, RecordError):
        return fields
    error = (
        _resolve_owner(fields, users, index)
        or _reschedule_error(record, fields, index, now)
        or _status_error(record, fields, index, now)
    )
    if error is not None:
        return error
    return UpdatePlan(_derived_changes(record, fields, user, now), "Appointment_Start_Time" in fields)
