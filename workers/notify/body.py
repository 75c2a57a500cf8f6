"""Notify body: the JSON document a notify action POSTs by default. Pure.

    {"type": "crmflow.change", "source": ..., "module": ..., "record_id": ..., "operation": "update",
     "rule": ..., "modified_time": ..., "changed": {field: {"old": ..., "new": ...}},
     "reschedule": {"old_start": ..., "new_start": ..., "notice_hours": ...},   (a start-time change only)
     "text": ...}                                                               (with the `text` template only)

`text` makes a Slack incoming-webhook URL work as it is (Slack posts the text; it ignores the other keys).
Values are the CRM's own, as fetched; times are ISO 8601.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import orjson

from workers.diff import FieldChange

CHANGE_TYPE = "crmflow.change"


def notify_body(
    *,
    source: str,
    module: str,
    record_id: str,
    operation: str,
    rule: str,
    modified_time: datetime,
    changed: Mapping[str, FieldChange],
    reschedule: Mapping[str, Any] | None,
    text: str | None,
) -> dict[str, Any]:
    """The default body for one change of one record under one rule (see the module docstring)."""
    body: dict[str, Any] = {
        "type": CHANGE_TYPE,
        "source": source,
        "module": module,
        "record_id": record_id,
        "operation": operation,
        "rule": rule,
        "modified_time": modified_time.isoformat(),
        "changed": {name: {"old": moved.old, "new": moved.new} for name, moved in sorted(changed.items())},
    }
    if reschedule is not None:
        body["reschedule"] = {key: _plain(reschedule.get(key)) for key in ("old_start", "new_start", "notice_hours")}
    if text is not None:
        body["text"] = text
    return body


def encode(body: Mapping[str, Any]) -> bytes:
    """The bytes sent and signed: compact JSON, UTF-8 (orjson; anything it cannot encode becomes its str)."""
    return orjson.dumps(body, default=str)


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value
