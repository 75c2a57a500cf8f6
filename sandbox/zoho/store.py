"""In-memory Zoho CRM state: users, Appointments__s, Appointments_Rescheduled_History__s and Notes, with their rules.

Pure: no I/O and no clock reads; every method that needs the time takes `now`. Reads return rendered JSON
(datetimes as Zoho strings in the configured zone); request-level failures raise ZohoApiError; multi-record
writes return a WriteOutcome with one result per input record.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from sandbox.ids import IdSequence
from sandbox.zoho.appointments import plan_update
from sandbox.zoho.control_records import build_appointment
from sandbox.zoho.errors import (
    RecordError,
    field_ref,
    invalid_id_in_url,
    invalid_record_id,
    invalid_url_pattern,
    mandatory_not_found,
    not_allowed,
    record_invalid,
    record_not_object,
)
from sandbox.zoho.history import (
    MAX_ROWS_PER_APPOINTMENT,
    NEVER_RESCHEDULED,
    ROW_LIMIT,
    HistoryDraft,
    parse_history_item,
)
from sandbox.zoho.listing import ListPage, ListQuery, PageTokens, select_page
from sandbox.zoho.notes import NoteDraft, Parent, parse_note
from sandbox.zoho.render import render_record, render_value
from sandbox.zoho.seed import API_USER, USERS, User, seed_appointments
from sandbox.zoho.writes import RecordChange, RecordSuccess, WriteOutcome

APPOINTMENTS = "Appointments__s"
HISTORY = "Appointments_Rescheduled_History__s"
NOTES = "Notes"
# The module id GET /settings/modules would give Appointments__s in the sandbox's org (a note's parent module
# may be named by it instead of the API name).
APPOINTMENTS_MODULE_ID = "5545974000000002179"
APPOINTMENT_SORT_FIELDS = ("id", "Created_Time", "Modified_Time")
HISTORY_SORT_FIELDS = ("id", "Rescheduled_From", "Created_Time", "Modified_Time")
NOTE_SORT_FIELDS = ("id", "Created_Time", "Modified_Time")

_Result = tuple[RecordSuccess | RecordError, RecordChange | None]


def _item_id(item: Mapping[str, Any]) -> str | None:
    value = item.get("id")
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value if isinstance(value, str) and value else None


class ZohoStore:
    """The CRM's records. Every access token acts as the API user (`API_USER`)."""

    def __init__(self, tz: timezone, *, auto_history: bool = False) -> None:
        self._tz = tz
        self._auto_history = auto_history
        self._ids = IdSequence()
        self._users: dict[str, User] = {}
        self._appointments: dict[str, dict[str, Any]] = {}
        self._history: dict[str, dict[str, Any]] = {}
        # Each appointment's history rows by id, in the order they were written: its related list without a
        # scan of every row (a long benchmark writes tens of thousands).
        self._history_of: dict[str, dict[str, dict[str, Any]]] = {}
        self._notes: dict[str, dict[str, Any]] = {}
        self._page_tokens = PageTokens()

    def reset(self, now: datetime) -> None:
        """Back to the seed data (see sandbox.zoho.seed), times derived from `now`."""
        self._ids = IdSequence()
        self._users = {user.id: user for user in USERS}
        self._appointments = {record["id"]: record for record in seed_appointments(now)}
        self._history = {}
        self._history_of = {}
        self._notes = {}
        self._page_tokens.clear()

    @property
    def api_user(self) -> User:
        return API_USER

    @property
    def users(self) -> Mapping[str, User]:
        return self._users

    # ---- reads ------------------------------------------------------------------------------------------

    def has_appointment(self, record_id: str) -> bool:
        return record_id in self._appointments

    def get_appointment(
        self, record_id: str, fields: tuple[str, ...] | None = None, custom: Sequence[str] = ()
    ) -> dict[str, Any]:
        """One appointment; `custom`: the org's registered custom fields, null where the record has no value."""
        record = self._appointments.get(record_id)
        if record is None:
            raise invalid_url_pattern()
        unset = {name: None for name in custom if name not in record}
        return render_record({**record, **unset}, self._tz, fields)

    def list_appointments(self, query: ListQuery, now: datetime) -> ListPage:
        """GET /Appointments__s: pages by `page` or by page_token (sandbox.zoho.listing)."""
        chunk, info = select_page(list(self._appointments.values()), query, tokens=self._page_tokens, now=now)
        if info["page_token_expiry"] is not None:
            info["page_token_expiry"] = render_value(info["page_token_expiry"], self._tz)
        return ListPage([render_record(record, self._tz, query.fields) for record in chunk], info)

    def get_history(self, row_id: str, fields: tuple[str, ...] | None = None) -> dict[str, Any]:
        row = self._history.get(row_id)
        if row is None:
            raise invalid_url_pattern()
        return render_record(row, self._tz, fields)

    def list_history(self, query: ListQuery) -> ListPage:
        return self._page(list(self._history.values()), query)

    def related_history(self, appointment_id: str, query: ListQuery) -> ListPage:
        """The history related list of one appointment; INVALID_DATA for an unknown appointment id."""
        if appointment_id not in self._appointments:
            raise invalid_id_in_url(1)
        return self._page(self._rows_of(appointment_id), query)

    def all_history(self) -> list[dict[str, Any]]:
        return [render_record(row, self._tz) for row in self._history.values()]

    def get_note(self, note_id: str, fields: tuple[str, ...] | None = None) -> dict[str, Any]:
        note = self._notes.get(note_id)
        if note is None:
            raise invalid_url_pattern()
        return render_record(note, self._tz, fields)

    def list_notes(self, query: ListQuery) -> ListPage:
        return self._page(list(self._notes.values()), query)

    def related_notes(self, appointment_id: str, query: ListQuery) -> ListPage:
        """The notes of one appointment; INVALID_DATA for an unknown appointment id."""
        if appointment_id not in self._appointments:
            raise invalid_id_in_url(1)
        notes = [note for note in self._notes.values() if note["Parent_Id"]["id"] == appointment_id]
        return self._page(notes, query)

    def all_notes(self) -> list[dict[str, Any]]:
        return [render_record(note, self._tz) for note in self._notes.values()]

    def _page(self, records: list[dict[str, Any]], query: ListQuery) -> ListPage:
        chunk, info = select_page(records, query)
        return ListPage([render_record(record, self._tz, query.fields) for record in chunk], info)

    def _rows_of(self, appointment_id: str) -> list[dict[str, Any]]:
        return list(self._history_of.get(appointment_id, {}).values())

    # ---- appointment writes -----------------------------------------------------------------------------

    def update_appointments(self, items: list[Any], now: datetime, *, path_id: str | None = None) -> WriteOutcome:
        """PUT /Appointments__s (or /Appointments__s/{path_id}): one result per item, in order."""
        results: list[RecordSuccess | RecordError] = []
        changes: list[RecordChange] = []
        for index, item in enumerate(items):
            result, change = self._update_one(item, index, now, path_id)
            results.append(result)
            if change is not None:
                changes.append(change)
        return WriteOutcome(results, changes)

    def _update_one(self, item: Any, index: int, now: datetime, path_id: str | None) -> _Result:
        if not isinstance(item, dict):
            return record_not_object(index), None
        record_id = path_id or _item_id(item)
        if record_id is None:
            return mandatory_not_found(index, "id"), None
        record = self._appointments.get(record_id)
        if record is None:
            return invalid_record_id(index), None
        plan = plan_update(record, item, index, user=API_USER, users=self._users, now=now)
        if isinstance(plan, RecordError):
            return plan, None
        if plan.rescheduled and self._auto_history:
            self._archive_previous_reschedule(record, now)
        changed = [name for name, value in plan.changes.items() if record.get(name) != value]
        record.update(plan.changes)
        record.update({"Modified_Time": now, "Modified_By": API_USER.full_ref(), "Last_Activity_Time": now})
        values = {name: render_value(record[name], self._tz) for name in changed}
        change = RecordChange(APPOINTMENTS, record_id, "update", tuple(changed), values)
        return RecordSuccess("record updated", self._write_details(record)), change

    def create_appointment(self, fields: Mapping[str, Any], now: datetime) -> tuple[dict[str, Any], RecordChange]:
        """Control-API creation: Zoho defaults plus the given fields; ValueError when they make no sense."""
        record_id = _item_id(fields) or self._ids.next_id()
        if not record_id.isdigit() or len(record_id) != 19 or record_id in self._appointments:
            raise ValueError(f"id must be a new 19-digit number, got {record_id!r}")
        record = build_appointment(record_id, fields, self._users, now)
        self._appointments[record_id] = record
        return render_record(record, self._tz), RecordChange(APPOINTMENTS, record_id, "insert", (), {})

    def delete_appointment(self, record_id: str) -> bool:
        """Removes an appointment (as a user deleting it would; listings then skip it); whether it existed."""
        return self._appointments.pop(record_id, None) is not None

    def _archive_previous_reschedule(self, record: dict[str, Any], now: datetime) -> None:
        """auto_history: the reschedule being replaced becomes a history row (see SandboxConfig)."""
        if not record["Reschedule_Count"] or None in (record["Rescheduled_From"], record["Rescheduled_To"]):
            return
        by = record["Rescheduled_By"] or API_USER.full_ref()
        draft = HistoryDraft(
            appointment_id=record["id"],
            user_id=by["id"],
            rescheduled_from=record["Rescheduled_From"],
            rescheduled_to=record["Rescheduled_To"],
            rescheduled_time=record["Rescheduled_Time"] or now,
            reason=record["Reschedule_Reason"],
            note=record["Reschedule_Note"],
        )
        self._store_history(draft, record, self._users.get(by["id"], API_USER), now)
        rows = self._rows_of(record["id"])
        for row in rows[: max(0, len(rows) - MAX_ROWS_PER_APPOINTMENT)]:
            del self._history[row["id"]]
            del self._history_of[record["id"]][row["id"]]

    # ---- history writes ---------------------------------------------------------------------------------

    def add_history(self, items: list[Any], now: datetime) -> WriteOutcome:
        """POST /Appointments_Rescheduled_History__s: one result per item, in order."""
        results: list[RecordSuccess | RecordError] = []
        changes: list[RecordChange] = []
        for index, item in enumerate(items):
            result, change = self._add_one(item, index, now)
            results.append(result)
            if change is not None:
                changes.append(change)
        return WriteOutcome(results, changes)

    def _add_one(self, item: Any, index: int, now: datetime) -> _Result:
        draft = parse_history_item(item, index, now)
        if isinstance(draft, RecordError):
            return draft, None
        appointment = self._appointments.get(draft.appointment_id)
        if appointment is None:
            return record_invalid(index, "Appointment_Name"), None
        user = self._users.get(draft.user_id)
        if user is None:
            return record_invalid(index, "Rescheduled_By"), None
        if not appointment["Reschedule_Count"]:
            return not_allowed(index, "Appointment_Name", NEVER_RESCHEDULED), None
        if len(self._rows_of(draft.appointment_id)) >= MAX_ROWS_PER_APPOINTMENT:
            details = {**field_ref(index, "Appointment_Name"), "limit": MAX_ROWS_PER_APPOINTMENT}
            return RecordError(400, "IN_REQUEST_LIMIT_EXCEEDED", ROW_LIMIT, details), None
        row = self._store_history(draft, appointment, user, now)
        success = RecordSuccess("record added", {**self._write_details(row), "$approval_state": "approved"})
        return success, RecordChange(HISTORY, row["id"], "insert", (), {})

    def _store_history(
        self, draft: HistoryDraft, appointment: Mapping[str, Any], user: User, now: datetime
    ) -> dict[str, Any]:
        row_id = self._ids.next_id()
        row: dict[str, Any] = {
            "Owner": API_USER.full_ref(),
            "Name": appointment["Appointment_Name"],
            "Appointment_Name": {"name": appointment["Appointment_Name"], "id": appointment["id"]},
            "Rescheduled_From": draft.rescheduled_from,
            "Rescheduled_To": draft.rescheduled_to,
            "Rescheduled_Time": draft.rescheduled_time,
            "Rescheduled_By": user.full_ref(),
            "Reschedule_Reason": draft.reason,
            "Reschedule_Note": draft.note,
            "Created_Time": now,
            "Created_By": API_USER.full_ref(),
            "Modified_Time": now,
            "Modified_By": API_USER.full_ref(),
            "id": row_id,
        }
        self._history[row_id] = row
        self._history_of.setdefault(appointment["id"], {})[row_id] = row
        return row

    # ---- notes ------------------------------------------------------------------------------------------

    def add_notes(self, items: list[Any], now: datetime, *, parent: Parent | None = None) -> WriteOutcome:
        """POST /Notes (or /Appointments__s/{id}/Notes, `parent` from the path): one result per item, in order.

        A note is a record of the Notes module: adding one changes no appointment, so it notifies no
        Appointments__s channel (as crmflow asks for channels without notify_on_related_action).
        """
        if parent is not None and parent.record_id not in self._appointments:
            raise invalid_id_in_url(1)
        results: list[RecordSuccess | RecordError] = []
        for index, item in enumerate(items):
            draft = parse_note(item, index, parent)
            if isinstance(draft, RecordError):
                results.append(draft)
                continue
            appointment = self._appointments.get(draft.parent.record_id)
            if draft.parent.module not in (APPOINTMENTS, APPOINTMENTS_MODULE_ID) or appointment is None:
                results.append(record_invalid(index, "Parent_Id"))
                continue
            note = self._store_note(draft, appointment, now)
            results.append(RecordSuccess("record added", self._write_details(note)))
        return WriteOutcome(results)

    def _store_note(self, draft: NoteDraft, appointment: Mapping[str, Any], now: datetime) -> dict[str, Any]:
        note_id = self._ids.next_id()
        note: dict[str, Any] = {
            "Owner": API_USER.full_ref(),
            "Note_Title": draft.title,
            "Note_Content": draft.content,
            "Parent_Id": {
                "module": {"api_name": APPOINTMENTS, "id": APPOINTMENTS_MODULE_ID},
                "name": appointment["Appointment_Name"],
                "id": appointment["id"],
            },
            "$se_module": APPOINTMENTS,
            "Created_Time": now,
            "Created_By": API_USER.full_ref(),
            "Modified_Time": now,
            "Modified_By": API_USER.full_ref(),
            "id": note_id,
        }
        self._notes[note_id] = note
        return note

    def _write_details(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """The `details` of a SUCCESS write result (lookups without email, as Zoho sends them)."""
        return {
            "Modified_Time": render_value(record["Modified_Time"], self._tz),
            "Modified_By": {"name": record["Modified_By"]["name"], "id": record["Modified_By"]["id"]},
            "Created_Time": render_value(record["Created_Time"], self._tz),
            "id": record["id"],
            "Created_By": {"name": record["Created_By"]["name"], "id": record["Created_By"]["id"]},
        }
