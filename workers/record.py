"""The fetched state of one CRM record, in the same shape for every CRM. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Record:
    """A record as the CRM's API returned it: native field names and values, plus when it last changed."""

    source: str
    module: str
    id: str
    modified_time: datetime
    fields: Mapping[str, Any]


def parse_datetime(value: Any) -> datetime | None:
    """An ISO 8601 string with an offset as an aware datetime; None for anything else."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None
