"""Action log_reschedule_history (HubSpot): a note on the appointment for each reschedule, exactly once.

HubSpot keeps the history of hs_appointment_start (propertiesWithHistory), so every reschedule since the
start crmflow last saw is known with its time and author, even when several happened between two
fetches: each becomes its own note. Exactly once, as for Zoho, through Ledger.apply_once: the ledger is
keyed by the reschedule (appointment, from, to, when), holds the exact note as "pending" before the create,
and a retry after a pending entry first looks among the appointment's notes for that very note.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from workers.actions.base import ActionResult, Checkpoint
from workers.checkpoints import NO_CHECKPOINTS
from workers.crm.hubspot import HubSpotClient
from workers.crm.hubspot_models import APPOINTMENTS, START, as_hubspot_time, properties_of
from workers.diff import Change, moved_times
from workers.ledger import Applied, Ledger, effect_key
from workers.record import HistoryEntry, Record, parse_datetime
from workers.rules.model import LogRescheduleHistoryParams


@dataclass(frozen=True)
class Reschedule:
    """One move of the appointment's start: from, to, when, and who or what made it."""

    old: Any
    new: Any
    at: datetime
    user_id: str | None = None
    source: str | None = None
    # Not found in the history: `at` is only when the record last changed, so it is not part of its identity.
    inferred: bool = False


def _step(before: HistoryEntry, after: HistoryEntry) -> Reschedule:
    # A user's change names the user; anything else (an app, an import) is named by its source.
    plain = after.user_id or not after.source_id
    source = after.source_type if plain else f"{after.source_type} {after.source_id}"
    return Reschedule(before.value, after.value, after.timestamp, after.user_id, source)


def reschedules(record: Record, change: Change) -> list[Reschedule]:
    """Every reschedule from the start crmflow last saw to the current one, oldest first. Pure.

    From the property history (sorted by time) when it covers the change, starting at the last entry with
    the old start that is not later than the state crmflow saw (so A → B → A → C since then is three
    moves, not one). Otherwise the change itself, marked as inferred. A start set for the first time, or
    cleared, is not a reschedule: nothing.
    """
    moved = moved_times(change, START)
    if moved is None:
        return []
    old, new = moved
    entries = record.history.get(START, ())
    # The first entry (the start the record was created with) always qualifies: a record crmflow first saw
    # through a sweep may have been created after the sweep's window start, its `since`.
    anchors = [
        i
        for i, entry in enumerate(entries)
        if parse_datetime(entry.value) == old and (change.since is None or entry.timestamp <= change.since or i == 0)
    ]
    if anchors and parse_datetime(entries[-1].value) == new:
        steps = zip(entries[anchors[-1] :], entries[anchors[-1] + 1 :], strict=False)
        return [_step(a, b) for a, b in steps if parse_datetime(a.value) != parse_datetime(b.value)]
    raw = change.fields[START]
    return [Reschedule(raw.old, raw.new, record.modified_time, inferred=True)]


def _readable(value: Any) -> str:
    moment = parse_datetime(value)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if moment is not None else str(value)


def note_properties(record: Record, step: Reschedule, params: LogRescheduleHistoryParams) -> dict[str, str]:
    """The note for one reschedule: hs_note_body (old start, new start, who, reason) and hs_timestamp. Pure."""
    name = record.fields.get("hs_appointment_name") or f"Appointment {record.id}"
    lines = [f"{name} was rescheduled from {_readable(step.old)} to {_readable(step.new)}."]
    if step.user_id:
        lines.append(f"Changed by HubSpot user {step.user_id}" + (f" ({step.source})." if step.source else "."))
    elif step.source:
        lines.append(f"Changed by {step.source}.")
    if params.reason:
        lines.append(f"Reason: {params.reason}.")
    if params.note:
        lines.append(f"Note: {params.note}")
    return {"hs_timestamp": as_hubspot_time(step.at), "hs_note_body": "\n".join(lines)}


def same_note(existing: Mapping[str, Any], note: Mapping[str, str]) -> bool:
    """Whether a note read back from HubSpot is `note` (same body, same instant)."""
    found = properties_of(existing)
    return found.get("hs_note_body") == note["hs_note_body"] and parse_datetime(
        found.get("hs_timestamp")
    ) == parse_datetime(note["hs_timestamp"])


def note_key(record: Record, step: Reschedule) -> str:
    """Ledger key of one reschedule of one appointment (whichever rule asked for it), stable across retries."""
    instants = [str(parse_datetime(value)) for value in (step.old, step.new)]
    when = "inferred" if step.inferred else step.at.isoformat()
    return effect_key("hubspot", APPOINTMENTS, record.id, "log_reschedule_history", *instants, when)


async def log_hubspot_reschedule(
    hubspot: HubSpotClient,
    ledger: Ledger,
    record: Record,
    change: Change,
    params: LogRescheduleHistoryParams,
    *,
    checkpoint: Checkpoint = NO_CHECKPOINTS.reach,
) -> ActionResult:
    """Create the missing notes, one per reschedule.

    For an appointment crmflow sees for the first time (e.g. restored from the recycle bin, or untouched
    for longer than snapshots are kept) the ledger may have forgotten a note written long ago, so the
    appointment's notes are read before writing.
    """

    async def find_existing(note: Mapping[str, str]) -> str | None:
        notes = await hubspot.notes_of(record.id)
        return next((str(found.get("id", "")) for found in notes if same_note(found, note)), None)

    async def write(note: Mapping[str, str]) -> str:
        return await hubspot.create_note(record.id, note)

    outcomes: Sequence[Applied] = [
        await ledger.apply_once(
            note_key(record, step),
            note_properties(record, step, params),
            find_existing=find_existing,
            write=write,
            look_first=change.first_seen,
            checkpoint=checkpoint,
        )
        for step in reschedules(record, change)
    ]
    statuses = {applied.outcome for applied in outcomes}
    status = next(s for s in ("created", "found_in_crm", "already_logged") if s in statuses) if statuses else "none"
    return ActionResult(status, ",".join(applied.crm_id for applied in outcomes))
