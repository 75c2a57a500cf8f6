"""The fetched state of one CRM record, in the same shape for every CRM. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


@dataclass(frozen=True)
class HistoryEntry:
    """One past value of a property, as the CRM records it (HubSpot's propertiesWithHistory)."""

    value: Any
    timestamp: datetime
    source_type: str | None = None
    source_id: str | None = None
    user_id: str | None = None


@dataclass(frozen=True)
class Record:
    """A record as the CRM's API returned it: native field names and values, plus when it last changed."""

    source: str
    module: str
    id: str
    modified_time: datetime
    fields: Mapping[str, Any]
    # Past values of some fields, oldest first (only CRMs that keep them, only fields asked for).
    history: Mapping[str, tuple[HistoryEntry, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class Modified:
    """A record the CRM lists as modified (by a sweep's listing): its id and when it last changed."""

    record_id: str
    modified_time: datetime


@dataclass(frozen=True)
class ModifiedPage:
    """One page of a sweep's listing: the records on it that are new to this listing, and `covered_until`:
    every record modified from the window's start up to (excluding) this time has now been listed, or None
    when the listing's order cannot tell until it is complete (newest first)."""

    records: tuple[Modified, ...]
    covered_until: datetime | None = None
    calls: int = 1


def parse_datetime(value: Any) -> datetime | None:
    """An ISO 8601 time with an offset (or Z), or epoch milliseconds as text, as an aware datetime; else None.

    HubSpot documents neither form for datetime property values (UNCONFIRMED), so both are read.
    """
    if not isinstance(value, str) or not value:
        return None
    if value.isascii() and value.isdigit():
        # Epoch milliseconds: 12 to 15 digits cover 1973 to 33658; shorter numbers are not times.
        return datetime.fromtimestamp(int(value) / 1000, UTC) if 12 <= len(value) <= 15 else None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None
