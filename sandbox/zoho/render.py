"""Turn stored records (aware datetimes inside) into the JSON Zoho returns, optionally cut to some fields. Pure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from sandbox.zoho.time import format_datetime


def render_value(value: Any, tz: timezone) -> Any:
    """Datetimes become Zoho strings in `tz`; containers are copied so callers never alias the store."""
    if isinstance(value, datetime):
        return format_datetime(value, tz)
    if isinstance(value, Mapping):
        return {key: render_value(item, tz) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [render_value(item, tz) for item in value]
    return value


def render_record(record: Mapping[str, Any], tz: timezone, fields: Sequence[str] | None = None) -> dict[str, Any]:
    """All fields, or only the requested ones that exist plus `id` (as Zoho's `fields` parameter does)."""
    if fields is None:
        return {key: render_value(value, tz) for key, value in record.items()}
    wanted = set(fields) | {"id"}
    return {key: render_value(value, tz) for key, value in record.items() if key in wanted}
