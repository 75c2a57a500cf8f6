"""Diff: what changed on a record since the last state seen. Pure."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from workers.record import Record, parse_datetime


@dataclass(frozen=True)
class Snapshot:
    """The last state processed for a record: its Modified_Time and the values of the watched fields."""

    modified_time: datetime
    fields: Mapping[str, Any]


@dataclass(frozen=True)
class FieldChange:
    """A field's value before and after."""

    old: Any
    new: Any


@dataclass(frozen=True)
class Change:
    """The outcome of a diff: changed watched fields, and whether the record was new to us or stale."""

    fields: Mapping[str, FieldChange] = field(default_factory=dict)
    first_seen: bool = False
    stale: bool = False
    # When the state the old values come from was current (the snapshot's modified time), if known.
    since: datetime | None = None


def same_value(old: Any, new: Any) -> bool:
    """Equal values; two datetimes written with different offsets are the same instant, so equal."""
    if old == new:
        return True
    old_dt, new_dt = parse_datetime(old), parse_datetime(new)
    return old_dt is not None and new_dt is not None and old_dt == new_dt


def diff(
    previous: Snapshot | None,
    current: Record,
    watched: frozenset[str],
    *,
    inferred_previous: Mapping[str, Any] | None = None,
    inferred_since: datetime | None = None,
) -> Change:
    """Compare `current` with the last snapshot, over the watched fields.

    A record older than the snapshot (a stale read) is reported as stale, with no changes, so it can never
    undo newer state. A record seen for the first time has no known previous values except those in
    `inferred_previous` (what the record itself says it was, e.g. Zoho's Rescheduled_From): only those
    can show up as changes; `inferred_since` is when those values were current, if known (a sweep's window
    start). A field missing from the snapshot (a rule started watching it later) is likewise treated as
    unknown, not as changed.
    """
    if previous is not None and current.modified_time < previous.modified_time:
        return Change(stale=True)
    known = previous.fields if previous is not None else (inferred_previous or {})
    changes = {
        name: FieldChange(old=known[name], new=current.fields.get(name))
        for name in sorted(watched)
        if name in known and not same_value(known[name], current.fields.get(name))
    }
    since = previous.modified_time if previous is not None else inferred_since
    return Change(fields=changes, first_seen=previous is None, since=since)


def moved_times(change: Change, field_name: str) -> tuple[datetime, datetime] | None:
    """The old and new times of a changed time field; None if it did not change or either is not a time."""
    moved = change.fields.get(field_name)
    if moved is None:
        return None
    old, new = parse_datetime(moved.old), parse_datetime(moved.new)
    return (old, new) if old is not None and new is not None else None


# Zoho's Modified_Time has whole seconds and its servers' clocks differ slightly.
LAG_MARGIN = timedelta(seconds=2)


def looks_lagging(
    previous: Snapshot | None,
    current: Record,
    *,
    notified_at: datetime,
    mentioned: Collection[str],
    watched: frozenset[str],
) -> bool:
    """Whether the fetched record seems older than the change it was notified about (a lagging read).

    True when the notification came well after the state we last saw, names a field we watch, and yet the
    record is no newer than that state. An out-of-order duplicate is not flagged: it was sent before the
    newer state we saw.
    """
    if previous is None or current.modified_time > previous.modified_time:
        return False
    return notified_at > previous.modified_time + LAG_MARGIN and not watched.isdisjoint(mentioned)


def lags_listing(current: Record, listed_at: datetime) -> bool:
    """Whether a record fetched for a sweep is older than the modified time the CRM's listing gave for it (a
    lagging read: the job tries again, as for a notification whose record lags)."""
    return current.modified_time + LAG_MARGIN < listed_at


def snapshot_of(record: Record, watched: frozenset[str]) -> Snapshot:
    """What to remember of `record` for the next diff."""
    return Snapshot(modified_time=record.modified_time, fields={k: record.fields.get(k) for k in sorted(watched)})
