"""Applying a property write to a stored object: derived appointment values, history, modification time. Pure.

Appointment rule (UNCONFIRMED, as HubSpot's UI behaves when a meeting is dragged): changing
hs_appointment_start without hs_appointment_end keeps the duration, so the end moves by the same amount;
changing the end alone changes the duration. hs_duration always equals end - start in milliseconds ("" when
either is empty). No ordering check: an end before the start is stored as given.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sandbox.hubspot.catalogue import APPOINTMENTS
from sandbox.hubspot.records import HubRecord, Source
from sandbox.hubspot.time import format_iso, parse_datetime

START = "hs_appointment_start"
END = "hs_appointment_end"
DURATION = "hs_duration"


def _moved_end(current: Mapping[str, str], new_start: str) -> str | None:
    start, end, moved = parse_datetime(current.get(START)), parse_datetime(current.get(END)), parse_datetime(new_start)
    if start is None or end is None or moved is None:
        return None
    return format_iso(moved + (end - start))


def appointment_values(current: Mapping[str, str], changes: Mapping[str, str]) -> dict[str, str]:
    """`changes` plus what follows from them: the moved end and the new hs_duration."""
    values = dict(changes)
    if START in changes and END not in changes:
        moved = _moved_end(current, changes[START])
        if moved is not None:
            values[END] = moved
    start = parse_datetime(values.get(START, current.get(START)))
    end = parse_datetime(values.get(END, current.get(END)))
    values[DURATION] = "" if start is None or end is None else str(int((end - start).total_seconds() * 1000))
    return values


def apply_write(record: HubRecord, changes: Mapping[str, str], source: Source, now: datetime) -> list[str]:
    """Set the properties (history for each change), touch the record if anything changed; the changed names."""
    values = appointment_values(record.values, changes) if record.object_type is APPOINTMENTS else dict(changes)
    changed = [name for name, value in values.items() if record.set(name, value, source, now)]
    if changed:
        record.touch(source, now)
    return changed
