"""A finished job's event log entry, made from its event, its result and its notes. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from workers.contract import ChangeEvent
from workers.diff import Change
from workers.event_fields import values_kept
from workers.eventlog import EntryAction, EntryField, EntryTimings, EventEntry, JobKind, Outcome
from workers.job_notes import JobNotes


def changed_fields(source: str, module: str, change: Change | None) -> tuple[EntryField, ...]:
    """The change's fields, with old and new values only where workers/event_fields.py allows them."""
    if change is None:
        return ()
    return tuple(
        EntryField(name=name, old=moved.old, new=moved.new)
        if values_kept(source, module, name)
        else EntryField(name=name, withheld=True)
        for name, moved in sorted(change.fields.items())
    )


def _action(result: Mapping[str, Any]) -> EntryAction:
    detail = str(result.get("detail") or "")
    # An action's detail is the CRM's id of what it wrote or found (HubSpot notes: several, comma-separated).
    ids = tuple(part for part in detail.split(",") if part) if result.get("status") != "dead_lettered" else ()
    return EntryAction(
        rule=str(result.get("rule", "")),
        action=str(result.get("action", "")),
        status=str(result.get("status", "")),
        crm_ids=ids,
        error=result.get("error"),
    )


def outcome_of(result: Mapping[str, Any], actions: tuple[EntryAction, ...], dead_letters: list[str]) -> Outcome:
    """dead_lettered when the job kept any letter; processed when an action ran (not skipped); else nothing_to_do
    (the record was gone, the read was stale, no rule fired)."""
    if result.get("status") == "dead_lettered" or dead_letters or any(a.status == "dead_lettered" for a in actions):
        return "dead_lettered"
    if any(a.status != "skipped" for a in actions):
        # A delete's job can run actions too (rules with when.operation: delete).
        return "processed"
    return "nothing_to_do"


def letters_kept(result: Mapping[str, Any], notes: JobNotes) -> list[str]:
    """The ids of the dead letters the job kept: those it noted, and its result's own."""
    letters = list(notes.dead_letters)
    if result.get("dead_letter") and result["dead_letter"] not in letters:
        letters.append(str(result["dead_letter"]))
    return letters


def job_outcome(result: Mapping[str, Any], notes: JobNotes) -> Outcome:
    """The outcome of a job that ended with `result`, as its event log entry and crmflow_jobs_total have it."""
    actions = tuple(_action(item) for item in result.get("actions", ()))
    return outcome_of(result, actions, letters_kept(result, notes))


def build_entry(
    *,
    job: JobKind,
    job_id: str,
    event: ChangeEvent,
    result: Mapping[str, Any],
    notes: JobNotes,
    runs: int,
    received_at: datetime | None,
    finished_at: datetime,
) -> EventEntry:
    """The entry for a job that ended with `result` after `runs` runs (arq's, rate-limit waits included)."""
    actions = tuple(_action(item) for item in result.get("actions", ()))
    letters = letters_kept(result, notes)
    first_seen = result.get("first_seen")
    return EventEntry(
        job_id=job_id,
        job=job,
        source=event.source,
        module=event.module,
        record_id=event.record_id,
        operation=event.operation,
        origin=event.origin,
        notified_at=datetime.fromtimestamp(event.notified_at_ms / 1000, finished_at.tzinfo),
        announced_fields=event.changed_fields,
        channel_id=event.channel_id,
        replay=event.replay,
        replay_of=event.replay_of,
        outcome=outcome_of(result, actions, letters),
        status=str(result.get("status", "")),
        tries=runs,
        first_seen=first_seen if isinstance(first_seen, bool) else None,
        changes=changed_fields(event.source, event.module, notes.change),
        rules=tuple(dict.fromkeys(action.rule for action in actions)),
        actions=actions,
        dead_letters=tuple(letters),
        error=result.get("error"),
        timings=EntryTimings(
            received_at=received_at,
            started_at=notes.started_at,
            finished_at=finished_at,
            crm_s=round(notes.crm_s, 6),
            crm_calls=notes.crm_calls,
        ),
    )
