"""Datetimes as Zoho CRM takes and renders them: ISO 8601 to the second with an explicit offset. Pure."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

# Zoho documents "ISO 8601" and rejects milliseconds (Pipedream strips them before sending). An offset is
# required: a naive time would be read in a user's zone we cannot know. "Z" is accepted because Pipedream
# sends channel_expiry values ending in "Z" without milliseconds.
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:Z|[+-]\d{2}:\d{2})$")
_OFFSET = re.compile(r"^([+-])(\d{2}):(\d{2})$")


def parse_datetime(value: object) -> datetime | None:
    """The aware datetime a Zoho-style ISO 8601 string denotes, or None when it is not one."""
    if not isinstance(value, str) or _DATETIME.match(value) is None:
        return None
    try:
        return datetime.fromisoformat(value[:-1] + "+00:00" if value.endswith("Z") else value)
    except ValueError:
        return None


def format_datetime(value: datetime, tz: timezone) -> str:
    """Render like Zoho: in the given zone, no fractional seconds, offset always spelled out."""
    return value.astimezone(tz).replace(microsecond=0).isoformat()


def parse_offset(text: str) -> timezone:
    """The fixed zone for an offset such as "+05:30"; ValueError when malformed or beyond ±14:00."""
    match = _OFFSET.match(text)
    if match is None:
        raise ValueError(f"timezone_offset must look like +05:30, got {text!r}")
    sign, hours, minutes = match.groups()
    delta = timedelta(hours=int(hours), minutes=int(minutes))
    if int(minutes) >= 60 or delta > timedelta(hours=14):
        raise ValueError(f"timezone_offset out of range: {text!r}")
    return timezone(-delta if sign == "-" else delta)


def epoch_ms(value: datetime) -> int:
    """Milliseconds since the epoch, as Zoho's callback `server_time`."""
    return int(value.timestamp() * 1000)
