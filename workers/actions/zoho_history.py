"""Action log_reschedule_history (Zoho): one Appointments_Rescheduled_History__s row per reschedule, exactly once.

Exactly once in effect, in layers (the caller holds the appointment's lock throughout):
1. the ledger is keyed by the reschedule itself (appointment, from, to, Reschedule_Count), so a repeat of
   the same reschedule, from any rule, retry or duplicate, finds it done and writes nothing;
2. before the write the ledger holds the exact row as "pending"; a retry sends that same row again;
3. the appointment's history is read before writing, and a row for the same reschedule (same from, to and
   Rescheduled_Time) is adopted instead of written again. This covers a worker killed between Zoho's
   answer and the ledger update, and Zoho writing the row itself (UNCONFIRMED whether it does).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from workers.actions.base import ActionResult, Checkpoint
from workers.checkpoints import NO_CHECKPOINTS
from workers.crm.zoho import ZohoClient
from workers.crm.zoho_models import APPOINTMENTS, as_zoho_time
from workers.diff import Change, moved_times
from workers.errors import ActionNotApplicableError
from workers.ledger import Ledger, effect_key
from workers.record import Record, parse_datetime
from workers.rules.model import LogRescheduleHistoryParams

logger = logging.getLogger("crmflow.actions")

START = "Appointment_Start_Time"
COUNT = "Reschedule_Count"
REASONS = ("By Customer", "By Team")


def _user(value: Any) -> dict[str, str] | None:
    if isinstance(value, dict) and value.get("id"):
        return {"name": str(value.get("name") or ""), "id": str(value["id"])}
    return None


def start_change(change: Change, field_name: str = START) -> tuple[datetime, datetime]:
    """The appointment's start before and after, or ActionNotApplicableError: nothing to log."""
    if field_name not in change.fields:
        raise ActionNotApplicableError(f"{field_name} did not change")
    moved = moved_times(change, field_name)
    if moved is None:
        raise ActionNotApplicableError(f"{field_name} is not an ISO 8601 time before or after the change")
    return moved


def _zoho_account(record: Record, new_start: datetime) -> Mapping[str, Any]:
    """The record's Rescheduled_* fields if they describe the reschedule to `new_start`, else nothing."""
    fields = record.fields
    return fields if parse_datetime(fields.get("Rescheduled_To")) == new_start else {}


def history_row(record: Record, change: Change, params: LogRescheduleHistoryParams, *, now: datetime) -> dict[str, Any]:
    """The history row for the latest reschedule in `change`. Pure; raises ActionNotApplicableError.

    Zoho's own account of the reschedule (Rescheduled_From/Time/By, Reschedule_Reason/Note on the record)
    is used when it describes this reschedule; otherwise the start crmflow saw before, Modified_Time and
    Modified_By stand in.
    """
    old, new = start_change(change)
    fields = record.fields
    zoho = _zoho_account(record, new)
    when = parse_datetime(zoho.get("Rescheduled_Time")) or record.modified_time
    by = _user(zoho.get("Rescheduled_By")) or _user(fields.get("Modified_By"))
    if by is None:
        raise ActionNotApplicableError("the record names no user who rescheduled it (Rescheduled_By, Modified_By)")
    row: dict[str, Any] = {
        "Appointment_Name": {"name": str(fields.get("Appointment_Name") or record.id), "id": record.id},
        "Rescheduled_From": as_zoho_time(parse_datetime(zoho.get("Rescheduled_From")) or old),
        "Rescheduled_To": as_zoho_time(new),
        # Zoho refuses a Rescheduled_Time after its clock. Zoho's own times never are; a time derived
        # elsewhere is capped at our clock.
        "Rescheduled_Time": as_zoho_time(min(when, now.replace(microsecond=0))),
        "Rescheduled_By": by,
    }
    reason = params.reason or (zoho.get("Reschedule_Reason") if zoho.get("Reschedule_Reason") in REASONS else None)
    note = params.note or zoho.get("Reschedule_Note")
    if reason:
        row["Reschedule_Reason"] = reason
    if isinstance(note, str) and note:
        row["Reschedule_Note"] = note
    return row


def missed_reschedule(record: Record, change: Change) -> dict[str, Any]:
    """An earlier reschedule hidden between two fetches, or {} when there is none. Pure.

    Seen A, now C, and Zoho says the latest reschedule was B → C: then A → B happened too, unless
    Reschedule_Count rose by exactly one (someone set Rescheduled_From explicitly). Zoho keeps no time or
    user for A → B, so it cannot be logged faithfully; the caller reports it instead.
    """
    old, new = start_change(change)
    zoho_from = parse_datetime(_zoho_account(record, new).get("Rescheduled_From"))
    if zoho_from is None or zoho_from == old:
        return {}
    counted = change.fields.get(COUNT)
    if counted is not None and isinstance(counted.old, int) and isinstance(counted.new, int):
        one_reschedule = counted.new - counted.old == 1
        if one_reschedule:
            return {}
    return {"Rescheduled_From": as_zoho_time(old), "Rescheduled_To": as_zoho_time(zoho_from)}


def uncovered_span(missed: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The part of a hidden span (from → to) that no history row covers: {} when rows chain across it. Pure.

    Rows already in Zoho are followed forward from the span's start and backward from its end; what is
    left between is the part nobody logged.
    """
    moves = [(parse_datetime(r.get("Rescheduled_From")), parse_datetime(r.get("Rescheduled_To"))) for r in rows]
    start, end = parse_datetime(missed["Rescheduled_From"]), parse_datetime(missed["Rescheduled_To"])
    for _ in moves:  # at most one step per row, so a cycle cannot loop forever
        onward = [to for frm, to in moves if frm == start and to is not None and start != end]
        if not onward:
            break
        start = onward[-1]
    for _ in moves:
        back = [frm for frm, to in moves if to == end and frm is not None and start != end]
        if not back:
            break
        end = back[-1]
    if start is None or end is None or start == end:
        return {}
    return {"Rescheduled_From": as_zoho_time(start), "Rescheduled_To": as_zoho_time(end)}


def same_reschedule(existing: Mapping[str, Any], row: Mapping[str, Any]) -> bool:
    """Whether a history row already in Zoho records the same reschedule as `row` (same instants)."""
    keys = ("Rescheduled_From", "Rescheduled_To", "Rescheduled_Time")
    return all(
        parse_datetime(existing.get(k)) is not None and parse_datetime(existing.get(k)) == parse_datetime(row[k])
        for k in keys
    )


def reschedule_key(record: Record, row: Mapping[str, Any]) -> str:
    """Ledger key of one reschedule: appointment, from, to, and which reschedule it was."""
    count = record.fields.get(COUNT)
    occurrence = str(count) if isinstance(count, int) else _instant(row["Rescheduled_Time"])
    parts = (_instant(row["Rescheduled_From"]), _instant(row["Rescheduled_To"]), occurrence)
    return effect_key("zoho", APPOINTMENTS, record.id, "log_reschedule_history", *parts)


def _instant(value: str) -> str:
    moment = parse_datetime(value)
    return moment.astimezone(UTC).isoformat() if moment is not None else value


async def log_zoho_reschedule(
    zoho: ZohoClient,
    ledger: Ledger,
    record: Record,
    change: Change,
    params: LogRescheduleHistoryParams,
    *,
    now: datetime,
    checkpoint: Checkpoint = NO_CHECKPOINTS.reach,
) -> ActionResult:
    """Write the history row unless crmflow or Zoho already has it."""
    row = history_row(record, change, params, now=now)
    missed = missed_reschedule(record, change)
    history: Sequence[Mapping[str, Any]] | None = None
    if missed:
        # Earlier tries may have logged part of that span before failing (e.g. killed before saving the state).
        history = await zoho.list_reschedule_history(record.id)
        missed = uncovered_span(missed, history)

    async def find_existing(row: Mapping[str, Any]) -> str | None:
        rows = history if history is not None else await zoho.list_reschedule_history(record.id)
        return next((str(found.get("id", "")) for found in rows if same_reschedule(found, row)), None)

    # Always looked for first: Zoho may write such rows itself (UNCONFIRMED), and the ledger forgets.
    applied = await ledger.apply_once(
        reschedule_key(record, row),
        row,
        find_existing=find_existing,
        write=zoho.add_reschedule_history,
        look_first=True,
        checkpoint=checkpoint,
    )
    if applied.outcome == "created":
        logger.info(
            "appointment %s: history row %s (%s -> %s)",
            record.id,
            applied.crm_id,
            row["Rescheduled_From"],
            row["Rescheduled_To"],
        )
    return ActionResult(applied.outcome, applied.crm_id, missed)
