"""Datetimes as the HubSpot API takes and renders them: ISO 8601 UTC with milliseconds, or epoch milliseconds. Pure.

Rendering: HubSpot documents datetime values only as "ISO 8601"; the official appointment example writes
"2026-06-01T09:00:00Z" and object timestamps (createdAt, history timestamps) are seen with milliseconds
("2019-10-30T03:30:17.883Z"). The sandbox renders every datetime property value, createdAt/updatedAt and
history timestamps as "2026-06-01T09:00:00.000Z"; the exact format of property values is UNCONFIRMED, so
clients should parse any ISO 8601 form.

Input: the notes guide says a datetime can be given "either [as] a Unix timestamp in milliseconds or UTC
format". The sandbox accepts epoch milliseconds (as a string or a JSON number) and ISO 8601 date-times with
`Z` or an explicit offset, any fraction of a second; a time without a zone is refused (UNCONFIRMED).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:\d{2})$")
_EPOCH_MS = re.compile(r"^-?\d{1,15}$")


def truncate_ms(value: datetime) -> datetime:
    """`value` in UTC cut to whole milliseconds, the precision HubSpot keeps."""
    value = value.astimezone(UTC)
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def format_iso(value: datetime) -> str:
    """ "2026-06-01T09:00:00.000Z": UTC, always three fraction digits, `Z`."""
    value = truncate_ms(value)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def epoch_ms(value: datetime) -> int:
    """Milliseconds since the epoch (webhook `occurredAt`, `X-HubSpot-Request-Timestamp`)."""
    return int(truncate_ms(value).timestamp() * 1000)


def from_epoch_ms(value: int) -> datetime:
    return datetime.fromtimestamp(value / 1000, tz=UTC)


def _parse_iso(text: str) -> datetime | None:
    if _ISO.match(text) is None:
        return None
    fraction = re.search(r"\.(\d+)", text)
    if fraction is not None and len(fraction.group(1)) > 6:
        text = text.replace(fraction.group(0), "." + fraction.group(1)[:6])
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def parse_datetime(value: object) -> datetime | None:
    """The UTC datetime an API datetime input denotes (ISO 8601 with zone, or epoch ms), else None."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        return None
    if _EPOCH_MS.match(value):
        try:
            return from_epoch_ms(int(value))
        except (OverflowError, OSError, ValueError):
            return None
    parsed = _parse_iso(value)
    return None if parsed is None else truncate_ms(parsed)
