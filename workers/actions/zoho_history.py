"""Action log_reschedule_history (Zoho): one Appointments_Rescheduled_History__s row per reschedule, exactly once.

Exactly once in effect, in layers (the caller holds the appointment's lock throughout):
1. the ledger is keyed by the reschedule itself (appointment, from, to, Reschedule_Count), so a repeat of
   the same reschedule, from any rule, retry or duplicate, finds it done and writes nothing;
2. before the write the ledger holds the exact row as "pending"; a retry sends that same row again;
3. the appointment's history is read before writing, and a row for the same reschedule (same from, to and
   Rescheduled_Time) is adopted instead of written again. This covers a worker killed between Zoho's
   answer and the ledger update, and Zoho writing the row itself (UNCONFIRMED whether it does).

Reschedules hidden between two fetches (missed_reschedule) cannot be logged faithfully; each stretch of
them that no row covers becomes a MISSED_RESCHEDULE dead letter, and never one a row already covers
(uncovered_spans), once the record's pending ledger entries are settled against Zoho (resolve_pending).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from workers import keys
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
    """The span of earlier reschedules hidden between two fetches, or {} when there is none. Pure.

    Seen A, now C, and Zoho says the latest reschedule was B → C: then A → B happened too (one reschedule
    or several), unless Reschedule_Count rose by exactly one (someone set Rescheduled_From explicitly). Zoho
    keeps no time or user for A → B, so it cannot be logged faithfully; the caller reports what of it no
    row covers (uncovered_spans).
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


@dataclass(frozen=True)
class _Move:
    """One history row as a move: from, to, when it was rescheduled, and where Zoho listed it."""

    frm: datetime
    to: datetime
    at: datetime
    order: int


def _moves(rows: Sequence[Mapping[str, Any]]) -> list[_Move]:
    parsed = (
        (parse_datetime(r.get("Rescheduled_From")), parse_datetime(r.get("Rescheduled_To")), r.get("Rescheduled_Time"))
        for r in rows
    )
    return [
        _Move(frm, to, at, order)
        for order, (frm, to, when) in enumerate(parsed)
        if frm is not None and to is not None and frm != to and (at := parse_datetime(when)) is not None
    ]


def _edge_chain(moves: list[_Move], at: datetime, edge: datetime | None, *, backward: bool) -> set[int]:
    """The moves made at `edge` (any time, if unknown) that chain into `at` (backward) or on from it."""
    chained: set[int] = set()
    for _ in moves:  # at most one step per move, so a cycle cannot loop forever
        step = [
            m
            for m in moves
            if m.order not in chained and (edge is None or m.at == edge) and (m.to if backward else m.frm) == at
        ]
        if not step:
            break
        chained.add(step[-1].order)
        at = step[-1].frm if backward else step[-1].to
    return chained


def _in_walk_order(moves: list[_Move], start: datetime) -> list[_Move]:
    """The moves in the order they were made: by Rescheduled_Time; within a second, as they chain."""
    left = sorted(moves, key=lambda m: (m.at, m.order))
    walk: list[_Move] = []
    at = start
    while left:
        same_second = [m for m in left if m.at == left[0].at]
        heads = [m for m in same_second if all(o.to != m.frm for o in same_second if o is not m)]
        after_at = [m for m in same_second if m.frm == at]
        chosen = (after_at or heads or same_second)[0]
        walk.append(chosen)
        left.remove(chosen)
        at = chosen.to
    return walk


def uncovered_spans(
    missed: Mapping[str, Any],
    rows: Sequence[Mapping[str, Any]],
    *,
    after: datetime | None,
    before: datetime | None,
) -> list[dict[str, str]]:
    """The stretches of a hidden span (from → to) that no history row covers, in the order they happened. Pure.

    The hidden span is a path of moves from `start` to `end` whose steps in between are unknown; earlier
    tries may have logged some of them. Appointment times move back as readily as forward (12-13 → 12-10
    is a reschedule like any other) and may repeat, so a row is placed by when it was made, never by its
    from and to: the span's steps were made after `after` (the state the span starts from was seen then:
    the snapshot's Modified_Time) and no later than `before` (Zoho's Rescheduled_Time of the latest
    reschedule, which ends the span). Rows made outside that window belong to other moves. Rows made at
    the window's very edge (Zoho's times have whole seconds) are told apart by the chain: those that lead
    into `start` at `after`, or on from `end` at `before`, are the neighbouring moves, not the span's.

    The span's rows, in the order they were made (by Rescheduled_Time; within one second, as they chain),
    are walked from `start` to `end`: wherever the walk stands elsewhere than the next row's from, the
    stretch between is a step or several that nobody logged. A stretch that would start and end at the same
    time (a hidden A → B → A) cannot be told from no step at all and is not reported. So the stretches and
    the span's rows together make the path from `start` to `end`, each piece once: a letter never overlaps
    a row.
    """
    start, end = parse_datetime(missed.get("Rescheduled_From")), parse_datetime(missed.get("Rescheduled_To"))
    if start is None or end is None or start == end:
        return []
    window = [m for m in _moves(rows) if (after is None or m.at >= after) and (before is None or m.at <= before)]
    outside = _edge_chain(window, start, after, backward=True) | _edge_chain(window, end, before, backward=False)
    stretches: list[tuple[datetime, datetime]] = []
    at = start
    for move in _in_walk_order([m for m in window if m.order not in outside], start):
        if move.frm != at:
            stretches.append((at, move.frm))
        at = move.to
    if at != end:
        stretches.append((at, end))
    return [{"Rescheduled_From": as_zoho_time(frm), "Rescheduled_To": as_zoho_time(to)} for frm, to in stretches]


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


async def resolve_pending(ledger: Ledger, index: str, history: Sequence[Mapping[str, Any]], *, own: str) -> None:
    """Settle the record's pending ledger entries against Zoho's history, before a hidden span is reported.

    An entry stays pending when its try kept the row and then never heard Zoho's answer (lost, refused for
    now, or the worker was killed), and the record moved on before a retry computed the same row again, so
    nothing settled it. Zoho's history says what became of it:

    - found there (the answer was lost after Zoho wrote the row): the entry is done, with Zoho's id. Its row
      covers its step of the span like any other row (uncovered_spans reads Zoho's rows).
    - not found: Zoho never got the row, and nothing will send it again. apply_once resends a pending row
      only to a try that computes the same ledger key, which names the Reschedule_Count the record had
      then, and the record has moved past that reschedule: it lies inside the span this job sees hidden.
      So its step is uncovered and goes into the letter, for the operator to log; the entry is left pending
      (the ledger never claims a row Zoho does not have) to expire.

    Either way the index forgets it. `own`, this action's key, is left to apply_once.
    """
    for key, effect in (await ledger.pending_in(index)).items():
        if key == own:
            continue
        found = next((r for r in history if isinstance(effect, Mapping) and _same_row(r, effect)), None)
        if found is not None:
            await ledger.done(key, str(found.get("id", "")))
        await ledger.untrack(index, key)


def _same_row(existing: Mapping[str, Any], row: Mapping[str, Any]) -> bool:
    keys_present = all(k in row for k in ("Rescheduled_From", "Rescheduled_To", "Rescheduled_Time"))
    return keys_present and same_reschedule(existing, row)


def missed_report(
    span: Mapping[str, Any],
    history: Sequence[Mapping[str, Any]],
    record: Record,
    change: Change,
    row: Mapping[str, Any],
) -> dict[str, Any]:
    """What to report of a hidden span: {} when rows cover it all. Else "uncovered", the stretches no row
    covers (each a from and a to: one MISSED_RESCHEDULE letter each), and "hidden_span", the whole span
    and when its steps happened (what an operator needs to log them by hand). Pure.

    The span's steps happened after the state seen before (the snapshot's Modified_Time) and no later than
    Zoho's Rescheduled_Time of the latest reschedule, which `row` logs and which is no part of the span.
    """
    after = change.since
    before = parse_datetime(_zoho_account(record, start_change(change)[1]).get("Rescheduled_Time"))
    others = [r for r in history if not same_reschedule(r, row)]
    uncovered = uncovered_spans(span, others, after=after, before=before)
    if not uncovered:
        return {}
    when = {
        "rescheduled_after": as_zoho_time(after) if after is not None else None,
        "rescheduled_before": as_zoho_time(before) if before is not None else None,
    }
    return {"uncovered": uncovered, "hidden_span": {**span, **when}}


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
    """Write the history row unless crmflow or Zoho already has it; report what a hidden span leaves unlogged."""
    row = history_row(record, change, params, now=now)
    key = reschedule_key(record, row)
    index = keys.pending_effects(record.source, record.module, record.id)
    span = missed_reschedule(record, change)
    history: Sequence[Mapping[str, Any]] | None = None
    missed: dict[str, Any] = {}
    if span:
        # Earlier tries may have logged parts of that span before failing (e.g. killed before saving the
        # state, or a lost answer), or left them pending in the ledger.
        history = await zoho.list_reschedule_history(record.id)
        await resolve_pending(ledger, index, history, own=key)
        missed = missed_report(span, history, record, change, row)

    async def find_existing(row: Mapping[str, Any]) -> str | None:
        rows = history if history is not None else await zoho.list_reschedule_history(record.id)
        return next((str(found.get("id", "")) for found in rows if same_reschedule(found, row)), None)

    # Always looked for first: Zoho may write such rows itself (UNCONFIRMED), and the ledger forgets. The key is
    # named in the record's index until it is done (found again by resolve_pending if this try never settles it).
    applied = await ledger.apply_once(
        key,
        row,
        find_existing=find_existing,
        write=zoho.add_reschedule_history,
        look_first=True,
        checkpoint=checkpoint,
        index=index,
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
