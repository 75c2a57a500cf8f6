"""Action log_reschedule_history (Zoho): one Appointments_Rescheduled_History__s row per reschedule, exactly once.

Exactly once in effect, in three layers (the caller holds the appointment's lock throughout):
1. the ledger: a reschedule already logged by crmflow is skipped without a call;
2. the CRM itself: the appointment's history is read before writing, and a row for the same reschedule
   (same from, same to, Rescheduled_Time within MATCH_TOLERANCE) is adopted instead of written again. This
   covers a worker killed between Zoho's answer and the ledger write, and Zoho writing the row itself
   (whether Zoho auto-creates history rows is UNCONFIRMED; either way no second row appears);
3. the ledger is written right after Zoho confirms the row.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from workers.crm.zoho import ZohoClient
from workers.crm.zoho_models import APPOINTMENTS, as_zoho_time
from workers.diff import Change
from workers.errors import ActionNotApplicableError
from workers.ledger import Ledger, effect_key
from workers.record import Record, parse_datetime
from workers.rules.model import LogRescheduleHistoryParams

logger = logging.getLogger("crmflow.actions")

START = "Appointment_Start_Time"
REASONS = ("By Customer", "By Team")
MATCH_TOLERANCE = timedelta(minutes=5)


@dataclass(frozen=True)
class ActionResult:
    """What an action did: created, already_logged (ledger) or found_in_crm; detail names the row."""

    status: str
    detail: str = ""


def _user(value: Any) -> dict[str, str] | None:
    if isinstance(value, dict) and value.get("id"):
        return {"name": str(value.get("name") or ""), "id": str(value["id"])}
    return None


def _describes_this_reschedule(fields: Mapping[str, Any], new_start: datetime) -> bool:
    # Rescheduled_* on the record describe its latest reschedule; use them only if it is the one we saw.
    return parse_datetime(fields.get("Rescheduled_To")) == new_start


def history_row(record: Record, change: Change, params: LogRescheduleHistoryParams, *, now: datetime) -> dict[str, Any]:
    """The history row for the start-time change in `change`. Pure; raises ActionNotApplicableError."""
    moved = change.fields.get(START)
    if moved is None:
        raise ActionNotApplicableError(f"{START} did not change")
    old, new = parse_datetime(moved.old), parse_datetime(moved.new)
    if old is None or new is None:
        raise ActionNotApplicableError(f"{START} is not an ISO 8601 time before or after the change")
    fields = record.fields
    ours = _describes_this_reschedule(fields, new)
    when = (parse_datetime(fields.get("Rescheduled_Time")) if ours else None) or record.modified_time
    by = (_user(fields.get("Rescheduled_By")) if ours else None) or _user(fields.get("Modified_By"))
    if by is None:
        raise ActionNotApplicableError("the record names no user who rescheduled it (Rescheduled_By, Modified_By)")
    row: dict[str, Any] = {
        "Appointment_Name": {"name": str(fields.get("Appointment_Name") or record.id), "id": record.id},
        "Rescheduled_From": as_zoho_time(old),
        "Rescheduled_To": as_zoho_time(new),
        # Zoho refuses a Rescheduled_Time after its clock. Zoho's own times never are; a time derived
        # elsewhere is capped at our clock.
        "Rescheduled_Time": as_zoho_time(min(when, now.replace(microsecond=0))),
        "Rescheduled_By": by,
    }
    record_reason = fields.get("Reschedule_Reason") if ours else None
    reason = params.reason or (record_reason if record_reason in REASONS else None)
    note = params.note or (fields.get("Reschedule_Note") if ours else None)
    if reason:
        row["Reschedule_Reason"] = reason
    if isinstance(note, str) and note:
        row["Reschedule_Note"] = note
    return row


def same_reschedule(existing: Mapping[str, Any], row: Mapping[str, Any]) -> bool:
    """Whether a history row already in Zoho records the reschedule `row` describes."""
    for key in ("Rescheduled_From", "Rescheduled_To"):
        if parse_datetime(existing.get(key)) != parse_datetime(row[key]):
            return False
    existing_time, our_time = parse_datetime(existing.get("Rescheduled_Time")), parse_datetime(row["Rescheduled_Time"])
    return existing_time is not None and our_time is not None and abs(existing_time - our_time) <= MATCH_TOLERANCE


def _instant(value: str) -> str:
    moment = parse_datetime(value)
    return moment.astimezone(UTC).isoformat() if moment is not None else value


def reschedule_key(record: Record, row: Mapping[str, Any]) -> str:
    """Ledger key of one reschedule of one appointment (whichever rule asked for it)."""
    parts = [_instant(row[k]) for k in ("Rescheduled_From", "Rescheduled_To", "Rescheduled_Time")]
    return effect_key("zoho", APPOINTMENTS, record.id, "log_reschedule_history", *parts)


async def log_zoho_reschedule(
    zoho: ZohoClient,
    ledger: Ledger,
    record: Record,
    change: Change,
    params: LogRescheduleHistoryParams,
    *,
    now: datetime,
) -> ActionResult:
    """Write the history row unless crmflow or Zoho already has it."""
    row = history_row(record, change, params, now=now)
    key = reschedule_key(record, row)
    done = await ledger.applied(key)
    if done is not None:
        return ActionResult("already_logged", done)
    for existing in await zoho.list_reschedule_history(record.id):
        if same_reschedule(existing, row):
            row_id = str(existing.get("id", ""))
            await ledger.record(key, row_id)
            return ActionResult("found_in_crm", row_id)
    row_id = await zoho.add_reschedule_history(row)
    await ledger.record(key, row_id)
    logger.info(
        "appointment %s: history row %s (%s -> %s)", record.id, row_id, row["Rescheduled_From"], row["Rescheduled_To"]
    )
    return ActionResult("created", row_id)
