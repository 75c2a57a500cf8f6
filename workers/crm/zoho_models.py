"""Zoho CRM API response shapes and their translation into Records and our errors. Pure.

Shapes: docs/zoho-crm.md, "Appointments API", "Rescheduled history module", "Notes" and "Errors and limits" (records
are wrapped in {"data": [...]}; writes answer one {"code","details","message","status"} entry per record;
request-level errors are unwrapped).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from workers.crm.responses import body_of
from workers.errors import (
    CrmAuthError,
    CrmNotFoundError,
    CrmRateLimitedError,
    CrmRejectedError,
    CrmTransientError,
)
from workers.record import Modified, Record, parse_datetime

APPOINTMENTS = "Appointments__s"
HISTORY = "Appointments_Rescheduled_History__s"
NOTES = "Notes"


def _first_error(body: Any) -> Mapping[str, Any]:
    """The error entry of a body: top level for request errors, data[] for per-record errors."""
    if isinstance(body, dict) and isinstance(body.get("code"), str):
        return body
    data = body.get("data") if isinstance(body, dict) else None
    if isinstance(data, list):
        for entry in data:
            if isinstance(entry, dict) and entry.get("status") == "error":
                return entry
    return {}


def _retry_after(response: httpx.Response) -> float | None:
    # Zoho documents no Retry-After (UNCONFIRMED); honour one if it ever appears.
    value = response.headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _per_item(body: Any, key: str) -> bool:
    """Whether `body` answers item by item under `key` (each entry with its own status)."""
    entries = body.get(key) if isinstance(body, dict) else None
    return isinstance(entries, list) and bool(entries) and all(isinstance(e, dict) and "status" in e for e in entries)


def raise_for_zoho(response: httpx.Response, *, per_item: str | None = None) -> Any:
    """Return the JSON body of a successful answer, or raise the CrmError the answer means.

    With `per_item` (e.g. "watch"), a 207 or 400 answer that reports each item under that key is returned
    as it is, for the caller to read item by item; request-level errors still raise.
    """
    status = response.status_code
    if status == 429:
        raise CrmRateLimitedError("Zoho rate limit (HTTP 429)", retry_after_s=_retry_after(response))
    if status >= 500:
        raise CrmTransientError(f"Zoho server error (HTTP {status})", code=f"HTTP_{status}")
    body = body_of(response)
    if status < 400 and status != 207:
        return body
    if per_item is not None and status in (207, 400) and _per_item(body, per_item):
        return body
    error = _first_error(body)
    code = str(error.get("code") or f"HTTP_{status}")
    message = str(error.get("message") or f"HTTP {status}")
    details = error.get("details")
    if status == 401:
        raise CrmAuthError(message, code=code, details=details, quoted=True)
    if status == 404:
        raise CrmNotFoundError(message, code=code, details=details, quoted=True)
    raise CrmRejectedError(message, code=code, details=details, quoted=True)


def appointment_record(body: Any, record_id: str) -> Record:
    """The Record inside a GET Appointments__s/{id} answer."""
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, list) or not data:
        raise CrmNotFoundError(f"appointment {record_id} not found", code="NO_CONTENT")
    fields = data[0]
    if not isinstance(fields, dict):
        raise CrmTransientError("appointment is not a JSON object", code="BAD_RESPONSE")
    modified = parse_datetime(fields.get("Modified_Time"))
    if modified is None:
        raise CrmTransientError("appointment has no valid Modified_Time", code="BAD_RESPONSE")
    record_id = str(fields.get("id", record_id))
    return Record(source="zoho", module=APPOINTMENTS, id=record_id, modified_time=modified, fields=fields)


def field_names(body: Any) -> frozenset[str]:
    """The API names in a GET /settings/fields answer (`{"fields": [{"api_name": ...}, ...]}`; none for 204)."""
    if body == {}:
        return frozenset()
    fields = body.get("fields") if isinstance(body, dict) else None
    if not isinstance(fields, list):
        raise CrmTransientError("field metadata without a `fields` list", code="BAD_RESPONSE")
    return frozenset(
        field["api_name"] for field in fields if isinstance(field, dict) and isinstance(field.get("api_name"), str)
    )


def history_rows(body: Any) -> list[Mapping[str, Any]]:
    """The rows of a GET rescheduled-history answer (none for 204)."""
    data = body.get("data") if isinstance(body, dict) else None
    return [row for row in data if isinstance(row, dict)] if isinstance(data, list) else []


def created_id(body: Any) -> str:
    """The id of the record a one-record POST created (or a one-record PUT updated)."""
    data = body.get("data") if isinstance(body, dict) else None
    entry = data[0] if isinstance(data, list) and data else None
    if isinstance(entry, dict) and entry.get("status") == "error":
        # A success status (200, 201) whose only record failed: Zoho documents none, but it is a refusal all the same.
        code, message = str(entry.get("code") or "ERROR"), str(entry.get("message") or "the record was refused")
        raise CrmRejectedError(message, code=code, details=entry.get("details"), quoted=True)
    details = entry.get("details") if isinstance(entry, dict) else None
    if not isinstance(details, dict) or "id" not in details:
        raise CrmTransientError("write answer has no record id", code="BAD_RESPONSE")
    return str(details["id"])


def note_rows(body: Any) -> tuple[list[Mapping[str, Any]], bool]:
    """The notes of a GET .../Notes answer (none for 204) and whether Zoho has more (info.more_records)."""
    info = body.get("info") if isinstance(body, dict) else None
    more = isinstance(info, dict) and info.get("more_records") is True
    return history_rows(body), more


def note_parent(appointment_id: str) -> dict[str, Any]:
    """A note's Parent_Id as v4 and later take it: the parent record and its module."""
    return {"module": {"api_name": APPOINTMENTS}, "id": appointment_id}


def inferred_previous(record: Record, since: datetime | None = None) -> dict[str, Any]:
    """What a first-seen appointment says it was before its last reschedule.

    When Reschedule_Count is at least 1 and Rescheduled_To is the current start, the record describes the
    reschedule that produced its current start, and Rescheduled_From is the start before it. With `since` (a
    sweep's window start), only a reschedule made at or after `since` (Rescheduled_Time) is inferred: an older
    one is not the change the sweep found. Zoho keeps only the latest reschedule on the record, so earlier
    ones of a record crmflow never saw are not known here (Zoho's own history module may hold them).
    """
    fields = record.fields
    if since is not None:
        at = parse_datetime(fields.get("Rescheduled_Time"))
        if at is None or at < since:
            return {}
    start = parse_datetime(fields.get("Appointment_Start_Time"))
    to = parse_datetime(fields.get("Rescheduled_To"))
    count = fields.get("Reschedule_Count")
    previous = fields.get("Rescheduled_From")
    if isinstance(count, int) and count >= 1 and start is not None and start == to and parse_datetime(previous):
        return {"Appointment_Start_Time": previous, "Reschedule_Count": count - 1}
    return {}


def as_zoho_time(moment: datetime) -> str:
    """ISO 8601 as Zoho takes it: seconds precision (no milliseconds) and an explicit offset."""
    return moment.isoformat(timespec="seconds")


@dataclass(frozen=True)
class ModifiedListing:
    """One page of GET Appointments__s?fields=id,Modified_Time: the records, in the order Zoho listed them,
    and how to go on (docs/zoho-crm.md, "Listing appointments")."""

    records: tuple[Modified, ...]
    more_records: bool
    next_page_token: str | None


def modified_listing(body: Any) -> ModifiedListing:
    """A listing page (an empty body, Zoho's 204, is an empty last page); BAD_RESPONSE for a record that has
    no id or no valid Modified_Time, since the sweep could not place it in its window."""
    data = body.get("data") if isinstance(body, dict) else None
    info = body.get("info") if isinstance(body, dict) else None
    records: list[Modified] = []
    for entry in data if isinstance(data, list) else []:
        record_id = entry.get("id") if isinstance(entry, dict) else None
        modified = parse_datetime(entry.get("Modified_Time")) if isinstance(entry, dict) else None
        if not record_id or modified is None:
            raise CrmTransientError("a listed appointment has no id or no valid Modified_Time", code="BAD_RESPONSE")
        records.append(Modified(str(record_id), modified))
    info = info if isinstance(info, dict) else {}
    token = info.get("next_page_token")
    return ModifiedListing(
        records=tuple(records),
        more_records=info.get("more_records") is True,
        next_page_token=token if isinstance(token, str) and token else None,
    )
