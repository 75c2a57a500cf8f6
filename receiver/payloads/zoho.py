"""Zoho CRM Notification API callback body (what Zoho POSTs to a watch channel's notify_url). Pure.

Format: https://www.zoho.com/crm/developer/docs/api/v7/notifications/enable.html (see docs/zoho-crm.md,
"Notifications (watch channels)"). Keys Zoho may add later are ignored, not rejected.
"""

from __future__ import annotations

from functools import cached_property
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, WithJsonSchema

# Zoho documents its numbers (ids, channel_id, server_time) as Java longs.
MAX_LONG = 2**63 - 1


def _id_as_text(value: object) -> object:
    # Zoho record ids are 19-digit numbers sent as strings; accept a JSON integer (a long) too, never a float or bool.
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_LONG:
        return str(value)
    return value


_ID_PATTERN = r"^[0-9]{1,30}$"
_ID_SCHEMA = {
    "anyOf": [
        {"type": "string", "pattern": _ID_PATTERN},
        {"type": "integer", "minimum": 0, "maximum": MAX_LONG},
    ]
}
ZohoId = Annotated[
    str,
    BeforeValidator(_id_as_text),
    StringConstraints(pattern=_ID_PATTERN),
    WithJsonSchema(_ID_SCHEMA, mode="validation"),
]
# {record id: [changed field, ...]}; JSON keys are always strings.
AffectedFields = Annotated[
    dict[Annotated[str, StringConstraints(pattern=_ID_PATTERN)], list[str]],
    WithJsonSchema(
        {
            "type": "object",
            "propertyNames": {"pattern": _ID_PATTERN},
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
        },
        mode="validation",
    ),
]


class AffectedValues(BaseModel):
    """New values of the changed fields of one record (only with return_affected_field_values)."""

    model_config = ConfigDict(extra="ignore")

    record_id: ZohoId
    values: dict[str, Any]


class ZohoNotification(BaseModel):
    """One Zoho callback: an operation on one or more records of one module."""

    model_config = ConfigDict(extra="ignore")

    server_time: int = Field(ge=0, le=MAX_LONG, description="Zoho's clock when it sent the callback, epoch ms")
    module: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    ids: list[ZohoId] = Field(min_length=1)
    operation: Literal["insert", "update", "delete"]
    channel_id: ZohoId
    token: str | None = Field(
        default=None,
        description=(
            "The token chosen when the watch channel was enabled, echoed by Zoho: the callback's only proof of "
            "origin. It must equal ZOHO_NOTIFY_TOKEN (compared in constant time, before the body is validated); "
            "a callback without it is refused with 401. Never echoed in answers or logs."
        ),
    )
    affected_fields: list[AffectedFields] = Field(default_factory=list)
    affected_values: list[AffectedValues] | None = None
    query_params: dict[str, Any] = Field(default_factory=dict)
    resource_uri: str | None = None

    def changed_fields(self, record_id: str) -> tuple[str, ...]:
        """The fields Zoho says changed on `record_id` (affected_fields and affected_values), sorted."""
        return tuple(sorted(self._changed_by_id.get(record_id, ())))

    @cached_property
    def _changed_by_id(self) -> dict[str, set[str]]:
        # One pass over both lists, whatever the number of ids: asking per id would scan them once per id.
        names: dict[str, set[str]] = {}
        for entry in self.affected_fields:
            for record_id, fields in entry.items():
                names.setdefault(record_id, set()).update(fields)
        for values in self.affected_values or ():
            names.setdefault(values.record_id, set()).update(values.values)
        return names
